import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Long, MongoClient, ObjectId, type Collection, type Db, type Document } from "mongodb";
import { testMongoUrl } from "../helpers/env.js";
import { uniqueDatabase } from "../helpers/herald.js";

/**
 * Equality on a field, `{ f: v }`, as MongoDB answers it: documents where f is v, or an array with
 * v as an element; never f missing, null, another type that looks the same, v nested deeper, or v
 * under another field. Herald's FerretDB build narrows such queries in SQL before filtering them
 * (tools/ferretdb/patches/sqlite-eq-pushdown.mjs), so every command that takes a filter is checked
 * here, with and without indexes on the field. The assertions are MongoDB's semantics: this runs
 * unchanged against MongoDB.
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

/** Index layouts: none, the field alone, leading or second in a compound index, another field. */
const LAYOUTS: { name: string; indexes: Document[] }[] = [
  { name: "no index", indexes: [] },
  { name: "an index on the field", indexes: [{ f: 1 }] },
  { name: "a compound index that starts with the field", indexes: [{ f: 1, g: -1 }] },
  { name: "a compound index with the field second", indexes: [{ g: 1, f: 1 }] },
  { name: "an index on another field of the filter", indexes: [{ kind: 1 }, { label: 1 }] },
];

/** Filters on `f` and what they select, from whether `{ f: value }` matches a document. */
function filtersFor(value: unknown): { name: string; filter: Document; selects: (doc: Document) => boolean }[] {
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

describe("equality on a field (FerretDB pushes it down to SQL)", () => {
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

  LAYOUTS.forEach((layout, l) => {
    describe(layout.name, () => {
      CASES.forEach((c, k) => {
        it(`finds, counts, updates and deletes by ${c.name}`, async () => {
          const coll: Collection = db.collection(`eq_${l}_${k}`);
          for (const key of layout.indexes) await coll.createIndex(key);
          const docs: Document[] = documentsFor(c).map((d, seq) => ({
            _id: new ObjectId(),
            seq,
            kind: seq % 2 === 0 ? "even" : "odd",
            ...(d.g === undefined ? { g: seq } : {}),
            ...d,
          }));
          await coll.insertMany(docs);
          const all = labels(docs);

          for (const { name, filter, selects } of filtersFor(c.value)) {
            const want = labels(docs.filter(selects));
            const what = `${c.name}, ${name}`;
            assert.ok(want.length >= 1 && want.length < docs.length, `${what}: the case selects some documents`);

            assert.deepEqual(
              labels(await coll.find(filter, { sort: { seq: 1 }, batchSize: 2 }).toArray()),
              want,
              `find: ${what}`,
            );
            assert.deepEqual(sorted(labels(await coll.find(filter).toArray())), sorted(want), `find unsorted: ${what}`);
            assert.equal(await coll.countDocuments(filter), want.length, `countDocuments: ${what}`);
            const counted = await db.command({ count: coll.collectionName, query: filter });
            assert.equal(counted["n"], want.length, `count: ${what}`);
            assert.deepEqual(
              sorted((await coll.distinct("label", filter)) as string[]),
              sorted(want),
              `distinct: ${what}`,
            );
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
            assert.deepEqual(await hits(coll), [want[0]], `findOneAndUpdate wrote: ${what}`);
            await coll.updateMany({}, { $unset: { hit: "" } });

            const many = await coll.updateMany(filter, { $set: { hit: true } });
            assert.equal(many.matchedCount, want.length, `updateMany matched: ${what}`);
            assert.equal(many.modifiedCount, want.length, `updateMany modified: ${what}`);
            assert.deepEqual(await hits(coll), want, `updateMany wrote: ${what}`);
            await coll.updateMany({}, { $unset: { hit: "" } });

            const one = await coll.updateOne(filter, { $set: { hit: true } });
            assert.equal(one.modifiedCount, 1, `updateOne: ${what}`);
            const [hit, ...more] = await hits(coll);
            assert.ok(hit !== undefined && want.includes(hit) && more.length === 0, `updateOne wrote ${hit}: ${what}`);
            await coll.updateMany({}, { $unset: { hit: "" } });

            const deleted = await coll.deleteMany(filter);
            assert.equal(deleted.deletedCount, want.length, `deleteMany: ${what}`);
            assert.deepEqual(
              await remaining(coll),
              all.filter((label) => !want.includes(label)),
              `deleteMany left: ${what}`,
            );
            await coll.insertMany(docs.filter((d) => want.includes(d["label"] as string)));

            assert.equal((await coll.deleteOne(filter)).deletedCount, 1, `deleteOne: ${what}`);
            const left = await remaining(coll);
            const removed = all.filter((label) => !left.includes(label));
            assert.ok(
              removed.length === 1 && want.includes(removed[0] ?? ""),
              `deleteOne removed ${removed.join(", ")}: ${what}`,
            );
            await coll.insertMany(docs.filter((d) => removed.includes(d["label"] as string)));
          }
        });
      });
    });
  });

  /** Labels of the documents marked `hit`, in insertion order. */
  async function hits(coll: Collection): Promise<string[]> {
    const docs = await coll.find({}, { sort: { seq: 1 } }).toArray();
    return labels(docs.filter((d) => d["hit"] === true));
  }

  async function remaining(coll: Collection): Promise<string[]> {
    return labels(await coll.find({}, { sort: { seq: 1 } }).toArray());
  }
});
