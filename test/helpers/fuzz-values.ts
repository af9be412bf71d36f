// Seeded randomness and hostile values for the schema-driven fuzz test: the values are chosen by
// GraphQL input type, so each argument is attacked with what its own validation has to refuse.
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  type GraphQLInputType,
  type GraphQLNamedInputType,
} from "graphql";

/** mulberry32: tiny, fast, and good enough to make a failing run replayable from its seed. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  float(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(below: number): number {
    return Math.floor(this.float() * below);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(items.length)] as T;
  }

  weighted<T>(items: readonly (readonly [T, number])[]): T {
    const total = items.reduce((sum, [, w]) => sum + w, 0);
    let roll = this.float() * total;
    for (const [item, weight] of items) {
      roll -= weight;
      if (roll < 0) return item;
    }
    return (items[items.length - 1] as readonly [T, number])[0];
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j] as T, items[i] as T];
    }
    return items;
  }

  hex(length: number): string {
    let out = "";
    while (out.length < length) out += this.int(16).toString(16);
    return out;
  }
}

/** A literal only a document can carry (JSON has no NaN, -0, hex or out-of-range numbers). */
export class Raw {
  constructor(readonly text: string) {}
}

/** A required argument or field left out. */
export const MISSING = Symbol("missing");

export type FuzzValue =
  null | boolean | number | string | Raw | typeof MISSING | FuzzValue[] | { [key: string]: FuzzValue };

export interface Hostile {
  value: FuzzValue;
  /** What the report shows instead of the value, which may be 100 KB long. */
  label: string;
  /** Only variables bring this value to a resolver: written inline it is a parse error already. */
  variablesOnly?: boolean;
}

export const HUGE = 100_000;

const h = (value: FuzzValue, label: string, variablesOnly = false): Hostile => ({ value, label, variablesOnly });

/** A JSON-built object, so that keys such as __proto__ are own properties, as a server parses them. */
const json = (text: string) => JSON.parse(text) as FuzzValue;

export function deepList(depth: number, leaf: FuzzValue = "x"): FuzzValue {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

export function deepObject(depth: number, leaf: FuzzValue = "x"): FuzzValue {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

/** Values of the wrong shape, for any slot. */
export function wrongShapes(): Hostile[] {
  return [
    h({}, "{}"),
    h(json('{"$ne": null}'), '{"$ne": null}'),
    h(json('{"$gt": ""}'), '{"$gt": ""}'),
    h(json('{"__proto__": {"polluted": true}}'), "{__proto__: …}"),
    h([], "[]"),
    h([null], "[null]"),
    h(deepList(64), "list nested 64 deep"),
    h(deepObject(64), "object nested 64 deep"),
  ];
}

export function stringHostiles(): Hostile[] {
  return [
    h("", '""'),
    h(" ", '" "'),
    h("\t\r\n \u00a0\u2003\u3000\u2028", "whitespace only"),
    h("a".repeat(HUGE), "100 KB of 'a'"),
    h("😀".repeat(HUGE / 4), "25 K emoji (100 KB)"),
    h("\u0000", "NUL"),
    h("a\u0000b", "embedded NUL"),
    h("\uD800", "lone high surrogate", true),
    h("x\uDC00y", "lone low surrogate", true),
    h("\u0001\u0002\u0007\u0008\u001b\u001f\u007f\u0085", "control characters"),
    h("\u202Egnp.exe\u202C", "RTL override"),
    h("שלום عالم", "RTL text"),
    h("Z" + "\u0301\u0300\u0302".repeat(500), "1,500 combining marks"),
    h("\u200B\u200C\u200D\u2060\uFEFF", "zero-width only"),
    h("\uFFFE\uFFFF", "noncharacters"),
    h("𝕳𝖊𝖗𝖆𝖑𝖉 👩‍👩‍👧‍👦 🏳️‍🌈", "astral + ZWJ"),
    h("__proto__", "'__proto__'"),
    h("constructor", "'constructor'"),
    h('{"$ne":null}', "operator as text"),
    h("$where", "'$where'"),
    h("' OR '1'='1", "SQL quote"),
    h("<script>alert(1)</script>", "HTML"),
    h("%00%ff%E0%A4%A", "percent garbage"),
    h("\\u0000\\", "backslashes"),
    h("x".repeat(201), "201 chars"),
    h("x".repeat(5001), "5,001 chars"),
    h("x".repeat(20_001), "20,001 chars"),
    h("NaN", "'NaN'"),
    h("1e309", "'1e309'"),
    h("  padded  ", "padded"),
    h("\n".repeat(10_000), "10,000 newlines"),
    h(0, "0"),
    h(-1, "-1"),
    h(1.5, "1.5"),
    h(true, "true"),
    h(["x"], '["x"]'),
    h(null, "null"),
    ...wrongShapes(),
  ];
}

export function emailHostiles(): Hostile[] {
  return [
    h("\uD800@example.com", "lone surrogate in local part", true),
    h("a@\uD800.com", "lone surrogate in domain", true),
    h("a@b", "a@b"),
    h("@", "@"),
    h("a@", "a@"),
    h("@example.com", "@example.com"),
    h("x@example.com\u0000", "NUL after address"),
    h("é@exämple.com", "IDN"),
    h("a".repeat(64) + "@example.com", "64-char local part"),
    h("a".repeat(65) + "@example.com", "65-char local part"),
    h("a@" + "b".repeat(250) + ".com", "255-char address"),
    h("x@example.com\n", "trailing newline"),
    h('"quoted local"@example.com', "quoted local part"),
    h("a@[127.0.0.1]", "IP literal"),
    h("a@" + "😀".repeat(60) + ".com", "emoji domain"),
  ];
}

export function intHostiles(): Hostile[] {
  return [
    h(0, "0"),
    h(-1, "-1"),
    h(1, "1"),
    h(100, "100"),
    h(101, "101"),
    h(2 ** 31 - 1, "2^31-1"),
    h(2 ** 31, "2^31"),
    h(-(2 ** 31), "-2^31"),
    h(-(2 ** 31) - 1, "-2^31-1"),
    h(2 ** 53, "2^53"),
    h(-(2 ** 53), "-2^53"),
    h(1.5, "1.5"),
    h(0.1, "0.1"),
    h(1e21, "1e21"),
    h(1e308, "1e308"),
    h(new Raw("1e400"), "1e400"),
    h(new Raw("-0"), "-0"),
    h(new Raw("0x10"), "0x10"),
    h(new Raw("NaN"), "NaN"),
    h(new Raw("99999999999999999999999"), "23-digit literal"),
    h("5", '"5"'),
    h("", '""'),
    h("NaN", '"NaN"'),
    h(true, "true"),
    h(null, "null"),
    h([5], "[5]"),
    ...wrongShapes(),
  ];
}

export function booleanHostiles(): Hostile[] {
  return [
    h("true", '"true"'),
    h("false", '"false"'),
    h(1, "1"),
    h(0, "0"),
    h("", '""'),
    h(new Raw("TRUE"), "TRUE"),
    h(null, "null"),
    h([true], "[true]"),
    h({}, "{}"),
  ];
}

export function dateTimeHostiles(now: number): Hostile[] {
  const day = 86_400_000;
  const iso = (ms: number) => new Date(ms).toISOString();
  return [
    h("", '""'),
    h("not a date", "'not a date'"),
    h("2030-02-30T00:00:00Z", "Feb 30"),
    h("2030-13-01T00:00:00Z", "month 13"),
    h("2030-01-01T24:00:00Z", "hour 24"),
    h("2030-12-31T23:59:60Z", "leap second"),
    h("9999-12-31T23:59:59Z", "year 9999"),
    h("0000-01-01T00:00:00Z", "year 0"),
    h("+275760-09-13T00:00:00Z", "Date's last instant"),
    h("+275760-09-13T00:00:00.001Z", "past Date's range"),
    h("-000001-01-01T00:00:00Z", "negative year"),
    h("1970-01-01T00:00:00Z", "epoch"),
    h(iso(now - day), "yesterday"),
    h(iso(now + 366 * day + 3_600_000), "366 days + 1 h ahead"),
    h(iso(now + 365 * day), "365 days ahead"),
    h("2030-01-01", "date only"),
    h("2030-01-01T00:00:00", "no offset"),
    h("2030-01-01T00:00:00+14:00", "offset +14:00"),
    h("2030-01-01T00:00:00-23:59", "offset -23:59"),
    h("2030-01-01T00:00:00.123456789123Z", "12 fraction digits"),
    h("2030-01-01T00:00:00Z\u0000", "NUL suffix"),
    h("2030-01-01T00:00:00Z ", "trailing space"),
    h("\uD800", "lone surrogate", true),
    h("a".repeat(HUGE), "100 KB"),
    h(0, "0"),
    h(now + day, "epoch ms number"),
    h(1e20, "1e20"),
    h(-1, "-1"),
    h(true, "true"),
    h(null, "null"),
    ...wrongShapes(),
  ];
}

export function enumHostiles(values: readonly string[]): Hostile[] {
  return [
    h("UNKNOWN", "UNKNOWN"),
    h("", '""'),
    h((values[0] ?? "X").toLowerCase(), "lower case"),
    h(` ${values[0] ?? "X"}`, "leading space"),
    h(`${values[0] ?? "X"}\u0000`, "NUL suffix"),
    h("__proto__", "__proto__"),
    h("constructor", "constructor"),
    h(new Raw(JSON.stringify(values[0] ?? "X")), "enum as a string literal"),
    h(1, "1"),
    h(true, "true"),
    h(null, "null"),
    h([values[0] ?? "X"], "[value]"),
    h({}, "{}"),
  ];
}

export function idHostiles(rnd: Random): Hostile[] {
  const hex = rnd.hex(24);
  return [
    h("", '""'),
    h(" ", '" "'),
    h("0", '"0"'),
    h("-1", '"-1"'),
    h(0, "0"),
    h(7, "7"),
    h(2 ** 53, "2^53"),
    h(1.5, "1.5"),
    h(true, "true"),
    h("000000000000000000000000", "all-zero id"),
    h("ffffffffffffffffffffffff", "all-f id"),
    h("FFFFFFFFFFFFFFFFFFFFFFFF", "upper-case hex id"),
    h("zzzzzzzzzzzzzzzzzzzzzzzz", "24 non-hex chars"),
    h("aaaaaaaaaaaa", "12-char string"),
    h(`${hex} `, "id + space"),
    h(` ${hex}`, "space + id"),
    h(`${hex}\u0000`, "id + NUL"),
    h(hex.slice(0, 23), "23 hex chars"),
    h(`${hex}0`, "25 hex chars"),
    h("😀".repeat(12), "12 emoji"),
    h("\uD800".repeat(12), "12 lone surrogates", true),
    h("\uD800", "lone surrogate", true),
    h(json(`{"$oid": "${hex}"}`), "{$oid}"),
    h(json('{"$ne": null}'), '{"$ne": null}'),
    h([hex], "[id]"),
    h("a".repeat(HUGE), "100 KB"),
    h(null, "null"),
    h(deepList(64), "list nested 64 deep"),
  ];
}

/** Hostile values for a slot of this type (besides null and MISSING, which the caller adds). */
export function hostilesFor(type: GraphQLInputType, slotName: string, rnd: Random, now: number): Hostile[] {
  const named: GraphQLNamedInputType = getNamedType(type);
  const inner = isNonNullType(type) ? type.ofType : type;
  if (isListType(inner)) return listHostiles(inner.ofType, rnd);
  if (isInputObjectType(named)) {
    return [
      h({}, "{}"),
      h("x", '"x"'),
      h(5, "5"),
      h([{}], "[{}]"),
      h(json('{"__proto__": {"polluted": true}}'), "{__proto__: …}"),
      h(deepObject(200), "object nested 200 deep"),
      h(deepList(200), "list nested 200 deep"),
    ];
  }
  if (isEnumType(named)) return enumHostiles(named.getValues().map((v) => v.name));
  switch (named.name) {
    case "String":
      return slotName === "email" ? [...emailHostiles(), ...stringHostiles()] : stringHostiles();
    case "Int":
      return intHostiles();
    case "Boolean":
      return booleanHostiles();
    case "ID":
      return idHostiles(rnd);
    case "DateTime":
      return dateTimeHostiles(now);
    default:
      return [...stringHostiles(), ...intHostiles()];
  }
}

function listHostiles(itemType: GraphQLInputType, rnd: Random): Hostile[] {
  const named = getNamedType(itemType);
  const sample: FuzzValue = named.name === "ID" ? rnd.hex(24) : isEnumType(named) ? named.getValues()[0]!.name : {};
  return [
    h([], "[]"),
    h([null], "[null]"),
    h(
      Array.from({ length: 1001 }, () => sample),
      "1,001 items",
    ),
    h(
      Array.from({ length: 10_000 }, () => (named.name === "ID" ? rnd.hex(24) : sample)),
      "10,000 items",
    ),
    h(
      Array.from({ length: 200 }, () => ({ wrong: true })),
      "200 wrong-typed items",
    ),
    h(
      Array.from({ length: 60 }, () => null),
      "60 nulls",
    ),
    h([[sample]], "nested list"),
    h([sample, sample], "duplicates"),
    h(sample, "single item, not a list"),
    h({}, "{}"),
    h("x", '"x"'),
    h(
      Array.from({ length: 8 }, () => "a".repeat(HUGE / 2)),
      "8 × 50 KB strings",
    ),
    h(deepList(200), "list nested 200 deep"),
  ];
}

/**
 * The value written as a GraphQL literal. Strings print as JSON strings, whose escapes GraphQL
 * shares; a string in an enum position prints bare when it can be a name, so unknown enum values
 * reach the validator as enum values rather than as strings.
 */
export function literal(value: FuzzValue, type: GraphQLInputType | undefined): string {
  if (value === MISSING) throw new Error("a missing value has no literal");
  if (value instanceof Raw) return value.text;
  if (value === null) return "null";
  const named = type ? getNamedType(type) : undefined;
  const inner = type && isNonNullType(type) ? type.ofType : type;
  if (typeof value === "string") {
    const bare = /^[_A-Za-z][_0-9A-Za-z]*$/.test(value) && !["true", "false", "null"].includes(value);
    return named && isEnumType(named) && bare ? value : JSON.stringify(value);
  }
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "null";
  if (typeof value === "boolean") return String(value);
  if (Array.isArray(value)) {
    const item = inner && isListType(inner) ? inner.ofType : undefined;
    return `[${value
      .filter((v) => v !== MISSING)
      .map((v) => literal(v, item))
      .join(", ")}]`;
  }
  const fields = named && isInputObjectType(named) ? named.getFields() : {};
  const entries = Object.entries(value).filter(([, v]) => v !== MISSING);
  return `{${entries.map(([k, v]) => `${k}: ${literal(v, fields[k]?.type)}`).join(", ")}}`;
}

export function containsRaw(value: FuzzValue): boolean {
  if (value instanceof Raw) return true;
  if (Array.isArray(value)) return value.some(containsRaw);
  if (value && typeof value === "object") return Object.values(value).some(containsRaw);
  return false;
}

/** The value as JSON sends it: MISSING fields dropped. */
export function toJson(value: FuzzValue): unknown {
  if (value instanceof Raw) throw new Error("a raw literal has no JSON form");
  if (Array.isArray(value)) return value.filter((v) => v !== MISSING).map(toJson);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === MISSING) continue;
      Object.defineProperty(out, k, { value: toJson(v), enumerable: true, configurable: true, writable: true });
    }
    return out;
  }
  return value;
}

/** A short, readable description of a value for the report. */
export function describeValue(value: FuzzValue): string {
  if (value === MISSING) return "missing";
  if (value instanceof Raw) return value.text.slice(0, 40);
  if (typeof value === "string") {
    if (value.length > 40) return `string of ${value.length}`;
    return JSON.stringify(value).replace(
      /[\u007f-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  }
  if (Array.isArray(value))
    return value.length > 3 ? `list of ${value.length}` : `[${value.map(describeValue).join(", ")}]`;
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    return keys.length > 4 ? `object of ${keys.length} keys` : `{${keys.join(", ")}}`;
  }
  return String(value);
}
