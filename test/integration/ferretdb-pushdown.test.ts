import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Long, MongoClient, ObjectId, type Collection, type Db, type Document } from "mongodb";
import { testMongoUrl } from "../helpers/env.js";
import { uniqueDatabase } from "../helpers/herald.js";

/**
 * Equality on a field, `{ f: v }`, as MongoDB answers it: documents where f is v, or an array with
 * v as an element; never f missing, null, another type that looks the same, v nested deeper, or v
 * under another field. `{ f: { $in: [v1, v2, …] } }` likewise, for any of the values. `{ f: null }`:
 * f missing, null, or an array holding null; never false, 0, "" or null nested deeper. Herald's
 * FerretDB build narrows such queries in SQL before filtering them
 * (tools/ferretdb/patches/sqlite-eq-pushdown.mjs), so every command that takes a filter is checked
 * here, with and without indexes on the field, and `_id: { $in }` too. The assertions are MongoDB's
 * semantics: this runs unchanged against MongoDB.
 */

interface Case {
  name: string;
  value: unknown;
  other: unknown;
  /** Values of other types, or other values, that a careless comparison would take for `value`. */
  lookalikes: unknown[];
}

const ID = new ObjectId();
const HEX = new ObjectId().toHexString();
const WHEN = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));

const CASES: Case[] = [
  {
    name: "an ObjectId",
    value: ID,
    other: new ObjectId(),
    // Its hex string, and an ObjectId one byte away.
    lookalikes: [
      ID.toHexString(),
      new ObjectId(ID.toHexString().slice(0, 23) + (ID.toHexString().endsWith("0") ? "1" : "0")),
    ],
  },
  {
    name: "a string",
    value: "alice@example.com",
    other: "bob@example.com",
    lookalikes: ["Alice@example.com", "alice@example.com ", "alice@example", "alice@example.comx"],
  },
  {
    name: "a string with characters JSON escapes",
    value: 'a<b>&c "q" \\ \u00e9 \u65e5\u672c \u{1f389} \u2028 \t\n\u0001',
    other: 'a<b>&c "q" \\ \u00e9 \u65e5\u672c \u{1f389} \u2029 \t\n\u0001',
    lookalikes: ['a\\u003cb\\u003e\\u0026c "q" \\ \u00e9 \u65e5\u672c \u{1f389} \u2028 \t\n\u0001', "a<b>&c"],
  },
  {
    name: "a string that spells an ObjectId",
    value: HEX,
    other: new ObjectId().toHexString(),
    lookalikes: [new ObjectId(HEX)],
  },
  { name: "the empty string", value: "", other: " ", lookalikes: ["\u200b", {}] },
  { name: "true", value: true, other: false, lookalikes: [1, "true", Long.fromNumber(1)] },
  {
    name: "a date",
    value: WHEN,
    other: new Date(WHEN.getTime() + 1),
    // Milliseconds since the epoch as a double and as a long, and the date as a string.
    lookalikes: [WHEN.getTime(), Long.fromNumber(WHEN.getTime()), WHEN.toISOString()],
  },
];

/** The documents of a case, each with a label; the field under test is `f`. */
function documentsFor(c: Case): { label: string; f?: unknown; g?: unknown; matches: boolean }[] {
  const { value: v, other: o } = c;
  return [
    { label: "the value", f: v, matches: true },
    { label: "the value again", f: v, matches: true },
    { label: "another value", f: o, matches: false },
    { label: "an array holding it", f: [o, v], matches: true },
    { label: "an array of it alone", f: [v], matches: true },
    { label: "an array holding it twice", f: [v, v], matches: true },
    { label: "an array holding a document of it", f: [{ f: v }], matches: false },
    { label: "an array without it", f: [o], matches: false },
    { label: "an empty array", f: [], matches: false },
    { label: "a document holding it", f: { f: v }, matches: false },
    { label: "missing", matches: false },
    { label: "null", f: null, matches: false },
    { label: "under another field", f: o, g: v, matches: false },
    ...c.lookalikes.flatMap((l, i) => [
      { label: `lookalike ${i}`, f: l, matches: false },
      { label: `an array of lookalike ${i}`, f: [l], matches: false },
    ]),
  ];
}

/**
 * Documents for `{ f: null }`, which MongoDB matches when f is missing, null, or an array holding
 * null; never a falsy value, an array without null, or null nested in a document.
 */
const NULL_DOCUMENTS: { label: string; f?: unknown; g?: unknown; matches: boolean }[] = [
  { label: "missing", matches: true },
  { label: "missing again", matches: true },
  { label: "null", f: null, matches: true },
  { label: "null again", f: null, matches: true },
  { label: "a value", f: "x", matches: false },
  { label: "a date", f: WHEN, matches: false },
  { label: "an array holding null", f: ["x", null], matches: true },
  { label: "an array of null alone", f: [null], matches: true },
  { label: "an array without null", f: ["x"], matches: false },
  { label: "an empty array", f: [], matches: false },
  { label: "an array holding a document of null", f: [{ f: null }], matches: false },
  { label: "a document holding null", f: { f: null }, matches: false },
  { label: "an empty document", f: {}, matches: false },
  { label: "false", f: false, matches: false },
  { label: "zero", f: 0, matches: false },
  { label: "a long zero", f: Long.fromNumber(0), matches: false },
  { label: "the empty string", f: "", matches: false },
  { label: "the string null", f: "null", matches: false },
  { label: "an array of false", f: [false], matches: false },
  { label: "missing, null under another field", g: null, matches: true },
  { label: "a value, null under another field", f: "y", g: null, matches: false },
];

/** Filters with `{ f: null }` and what they select, by MongoDB's rules. */
function nullFilters(): Filter[] {
  const eq = (doc: Document) => doc["matches"] === true;
  return [
    { name: "{ f: null }", filter: { f: null }, selects: eq },
    { name: "{ f: { $eq: null } }", filter: { f: { $eq: null } }, selects: eq },
    // The recovery sweeps' shape: null, and a range on another field.
    {
      name: "{ f: null, seq: { $lt } }",
      filter: { f: null, seq: { $lt: 10 } },
      selects: (d) => eq(d) && (d["seq"] as number) < 10,
    },
    // An equality on another field, which may be the indexed one, beside null.
    { name: "{ kind, f: null }", filter: { kind: "even", f: null }, selects: (d) => eq(d) && d["kind"] === "even" },
    {
      name: "{ f: null, label: { $in } }",
      filter: { f: null, label: { $in: ["missing", "null", "a value", "an array holding null", "false"] } },
      selects: (d) =>
        eq(d) && ["missing", "null", "a value", "an array holding null", "false"].includes(d["label"] as string),
    },
    // Two null equalities: either may be the one narrowed in SQL.
    { name: "{ absent: null, f: null }", filter: { absent: null, f: null }, selects: eq },
    { name: "{ f: null, g: null }", filter: { f: null, g: null }, selects: (d) => eq(d) && d["g"] === null },
    { name: "{ f: { $ne: null } }", filter: { f: { $ne: null } }, selects: (d) => !eq(d) },
    {
      name: "{ f: { $eq: null, $exists: true } }",
      filter: { f: { $eq: null, $exists: true } },
      selects: (d) => eq(d) && "f" in d,
    },
    { name: "{ $and: [{ f: null }] }", filter: { $and: [{ f: null }] }, selects: eq },
  ];
}

/** Index layouts: none, the field alone, leading or second in a compound index, another field. */
const LAYOUTS: { name: string; indexes: Document[] }[] = [
  { name: "no index", indexes: [] },
  { name: "an index on the field", indexes: [{ f: 1 }] },
  { name: "a compound index that starts with the field", indexes: [{ f: 1, g: -1 }] },
  { name: "a compound index with the field second", indexes: [{ g: 1, f: 1 }] },
  { name: "an index on another field of the filter", indexes: [{ kind: 1 }, { label: 1 }] },
];

interface Filter {
  name: string;
  filter: Document;
  selects: (doc: Document) => boolean;
}

/** Filters on `f` and what they select, from whether `{ f: value }` matches a document. */
function filtersFor(value: unknown): Filter[] {
  const eq = (doc: Document) => doc["matches"] === true;
  return [
    { name: "{ f: v }", filter: { f: value }, selects: eq },
    { name: "{ f: { $eq: v } }", filter: { f: { $eq: value } }, selects: eq },
    // Two equalities: the first one is on another field, which may be the indexed one.
    { name: "{ kind, f: v }", filter: { kind: "even", f: value }, selects: (d) => eq(d) && d["kind"] === "even" },
    // Herald's unread count: equality and null (missing) on other fields.
    { name: "{ f: v, absent: null }", filter: { f: value, absent: null }, selects: eq },
    { name: "{ f: { $ne: v } }", filter: { f: { $ne: value } }, selects: (d) => !eq(d) },
    { name: "{ $and: [{ f: v }] }", filter: { $and: [{ f: value }] }, selects: eq },
  ];
}

/** The longest `$in` list Herald's FerretDB build pushes down, in distinct values. */
const MAX_IN = 10_000;

/**
 * How far a list is checked: `{ f: { $in } }` through every command and more filters (beside other
 * conditions, which decide what is pushed down) through the reads; `{ f: { $in } }` through every
 * command; or `{ f: { $in } }` through the reads (and updateMany) alone.
 */
type Depth = "all" | "commands" | "reads";

/**
 * `$in` lists for a case. Lists that are not pushed down, and the longest, are checked without an
 * index and with one on the field only (`few`).
 */
function listsFor(c: Case): { name: string; list: unknown[]; depth: Depth; few?: true }[] {
  const { value: v, other: o } = c;
  const lookalikes = c.lookalikes.filter(
    (l) => typeof l === "string" || typeof l === "boolean" || l instanceof ObjectId || l instanceof Date,
  );
  return [
    { name: "[v]", list: [v], depth: "commands" },
    { name: "[v, o]", list: [v, o], depth: "all" },
    { name: "[o, v, v, o]", list: [o, v, v, o], depth: "commands" },
    { name: "[o]", list: [o], depth: "reads" },
    ...(lookalikes.length > 0 ? [{ name: "the look-alikes of v", list: lookalikes, depth: "commands" as const }] : []),
    {
      name: `${MAX_IN} distinct values, v among them`,
      list: [...manyValues(v, MAX_IN - 1), v],
      depth: "reads",
      few: true,
    },
    // Lists that are not pushed down: null, numbers, arrays, regexes, too many values.
    { name: "[v, null]", list: [v, null], depth: "reads", few: true },
    { name: "[v, 1]", list: [v, 1], depth: "reads", few: true },
    { name: "[o, 1704164645678]", list: [o, WHEN.getTime()], depth: "reads", few: true },
    { name: "[[v]]", list: [[v]], depth: "reads", few: true },
    { name: "[o, /^a/]", list: [o, /^a/], depth: "reads", few: true },
    {
      name: `${MAX_IN + 1} distinct values, v among them`,
      list: [v, ...manyValues(v, MAX_IN)],
      depth: "reads",
      few: true,
    },
    // No list holds a document: FerretDB v1 does not find one among an array's elements, which
    // MongoDB does (not a pushdown's doing: such a list stays in Go). _id's lists do hold some.
  ];
}

/** `n` values of v's type that no document holds (for a boolean, o and v again and again). */
function manyValues(v: unknown, n: number): unknown[] {
  return Array.from({ length: n }, (_, i) => {
    if (v instanceof ObjectId) return new ObjectId(`ffffffff${i.toString(16).padStart(16, "0")}`);
    if (v instanceof Date) return new Date(v.getTime() + 10_000 + i);
    if (typeof v === "boolean") return i % 2 === 0 ? !v : v;
    return `${i}:${String(v)}`;
  });
}

/** Filters with `{ f: { $in: list } }` and what they select, by MongoDB's rules. */
function inFiltersFor(c: Case, list: unknown[], all: boolean): Filter[] {
  const among = (doc: Document) => inMatches(doc["f"], list);
  const basic = { name: "{ f: { $in } }", filter: { f: { $in: list } }, selects: among };
  if (!all) return [basic];
  return [
    basic,
    {
      name: "{ kind, f: { $in } }",
      filter: { kind: "even", f: { $in: list } },
      selects: (d) => among(d) && d["kind"] === "even",
    },
    { name: "{ f: { $in }, absent: null }", filter: { f: { $in: list }, absent: null }, selects: among },
    // Two $in: either may be the one narrowed in SQL.
    {
      name: "{ f: { $in }, kind: { $in } }",
      filter: { f: { $in: list }, kind: { $in: ["even"] } },
      selects: (d) => among(d) && d["kind"] === "even",
    },
    {
      name: "{ kind: { $in }, f: { $in } }",
      filter: { kind: { $in: ["odd", "even"] }, f: { $in: list } },
      selects: among,
    },
    {
      name: "{ f: { $in, $ne: o } }",
      filter: { f: { $in: list, $ne: c.other } },
      selects: (d) => among(d) && !inMatches(d["f"], [c.other]),
    },
    { name: "{ f: { $nin } }", filter: { f: { $nin: list } }, selects: (d) => !among(d) },
    { name: "{ $and: [{ f: { $in } }] }", filter: { $and: [{ f: { $in: list } }] }, selects: among },
  ];
}

/**
 * Whether `{ f: { $in: list } }` matches a document whose f is `f` (undefined when missing): f
 * equals one of the values, or is an array with one of them as an element; a regex matches
 * strings, null matches null and a missing field.
 */
function inMatches(f: unknown, list: unknown[]): boolean {
  const elements: unknown[] = Array.isArray(f) ? f : [];
  return list.some((x) => {
    if (x instanceof RegExp) return [f, ...elements].some((e) => typeof e === "string" && x.test(e));
    if (x === null) return f === undefined || f === null || elements.includes(null);
    return same(f, x) || elements.some((e) => same(e, x));
  });
}

/** Whether MongoDB holds a and b equal, for the kinds of values these tests write. */
function same(a: unknown, b: unknown): boolean {
  if (b === null) return a === null;
  if (b instanceof ObjectId) return a instanceof ObjectId && a.equals(b);
  if (b instanceof Date) return a instanceof Date && a.getTime() === b.getTime();
  // Numbers of every BSON type compare by value.
  if (typeof b === "number" || b instanceof Long) {
    const n = (x: unknown) => (x instanceof Long ? x.toNumber() : typeof x === "number" ? x : NaN);
    return n(a) === n(b);
  }
  if (typeof b === "string" || typeof b === "boolean") return a === b;
  if (Array.isArray(b)) return Array.isArray(a) && a.length === b.length && a.every((e, i) => same(e, b[i]));
  if (isPlainObject(b)) {
    if (!isPlainObject(a)) return false;
    const [ka, kb] = [Object.keys(a), Object.keys(b)];
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && same(a[k], b[k]));
  }
  throw new Error(`no comparison for a ${typeof b}`);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && Object.getPrototypeOf(x) === Object.prototype;
}

describe("equality and $in on a field (FerretDB pushes them down to SQL)", () => {
  let client: MongoClient;
  let db: Db;

  before(async () => {
    client = await MongoClient.connect(testMongoUrl(uniqueDatabase("it_pushdown")));
    db = client.db();
  });

  after(async () => {
    await client.close();
  });

  const labels = (docs: Document[]) => docs.map((d) => d["label"] as string);
  const sorted = (values: string[]) => [...values].sort();

  /** A collection with the layout's indexes and the case's documents, each with a seq and a kind. */
  async function collectionFor(
    name: string,
    layout: { indexes: Document[] },
    c: Case | typeof NULL_DOCUMENTS,
  ): Promise<[Collection, Document[]]> {
    const coll: Collection = db.collection(name);
    for (const key of layout.indexes) await coll.createIndex(key);
    const docs: Document[] = (Array.isArray(c) ? c : documentsFor(c)).map((d, seq) => ({
      _id: new ObjectId(),
      seq,
      kind: seq % 2 === 0 ? "even" : "odd",
      ...(d.g === undefined ? { g: seq } : {}),
      ...d,
    }));
    await coll.insertMany(docs);
    return [coll, docs];
  }

  LAYOUTS.forEach((layout, l) => {
    describe(layout.name, () => {
      it("finds, counts, updates and deletes by null", async () => {
        const [coll, docs] = await collectionFor(`null_${l}`, layout, NULL_DOCUMENTS);
        for (const { name, filter, selects } of nullFilters()) {
          const want = labels(docs.filter(selects));
          assert.ok(want.length >= 1 && want.length < docs.length, `${name}: the case selects some documents`);
          await assertEveryCommand(coll, docs, filter, want, `null, ${name}`);
        }
      });

      CASES.forEach((c, k) => {
        it(`finds, counts, updates and deletes by ${c.name}`, async () => {
          const [coll, docs] = await collectionFor(`eq_${l}_${k}`, layout, c);
          for (const { name, filter, selects } of filtersFor(c.value)) {
            const what = `${c.name}, ${name}`;
            const want = labels(docs.filter(selects));
            assert.ok(want.length >= 1 && want.length < docs.length, `${what}: the case selects some documents`);
            await assertEveryCommand(coll, docs, filter, want, what);
          }
        });

        it(`finds, counts, updates and deletes by $in with ${c.name}`, async () => {
          const [coll, docs] = await collectionFor(`in_${l}_${k}`, layout, c);
          // The rules of the test itself: a list of v alone selects what { f: v } does.
          assert.deepEqual(
            docs.map((d) => inMatches(d["f"], [c.value])),
            docs.map((d) => d["matches"] === true),
            `${c.name}: $in: [v] and { f: v } agree`,
          );
          for (const { name: listName, list, depth, few } of listsFor(c)) {
            if (few === true && l > 1) continue;
            const filters = inFiltersFor(c, list, depth === "all");
            for (const [i, { name, filter, selects }] of filters.entries()) {
              const what = `${c.name}, ${listName}, ${name}`;
              const want = labels(docs.filter(selects));
              assert.ok(want.length < docs.length, `${what}: the case leaves some documents out`);
              if (depth === "reads" || i > 0) await assertReads(coll, filter, want, what);
              else await assertEveryCommand(coll, docs, filter, want, what);
            }
          }
        });
      });
    });
  });

  describe("_id: { $in }", () => {
    const A = new ObjectId();
    const B = new ObjectId();
    // Two collections: FerretDB stores an ObjectId and its hex string alike, and a date and its
    // milliseconds, so its unique index on _id takes each pair for one value (MongoDB does not).
    const ID_SETS: { name: string; docs: Document[] }[] = [
      {
        name: "ObjectIds, strings, a date, true and a document",
        docs: [
          { _id: A, label: "an ObjectId" },
          { _id: B, label: "another ObjectId" },
          { _id: "alice", label: "a string" },
          { _id: "Alice", label: "the string in another case" },
          { _id: "", label: "the empty string" },
          { _id: WHEN, label: "a date" },
          { _id: true, label: "true" },
          { _id: { a: "alice" }, label: "a document" },
        ],
      },
      {
        name: "their look-alikes",
        docs: [
          { _id: A.toHexString(), label: "A's hex string" },
          { _id: B, label: "another ObjectId" },
          { _id: "alice", label: "a string" },
          { _id: WHEN.getTime(), label: "the date's milliseconds" },
          { _id: 1, label: "one" },
          { _id: "true", label: "the string true" },
          { _id: { a: A }, label: "a document holding A" },
        ],
      },
    ].map(({ name, docs }) => ({
      name,
      docs: docs.map((d, seq) => ({ ...d, seq, kind: seq % 2 === 0 ? "even" : "odd" })),
    }));
    const absent = (n: number) =>
      Array.from({ length: n }, (_, i) => new ObjectId(`eeeeeeee${i.toString(16).padStart(16, "0")}`));

    const LISTS: { name: string; list: unknown[]; depth: Depth }[] = [
      { name: "[A]", list: [A], depth: "commands" },
      { name: "[A's hex string]", list: [A.toHexString()], depth: "commands" },
      { name: "[A, B, A]", list: [A, B, A], depth: "all" },
      { name: "[A, A's hex string]", list: [A, A.toHexString()], depth: "reads" },
      { name: "strings", list: ["alice", "Alice", ""], depth: "reads" },
      { name: "[date]", list: [WHEN], depth: "reads" },
      { name: "[true]", list: [true], depth: "reads" },
      { name: "mixed types", list: [B, "alice", WHEN, true], depth: "all" },
      { name: "ids no document has", list: absent(3), depth: "commands" },
      // Lists that are not pushed down.
      { name: "[A, null]", list: [A, null], depth: "reads" },
      { name: "[A, 1]", list: [A, 1], depth: "reads" },
      { name: "documents", list: [{ a: "alice" }, { a: A.toHexString() }], depth: "reads" },
      { name: "1,000 ids, B among them", list: [...absent(999), B], depth: "reads" },
      { name: `${MAX_IN} ids, A among them`, list: [A, ...absent(MAX_IN - 1)], depth: "reads" },
      { name: `${MAX_IN + 1} ids, A among them`, list: [...absent(MAX_IN), A], depth: "reads" },
      {
        name: `${MAX_IN} distinct ids, each twice`,
        list: [...absent(MAX_IN - 1), B, ...absent(MAX_IN - 1), B],
        depth: "reads",
      },
    ];

    const ID_LAYOUTS: { name: string; indexes: Document[] }[] = [
      { name: "_id's index alone", indexes: [] },
      { name: "indexes on the other fields of the filter", indexes: [{ kind: 1 }, { label: 1 }] },
    ];

    ID_LAYOUTS.forEach((layout, l) => {
      ID_SETS.forEach(({ name: setName, docs: ID_DOCS }, k) => {
        it(`finds, counts, updates and deletes by _id: { $in } among ${setName}, with ${layout.name}`, async () => {
          const coll = db.collection(`in_id_${l}_${k}`);
          for (const key of layout.indexes) await coll.createIndex(key);
          await coll.insertMany(ID_DOCS);
          for (const { name: listName, list, depth } of LISTS) {
            const among = (d: Document) => inMatches(d["_id"], list);
            const filters: Filter[] = [
              { name: "{ _id: { $in } }", filter: { _id: { $in: list } }, selects: among },
              {
                name: "{ _id: { $in }, kind }",
                filter: { _id: { $in: list }, kind: "even" },
                selects: (d) => among(d) && d["kind"] === "even",
              },
              {
                name: "{ label: { $in }, _id: { $in } }",
                filter: { label: { $in: labels(ID_DOCS) }, _id: { $in: list } },
                selects: among,
              },
              {
                name: "{ _id: { $in, $ne: A } }",
                filter: { _id: { $in: list, $ne: A } },
                selects: (d) => among(d) && !same(d["_id"], A),
              },
              { name: "{ _id: { $nin } }", filter: { _id: { $nin: list } }, selects: (d) => !among(d) },
            ];
            for (const [i, { name, filter, selects }] of (depth === "all" ? filters : filters.slice(0, 1)).entries()) {
              const what = `${listName}, ${name}`;
              const want = labels(ID_DOCS.filter(selects));
              if (depth === "reads" || i > 0) await assertReads(coll, filter, want, what);
              else await assertEveryCommand(coll, ID_DOCS, filter, want, what);
            }
          }
        });
      });
    });

    it("_id is never an array, as MongoDB has it", async () => {
      const coll = db.collection<{ _id: unknown; label?: string }>("in_id_arrays");
      await coll.insertOne({ _id: "x", label: "x" });
      await assert.rejects(coll.insertOne({ _id: ["x"] }), "insertOne");
      await assert.rejects(coll.insertMany([{ _id: ["y"] }]), "insertMany");
      await assert.rejects(coll.updateOne({ label: "new" }, { $set: { _id: ["z"] } }, { upsert: true }), "upsert");
      await assert.rejects(
        coll.replaceOne({ label: "new" }, { _id: ["z"] } as Document, { upsert: true }),
        "replacing upsert",
      );
      assert.deepEqual(await coll.find({}).toArray(), [{ _id: "x", label: "x" }]);
    });
  });

  it("counts unread notifications of many recipients in one aggregation, with and without an index", async () => {
    const users = Array.from({ length: 8 }, () => new ObjectId());
    const [u0, u1, u2] = users as [ObjectId, ObjectId, ObjectId];
    const at = new Date(WHEN.getTime() + 1);
    // Recipient i has i + 1 notifications: every third read, every fourth archived.
    const docs: Document[] = users.flatMap((recipientId, i) =>
      Array.from({ length: i + 1 }, (_, j) => ({
        recipientId,
        readAt: j % 3 === 1 ? at : null,
        archivedAt: j % 4 === 3 ? at : null,
      })),
    );
    docs.push(
      { recipientId: u0.toHexString(), readAt: null, archivedAt: null },
      { recipientId: [u1], readAt: null, archivedAt: null },
      { readAt: null, archivedAt: null },
      { recipientId: u2, archivedAt: null },
      { recipientId: u2, readAt: null },
    );
    const listed = [u0, u1, u2, users[5], users[7], u1, new ObjectId()];
    const pipeline = [
      { $match: { recipientId: { $in: listed }, readAt: null, archivedAt: null } },
      { $group: { _id: "$recipientId", n: { $sum: 1 } } },
    ];
    const key = (id: unknown) => (Array.isArray(id) ? `[${id.map(String).join(",")}]` : String(id));
    const want = new Map<string, number>();
    for (const d of docs) {
      if (
        !inMatches(d["recipientId"], listed) ||
        !inMatches(d["readAt"], [null]) ||
        !inMatches(d["archivedAt"], [null])
      )
        continue;
      const k = key(d["recipientId"]);
      want.set(k, (want.get(k) ?? 0) + 1);
    }
    // Two of u2's three are unread, and so are both with readAt or archivedAt missing; an array
    // holding a listed id counts under the array.
    assert.equal(want.get(key(u2)), 2 + 2);
    assert.equal(want.get(key([u1])), 1);

    for (const [n, indexes] of [[], [{ recipientId: 1, readAt: 1, archivedAt: 1 }]].entries()) {
      const coll = db.collection(`in_unread_${n}`);
      for (const index of indexes) await coll.createIndex(index);
      await coll.insertMany(docs.map((d) => ({ ...d })));
      const got = new Map((await coll.aggregate(pipeline).toArray()).map((g) => [key(g["_id"]), g["n"] as number]));
      assert.deepEqual(got, want, `indexes: ${JSON.stringify(indexes)}`);
    }
  });

  /** The reads of assertEveryCommand, for filters too long to run them all. */
  async function assertReads(coll: Collection, filter: Document, want: string[], what: string): Promise<void> {
    assert.deepEqual(labels(await coll.find(filter, { sort: { seq: 1 } }).toArray()), want, `find: ${what}`);
    assert.equal(await coll.countDocuments(filter), want.length, `countDocuments: ${what}`);
    assert.deepEqual(
      labels(await coll.aggregate([{ $match: filter }, { $sort: { seq: 1 } }]).toArray()),
      want,
      `aggregate: ${what}`,
    );
    const many = await coll.updateMany(filter, { $set: { hit: true } });
    assert.equal(many.modifiedCount, want.length, `updateMany modified: ${what}`);
    assert.deepEqual(await hits(coll), want, `updateMany wrote: ${what}`);
    await coll.updateMany({}, { $unset: { hit: "" } });
  }

  /**
   * Runs filter through every command that takes one, and checks each selects the documents
   * labelled `want` (in seq order); writes are undone after each check.
   */
  async function assertEveryCommand(
    coll: Collection,
    docs: Document[],
    filter: Document,
    want: string[],
    what: string,
  ): Promise<void> {
    const all = labels(docs);
    const restore = async (labelled: string[]) => {
      const back = docs.filter((d) => labelled.includes(d["label"] as string));
      if (back.length > 0) await coll.insertMany(back);
    };

    assert.deepEqual(
      labels(await coll.find(filter, { sort: { seq: 1 }, batchSize: 2 }).toArray()),
      want,
      `find: ${what}`,
    );
    assert.deepEqual(sorted(labels(await coll.find(filter).toArray())), sorted(want), `find unsorted: ${what}`);
    assert.equal(await coll.countDocuments(filter), want.length, `countDocuments: ${what}`);
    const counted = await db.command({ count: coll.collectionName, query: filter });
    assert.equal(counted["n"], want.length, `count: ${what}`);
    assert.deepEqual(sorted((await coll.distinct("label", filter)) as string[]), sorted(want), `distinct: ${what}`);
    assert.deepEqual(
      labels(await coll.aggregate([{ $match: filter }, { $sort: { seq: 1 } }]).toArray()),
      want,
      `aggregate $match first: ${what}`,
    );
    assert.deepEqual(
      labels(await coll.aggregate([{ $sort: { seq: 1 } }, { $match: filter }]).toArray()),
      want,
      `aggregate $match after $sort: ${what}`,
    );

    const picked = await coll.findOneAndUpdate(filter, { $set: { hit: true } }, { sort: { seq: 1 } });
    assert.equal(picked?.["label"], want[0], `findOneAndUpdate: ${what}`);
    assert.deepEqual(await hits(coll), want.slice(0, 1), `findOneAndUpdate wrote: ${what}`);
    await coll.updateMany({}, { $unset: { hit: "" } });

    const many = await coll.updateMany(filter, { $set: { hit: true } });
    assert.equal(many.matchedCount, want.length, `updateMany matched: ${what}`);
    assert.equal(many.modifiedCount, want.length, `updateMany modified: ${what}`);
    assert.deepEqual(await hits(coll), want, `updateMany wrote: ${what}`);
    await coll.updateMany({}, { $unset: { hit: "" } });

    const one = await coll.updateOne(filter, { $set: { hit: true } });
    assert.equal(one.modifiedCount, Math.min(1, want.length), `updateOne: ${what}`);
    const [hit, ...more] = await hits(coll);
    assert.ok(
      (want.length === 0 && hit === undefined) || (hit !== undefined && want.includes(hit) && more.length === 0),
      `updateOne wrote ${hit}: ${what}`,
    );
    await coll.updateMany({}, { $unset: { hit: "" } });

    const removed = await coll.findOneAndDelete(filter, { sort: { seq: 1 } });
    assert.equal(removed?.["label"], want[0], `findOneAndDelete: ${what}`);
    assert.deepEqual(
      await remaining(coll),
      all.filter((label) => label !== want[0]),
      `findOneAndDelete left: ${what}`,
    );
    await restore(want.slice(0, 1));

    const deleted = await coll.deleteMany(filter);
    assert.equal(deleted.deletedCount, want.length, `deleteMany: ${what}`);
    assert.deepEqual(
      await remaining(coll),
      all.filter((label) => !want.includes(label)),
      `deleteMany left: ${what}`,
    );
    await restore(want);

    assert.equal((await coll.deleteOne(filter)).deletedCount, Math.min(1, want.length), `deleteOne: ${what}`);
    const left = await remaining(coll);
    const gone = all.filter((label) => !left.includes(label));
    assert.ok(
      gone.length === Math.min(1, want.length) && gone.every((label) => want.includes(label)),
      `deleteOne removed ${gone.join(", ")}: ${what}`,
    );
    await restore(gone);
  }

  /** Labels of the documents marked `hit`, in insertion order. */
  async function hits(coll: Collection): Promise<string[]> {
    const docs = await coll.find({}, { sort: { seq: 1 } }).toArray();
    return labels(docs.filter((d) => d["hit"] === true));
  }

  async function remaining(coll: Collection): Promise<string[]> {
    return labels(await coll.find({}, { sort: { seq: 1 } }).toArray());
  }
});
