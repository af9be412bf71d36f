import assert from "node:assert/strict";
import { existsSync, globSync, readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { projectRoot } from "../../dev/local-stack.js";
import {
  Kind,
  astFromValue,
  buildSchema,
  parse,
  print,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLSchema,
} from "graphql";

const ROOT = projectRoot();
const API_DOC = "docs/api.md";
const ROOT_TYPES = ["Query", "Mutation", "Subscription"] as const;
type RootType = (typeof ROOT_TYPES)[number];

const read = (file: string) => readFileSync(path.join(ROOT, file), "utf8");

/** Fails with every problem found, one per line, rather than with the first. */
function assertNone(problems: readonly string[], advice: string): void {
  if (problems.length > 0) assert.fail(`${problems.length} problem(s):\n  ${problems.join("\n  ")}\n${advice}`);
}

/** A Markdown file's lines, with whether each sits inside a fenced code block (fences included). */
function markdownLines(text: string): { text: string; line: number; inCode: boolean }[] {
  let fence: string | null = null;
  return text.split("\n").map((line, i) => {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === null && marker) {
      fence = marker;
      return { text: line, line: i + 1, inCode: true };
    }
    if (fence !== null) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = null;
      return { text: line, line: i + 1, inCode: true };
    }
    return { text: line, line: i + 1, inCode: false };
  });
}

/** ATX headings (`## Title`) and setext ones (a paragraph line underlined with === or ---). */
function headings(text: string): string[] {
  const lines = markdownLines(text);
  const found: string[] = [];
  lines.forEach((l, i) => {
    if (l.inCode) return;
    const atx = /^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/.exec(l.text);
    if (atx?.[2] !== undefined) {
      found.push(atx[2]);
      return;
    }
    const next = lines[i + 1];
    const underline = next && !next.inCode && /^ {0,3}(=+|-+)\s*$/.test(next.text);
    const paragraph = l.text.trim() !== "" && !/^\s*([-*+>|]|\d+[.)]|#)/.test(l.text) && !/^ {4}/.test(l.text);
    const previousBlank = i === 0 || (lines[i - 1]?.text.trim() ?? "") === "";
    if (underline && paragraph && previousBlank) {
      found.push(l.text.trim());
    }
  });
  return found;
}

/**
 * GitHub's anchor for a heading: its rendered text lowercased, punctuation dropped except '-' and
 * '_', each space a '-'; a repeated slug gets -1, -2, … in order of appearance.
 */
function githubSlugs(titles: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return titles.map((title) => {
    const base = title
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/<[^>]*>/g, "")
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
      .replace(/ /g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    return count === 0 ? base : `${base}-${count}`;
  });
}

/** Every anchor a Markdown file offers: its headings' slugs and explicit HTML ids and names. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set(githubSlugs(headings(text)));
  for (const match of text.matchAll(/<[a-z]+\s[^>]*\b(?:id|name)="([^"]+)"/gi)) if (match[1]) anchors.add(match[1]);
  return anchors;
}

interface Link {
  target: string;
  line: number;
  raw: string;
}

/** Inline links and images, and reference definitions, outside code blocks and code spans. */
function linksOf(text: string): Link[] {
  const links: Link[] = [];
  for (const l of markdownLines(text)) {
    if (l.inCode) continue;
    // Code spans are blanked first (kept in place, so a match still points at the original text):
    // `[a](b)` written as code is an example, not a link.
    const prose = l.text.replace(
      /(`+)((?:(?!\1).)+?)\1/g,
      (_m, ticks: string, body: string) => ticks + " ".repeat(body.length) + ticks,
    );
    for (const m of prose.matchAll(/!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)) {
      const raw = l.text.slice(m.index, m.index + m[0].length);
      if (m[1]) links.push({ target: m[1].replace(/^<|>$/g, ""), line: l.line, raw });
    }
    const definition = /^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(prose);
    if (definition?.[1]) {
      links.push({ target: definition[1].replace(/^<|>$/g, ""), line: l.line, raw: definition[0] });
    }
  }
  return links;
}

/** What is wrong with one link of `file`, or null when it resolves. */
function brokenLink(file: string, link: Link): string | null {
  if (/^[a-z][a-z\d+.-]*:/i.test(link.target) || link.target.startsWith("//")) return null;
  const hash = link.target.indexOf("#");
  let pathPart: string;
  let anchor: string | null;
  try {
    pathPart = decodeURIComponent(hash < 0 ? link.target : link.target.slice(0, hash)).replace(/\?.*$/, "");
    anchor = hash < 0 ? null : decodeURIComponent(link.target.slice(hash + 1));
  } catch {
    return "is not a valid URL";
  }
  const absolute = pathPart.startsWith("/")
    ? path.join(ROOT, pathPart)
    : path.resolve(ROOT, path.dirname(file), pathPart || path.basename(file));
  const relative = path.relative(ROOT, absolute);
  if (relative.startsWith("..") || path.isAbsolute(relative)) return "points outside the repository";
  if (!existsSync(absolute)) return `${relative} does not exist`;
  if (anchor && /\.md$/i.test(absolute) && statSync(absolute).isFile()) {
    if (!anchorsOf(readFileSync(absolute, "utf8")).has(anchor)) return `${relative} has no heading for #${anchor}`;
  }
  return null;
}

function markdownFiles(): string[] {
  return [
    "README.md",
    ...globSync("docs/**/*.md", { cwd: ROOT })
      .map((f) => f.split(path.sep).join("/"))
      .sort(),
  ];
}

// --- docs/api.md against the schema ---

const schema: GraphQLSchema = buildSchema(read("schema/schema.graphql"));

function rootType(name: RootType): GraphQLObjectType {
  const type = schema.getType(name);
  assert.ok(type && "getFields" in type, `schema/schema.graphql has a ${name} type`);
  return type as GraphQLObjectType;
}

function defaultOf(arg: GraphQLField<unknown, unknown>["args"][number]): string | undefined {
  if (arg.defaultValue === undefined) return undefined;
  const ast = astFromValue(arg.defaultValue, arg.type);
  return ast ? print(ast) : undefined;
}

interface IndexRow {
  root: RootType;
  name: string;
  args: string[];
  returns: string | undefined;
  line: number;
}

/** The rows of the tables under "## Operations index" › "### Query" (Mutation, Subscription). */
function operationsIndex(): IndexRow[] {
  const lines = markdownLines(read(API_DOC));
  const start = lines.findIndex((l) => !l.inCode && /^##\s+Operations index\s*$/i.test(l.text));
  assert.ok(start >= 0, `${API_DOC} has a "## Operations index" section`);
  const rows: IndexRow[] = [];
  let root: RootType | null = null;
  for (const l of lines.slice(start + 1)) {
    if (l.inCode) continue;
    if (/^##\s/.test(l.text)) break;
    const sub = /^###\s+(\S+)\s*$/.exec(l.text)?.[1];
    if (sub !== undefined) {
      root = ROOT_TYPES.find((t) => t === sub) ?? null;
      continue;
    }
    if (!root || !l.text.trimStart().startsWith("|")) continue;
    const cells = l.text
      .trim()
      .replace(/^\||\|$/g, "")
      .split(/(?<!\\)\|/);
    const code = (cell: string | undefined) => [...(cell ?? "").matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? "");
    const name = code(cells[0])[0];
    if (!name) continue;
    rows.push({ root, name, args: code(cells[1]), returns: code(cells[2])[0], line: l.line });
  }
  return rows;
}

/** Each operation's section: a "### `name`" heading, then a graphql block whose first line is its signature. */
function documentedSignatures(): { name: string; heading: number; signature: string | null; line: number }[] {
  const lines = markdownLines(read(API_DOC));
  const fence = /^ {0,3}(`{3,}|~{3,})/;
  const found: { name: string; heading: number; signature: string | null; line: number }[] = [];
  lines.forEach((l, i) => {
    const name = l.inCode ? undefined : /^###\s+`(\w+)`\s*$/.exec(l.text)?.[1];
    if (!name) return;
    const section = lines.slice(i + 1);
    const end = section.findIndex((s) => !s.inCode && /^#{1,3}\s/.test(s.text));
    const opening = section
      .slice(0, end < 0 ? undefined : end)
      .findIndex((s) => s.inCode && /^ {0,3}(`{3,}|~{3,})\s*graphql\s*$/.test(s.text));
    const first = opening < 0 ? undefined : section.slice(opening + 1).find((s) => s.text.trim() !== "");
    const signature = first?.inCode && !fence.test(first.text) ? first.text.trim() : null;
    found.push({ name, heading: l.line, signature, line: first?.line ?? l.line });
  });
  return found;
}

/** How a documented signature differs from the schema's field, if it does. */
function signatureProblems(signature: string, field: GraphQLField<unknown, unknown>): string[] {
  let parsed;
  try {
    const document = parse(`type Signature { ${signature} }`);
    const definition = document.definitions[0];
    parsed = definition?.kind === Kind.OBJECT_TYPE_DEFINITION ? definition.fields?.[0] : undefined;
  } catch (err) {
    return [`does not parse as a field definition (${err instanceof Error ? err.message : String(err)})`];
  }
  if (!parsed) return ["does not parse as a field definition"];
  const problems: string[] = [];
  if (parsed.name.value !== field.name) problems.push(`names ${parsed.name.value}, not ${field.name}`);
  if (print(parsed.type) !== String(field.type)) {
    problems.push(`returns ${print(parsed.type)}, the schema ${String(field.type)}`);
  }
  const documented = new Map((parsed.arguments ?? []).map((a) => [a.name.value, a]));
  for (const arg of field.args) {
    const doc = documented.get(arg.name);
    if (!doc) {
      problems.push(`lacks argument ${arg.name}: ${String(arg.type)}`);
      continue;
    }
    if (print(doc.type) !== String(arg.type)) {
      problems.push(`types ${arg.name} as ${print(doc.type)}, the schema as ${String(arg.type)}`);
    }
    const docDefault = doc.defaultValue ? print(doc.defaultValue) : undefined;
    if (docDefault !== defaultOf(arg)) {
      problems.push(`gives ${arg.name} the default ${docDefault ?? "none"}, the schema ${defaultOf(arg) ?? "none"}`);
    }
  }
  for (const name of documented.keys()) {
    if (!field.args.some((a) => a.name === name)) problems.push(`has argument ${name}, which the schema lacks`);
  }
  return problems;
}

describe(API_DOC, () => {
  it("indexes every Query, Mutation and Subscription field of schema/schema.graphql, and only those", () => {
    const rows = operationsIndex();
    const problems: string[] = [];
    for (const root of ROOT_TYPES) {
      const fields = rootType(root).getFields();
      const listed = rows.filter((r) => r.root === root);
      for (const name of Object.keys(fields)) {
        if (!listed.some((r) => r.name === name)) {
          problems.push(`${root}.${name} is in the schema but missing from the "### ${root}" table`);
        }
      }
      const seen = new Set<string>();
      for (const row of listed) {
        const where = `${API_DOC}:${row.line}: ${root}.${row.name}`;
        if (seen.has(row.name)) problems.push(`${where} is listed twice`);
        seen.add(row.name);
        const field = fields[row.name];
        if (!field) {
          problems.push(`${where} is listed but the schema has no such field`);
          continue;
        }
        const expected = field.args.map((a) => a.name).sort();
        if ([...row.args].sort().join(", ") !== expected.join(", ")) {
          problems.push(`${where} lists arguments (${row.args.join(", ")}), the schema has (${expected.join(", ")})`);
        }
        if (row.returns !== String(field.type)) {
          problems.push(
            `${where} returns ${row.returns ?? "nothing"} in the table, ${String(field.type)} in the schema`,
          );
        }
      }
    }
    assertNone(problems, "Update the operations index of docs/api.md to match schema/schema.graphql.");
  });

  it("gives every operation a section whose signature matches the schema", () => {
    const fields = new Map(
      ROOT_TYPES.flatMap((root) => Object.values(rootType(root).getFields()).map((f) => [f.name, f])),
    );
    const sections = documentedSignatures();
    const problems: string[] = [];
    for (const name of fields.keys()) {
      if (!sections.some((s) => s.name === name)) problems.push(`${name} has no "### \`${name}\`" section`);
    }
    for (const section of sections) {
      const field = fields.get(section.name);
      if (!field) {
        problems.push(`${API_DOC}:${section.heading}: section ${section.name} documents an operation the schema lacks`);
      } else if (section.signature === null) {
        problems.push(`${API_DOC}:${section.heading}: section ${section.name} has no graphql block with its signature`);
      } else {
        for (const p of signatureProblems(section.signature, field)) {
          problems.push(`${API_DOC}:${section.line}: the signature of ${section.name} ${p}`);
        }
      }
    }
    assertNone(problems, "Each operation's first graphql block holds its signature, as in schema/schema.graphql.");
  });

  it("reads a signature the way the schema states it", () => {
    const notifications = rootType("Query").getFields()["notifications"];
    assert.ok(notifications);
    assert.deepEqual(
      signatureProblems(
        "notifications(first: Int = 20, after: String, filter: NotificationFilter): NotificationConnection!",
        notifications,
      ),
      [],
      "argument order does not matter",
    );
    assert.deepEqual(
      signatureProblems("notifications(first: Int = 10, after: ID): NotificationConnection", notifications),
      [
        "returns NotificationConnection, the schema NotificationConnection!",
        "types after as ID, the schema as String",
        "lacks argument filter: NotificationFilter",
        "gives first the default 10, the schema 20",
      ],
    );
  });
});

// --- Links ---

describe("Markdown links", () => {
  it("point to files and headings that exist in the repository", () => {
    const problems: string[] = [];
    for (const file of markdownFiles()) {
      for (const link of linksOf(read(file))) {
        const broken = brokenLink(file, link);
        if (broken) problems.push(`${file}:${link.line}: ${link.raw} ${broken}`);
      }
    }
    assertNone(problems, "Fix each link, or the heading it names (anchors follow GitHub's slugs).");
  });

  it("slug headings the way GitHub does", () => {
    assert.deepEqual(
      githubSlugs([
        "The flow: signal → job → persist → publish → subscription",
        "Idempotency keys for `sendNotification`",
        "The live inbox stream (`inboxEvents`)",
        "snake_case and kebab-case",
        "[Linked](https://example.com) title",
        "Limits",
        "Limits",
      ]),
      [
        "the-flow-signal--job--persist--publish--subscription",
        "idempotency-keys-for-sendnotification",
        "the-live-inbox-stream-inboxevents",
        "snake_case-and-kebab-case",
        "linked-title",
        "limits",
        "limits-1",
      ],
    );
  });

  it("finds links in prose only, not in code", () => {
    const text = [
      "See [a](a.md) and `[b](b.md)`.",
      "```",
      "[c](c.md)",
      "```",
      "[ref]: d.md#top",
      "![img](e.png) and [`name`](#name)",
    ];
    assert.deepEqual(
      linksOf(text.join("\n")).map((l) => `${l.line}: ${l.raw}`),
      ["1: [a](a.md)", "5: [ref]: d.md#top", "6: ![img](e.png)", "6: [`name`](#name)"],
    );
  });
});

// --- Paths outside the repository ---

/**
 * The repository is published on its own: a mention of files that live beside it, not in it, is a
 * dangling reference for every reader. The names are assembled so that this file does not match.
 */
const OUTSIDE: readonly { label: string; pattern: RegExp }[] = [
  { label: ["..", "shared"].join("/"), pattern: new RegExp(["\\.\\.", "shared"].join("/")) },
  // docs/api.md is this repository's own; the pattern is case-sensitive, so only the uppercase name matches.
  { label: "API" + ".md", pattern: new RegExp("(?<!docs/)" + "API" + "\\.md") },
  { label: "STACK" + ".md", pattern: new RegExp("STACK" + "\\.md") },
  { label: "STYLE" + ".md", pattern: new RegExp("STYLE" + "\\.md") },
];

const SCANNED = ["README.md", "docs", "src", "test", "scripts", "dev", ".ci", "Dockerfile", "docker-compose.yml"];

function filesUnder(relative: string): string[] {
  const absolute = path.join(ROOT, relative);
  if (!existsSync(absolute)) return [];
  if (!statSync(absolute).isDirectory()) return [relative];
  return readdirSync(absolute, { withFileTypes: true })
    .filter((entry) => entry.name !== "node_modules")
    .flatMap((entry) => filesUnder(path.join(relative, entry.name)))
    .sort();
}

describe("files of the repository", () => {
  it("mention no path outside the repository", () => {
    const problems: string[] = [];
    for (const file of SCANNED.flatMap(filesUnder)) {
      const bytes = readFileSync(path.join(ROOT, file));
      if (bytes.includes(0)) continue;
      bytes
        .toString("utf8")
        .split("\n")
        .forEach((line, i) => {
          for (const { label, pattern } of OUTSIDE) {
            if (pattern.test(line)) problems.push(`${file.split(path.sep).join("/")}:${i + 1}: mentions ${label}`);
          }
        });
    }
    assertNone(problems, "Say what is meant in the repository's own words, or link a file inside it.");
  });

  it("tells the repository's api.md from the names outside it", () => {
    const named = (line: string) => OUTSIDE.filter((o) => o.pattern.test(line)).map((o) => o.label);
    assert.deepEqual(named("see docs/api.md"), []);
    assert.deepEqual(named("see " + "API" + ".md and ../" + "shared/x"), [["..", "shared"].join("/"), "API" + ".md"]);
  });
});

// --- Sizes ---

describe("documentation size", () => {
  it("keeps README.md under 12 KB", () => {
    const size = statSync(path.join(ROOT, "README.md")).size;
    assert.ok(size < 12 * 1024, `README.md is ${size} bytes, over 12288: move detail into docs/ and link it`);
  });

  it("keeps docs/architecture.md under 300 lines", () => {
    const lines = read("docs/architecture.md").replace(/\n$/, "").split("\n").length;
    assert.ok(lines < 300, `docs/architecture.md has ${lines} lines, over 299: move detail into pages of its own`);
  });
});
