import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ObjectId } from "@mikro-orm/mongodb";
import type { Document } from "mongodb";
import { startWorkerStack, type WorkerStack } from "../helpers/stack.js";

/**
 * Every query Herald runs on a hot path, by collection: the keys it filters on, in the order an
 * index must start with to serve it (sort keys last). Kept beside the queries' owners in mind:
 * a new query belongs here.
 */
const QUERIES: { collection: string; what: string; filter: Document; sort?: Document }[] = [
  {
    collection: "notifications",
    what: "inbox page",
    filter: { recipientId: 1, createdAt: 1, _id: 1 },
    sort: { createdAt: -1, _id: -1 },
  },
  { collection: "notifications", what: "unread count", filter: { recipientId: 1, readAt: 1, archivedAt: 1 } },
  { collection: "notifications", what: "dedupe on insert", filter: { dedupeKey: 1 } },
  {
    collection: "notifications",
    what: "recovery sweep: emails never tried",
    filter: { "deliveries.status": 1, createdAt: 1 },
  },
  {
    collection: "follows",
    what: "fan-out page and follower count",
    filter: { followeeId: 1, _id: 1 },
    sort: { _id: 1 },
  },
  { collection: "follows", what: "follow / unfollow", filter: { followerId: 1, followeeId: 1 } },
  { collection: "follows", what: "recovery sweep", filter: { notifiedAt: 1, createdAt: 1 } },
  { collection: "users", what: "login by email", filter: { email: 1 } },
  { collection: "users", what: "recovery sweep", filter: { welcomedAt: 1, createdAt: 1 } },
  { collection: "posts", what: "recovery sweep", filter: { fanoutCompletedAt: 1, createdAt: 1 } },
  { collection: "comments", what: "recovery sweep", filter: { notifiedAt: 1, createdAt: 1 } },
  { collection: "notification_requests", what: "recovery sweep", filter: { completedAt: 1, createdAt: 1 } },
  { collection: "activity", what: "activity page", filter: { actorId: 1, createdAt: 1, _id: 1 } },
  { collection: "activity", what: "dedupe on insert", filter: { dedupeKey: 1 } },
  { collection: "pending_announcements", what: "recovery sweep", filter: { createdAt: 1 } },
  { collection: "reminders", what: "pending reminders of a user", filter: { userId: 1, status: 1, sendAt: 1 } },
  { collection: "reminders", what: "recovery sweep", filter: { status: 1, sendAt: 1 } },
  { collection: "preferences", what: "due digests", filter: { nextDigestAt: 1 } },
  { collection: "digest_items", what: "a user's waiting digest items", filter: { userId: 1, createdAt: 1 } },
  { collection: "digests", what: "this period's digest", filter: { userId: 1, period: 1 } },
  { collection: "digests", what: "recovery sweep: already in a digest", filter: { notificationIds: 1 } },
  { collection: "digests", what: "cleanup", filter: { createdAt: 1 } },
  { collection: "email_attempts", what: "cleanup", filter: { claimedAt: 1 } },
  { collection: "reminder_decisions", what: "cleanup", filter: { decidedAt: 1 } },
];

/**
 * Hot batched lookups by a `$in`, with lists as long as Herald sends them (the delivery planner's
 * preferences up to 1,000). An aggregation's filter is its leading `$match`.
 */
const IN_QUERIES: { collection: string; what: string; filter: () => Document; group?: Document }[] = [
  { collection: "users", what: "users of a burst of events", filter: () => ({ _id: { $in: ids(100) } }) },
  {
    collection: "preferences",
    what: "the delivery planner's preferences",
    filter: () => ({ _id: { $in: ids(1000) } }),
  },
  { collection: "notifications", what: "notifications of a digest", filter: () => ({ _id: { $in: ids(50) } }) },
  {
    collection: "notifications",
    what: "unread counts of many recipients",
    filter: () => ({ recipientId: { $in: ids(50) }, readAt: null, archivedAt: null }),
    group: { _id: "$recipientId", count: { $sum: 1 } },
  },
];

describe("indexes", () => {
  let stack: WorkerStack;

  before(async () => {
    stack = await startWorkerStack("it_indexes");
  });

  after(async () => {
    await stack.stop();
  });

  const db = () => stack.orm.em.getConnection().getDb();

  it("an index starts with the keys of every hot query", async () => {
    const missing: string[] = [];
    for (const query of QUERIES) {
      const indexes = await db().collection(query.collection).indexes();
      const wanted = Object.keys(query.filter);
      const served = indexes.some((index) => {
        const keys = Object.keys(index.key);
        return wanted.every((key, i) => keys[i] === key);
      });
      if (!served) missing.push(`${query.collection}: ${query.what} (${wanted.join(", ")})`);
    }
    assert.deepEqual(missing, []);
  });

  it("MongoDB plans each of them with an index, not a collection scan", async (t) => {
    const info = await db().admin().command({ buildInfo: 1 });
    if ("ferretdbVersion" in info || "ferretdbFeatures" in info) {
      t.skip("FerretDB v1 explains with SQLite's plan (checked below); this runs against real MongoDB (MONGO_URL)");
      return;
    }
    for (const query of QUERIES) {
      const filter = Object.fromEntries(Object.keys(query.filter).map((key) => [key, sampleValue(key)]));
      const cursor = db()
        .collection(query.collection)
        .find(filter, query.sort ? { sort: query.sort } : {});
      const plan = JSON.stringify(await cursor.explain("queryPlanner"));
      assert.doesNotMatch(plan, /COLLSCAN/, `${query.collection}: ${query.what}`);
    }
    for (const query of IN_QUERIES) {
      const plan = JSON.stringify(await explainIn(query));
      assert.doesNotMatch(plan, /COLLSCAN/, `${query.collection}: ${query.what}`);
    }
  });

  it("FerretDB searches an index for each of them that has an equality or a null it pushes down", async (t) => {
    const info = await db().admin().command({ buildInfo: 1 });
    if (!("ferretdbVersion" in info || "ferretdbFeatures" in info)) {
      t.skip("this checks Herald's FerretDB build (tools/ferretdb/patches), whose explain shows SQLite's plan");
      return;
    }
    for (const query of QUERIES) {
      const filter = Object.fromEntries(Object.keys(query.filter).map((key) => [key, sampleValue(key)]));
      // Top-level equality on an ObjectId, a string or null on the key the index starts with;
      // dotted paths stay in Go.
      if (Object.keys(filter)[0]?.includes(".") !== false) continue;
      const plan = JSON.stringify(await db().collection(query.collection).find(filter).explain());
      assert.match(plan, /USING INDEX/, `${query.collection}: ${query.what}: ${plan}`);
      assert.doesNotMatch(plan, /detail=SCAN/, `${query.collection}: ${query.what}: ${plan}`);
    }
  });

  it("FerretDB searches an index for each batched lookup by a $in", async (t) => {
    const info = await db().admin().command({ buildInfo: 1 });
    if (!("ferretdbVersion" in info || "ferretdbFeatures" in info)) {
      t.skip("this checks Herald's FerretDB build (tools/ferretdb/patches), whose explain shows SQLite's plan");
      return;
    }
    for (const query of IN_QUERIES) {
      // SQLite's plan, without the command and its long list.
      const plan = JSON.stringify((await explainIn(query))["queryPlanner"]);
      // _id's unique index, or the one that starts with the field.
      const index = Object.keys(query.filter())[0] === "_id" ? /USING INDEX \S+__id_ / : /USING INDEX/;
      assert.match(plan, index, `${query.collection}: ${query.what}: ${plan}`);
      assert.doesNotMatch(plan, /detail=SCAN/, `${query.collection}: ${query.what}: ${plan}`);
    }
  });

  it("FerretDB searches an index for each recovery sweep's { marker: null, createdAt: { $lt } }", async (t) => {
    const info = await db().admin().command({ buildInfo: 1 });
    if (!("ferretdbVersion" in info || "ferretdbFeatures" in info)) {
      t.skip("this checks Herald's FerretDB build (tools/ferretdb/patches), whose explain shows SQLite's plan");
      return;
    }
    const cutoff = new Date(Date.now() - 60_000);
    const sweeps: [string, string][] = [
      ["comments", "notifiedAt"],
      ["follows", "notifiedAt"],
      ["users", "welcomedAt"],
      ["posts", "fanoutCompletedAt"],
      ["notification_requests", "completedAt"],
    ];
    for (const [collection, marker] of sweeps) {
      for (const filter of [
        { [marker]: null, createdAt: { $lt: cutoff } },
        { [marker]: { $eq: null }, createdAt: { $lt: cutoff } },
      ]) {
        const what = `${collection}: ${JSON.stringify(filter)}`;
        const plan = JSON.stringify(await db().collection(collection).find(filter).explain());
        // Missing, null and arrays: three searches of the index that starts with the marker.
        assert.match(plan, /MULTI-INDEX OR/, `${what}: ${plan}`);
        const searches = plan.match(/SEARCH \S+ USING INDEX \S+/g) ?? [];
        assert.equal(searches.length, 3, `${what}: ${plan}`);
        assert.ok(
          searches.every((s) => s.includes(marker)),
          `${what}: ${plan}`,
        );
        assert.doesNotMatch(plan, /detail=SCAN/, `${what}: ${plan}`);
      }
    }
    // An unread count: the equality on recipientId is the one pushed down, not a null.
    const unread = JSON.stringify(
      await db()
        .collection("notifications")
        .find({ readAt: null, recipientId: new ObjectId(), archivedAt: null })
        .explain(),
    );
    const searches = unread.match(/SEARCH \S+ USING INDEX \S+/g) ?? [];
    assert.ok(searches.length > 0 && searches.every((s) => s.includes("recipientId")), unread);
    assert.doesNotMatch(unread, /detail=SCAN/, unread);
  });

  function explainIn(query: (typeof IN_QUERIES)[number]): Promise<Document> {
    const coll = db().collection(query.collection);
    const filter = query.filter();
    if (query.group) return coll.aggregate([{ $match: filter }, { $group: query.group }]).explain("queryPlanner");
    return coll.find(filter).explain("queryPlanner");
  }
});

function ids(n: number): ObjectId[] {
  return Array.from({ length: n }, () => new ObjectId());
}

function sampleValue(key: string): unknown {
  if (key === "_id" || key.endsWith("Id")) return new ObjectId();
  if (key.endsWith("At")) return null;
  return "x";
}
