import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MongoClient, ObjectId } from "mongodb";
import { Redis } from "ioredis";
import { CreatePostDocument } from "../generated/graphql.js";
import { eventually, gqlOk } from "../helpers/graphql-client.js";
import { signUp } from "../helpers/users.js";
import { startCluster, startHerald, type Cluster, type HeraldProcess } from "../helpers/herald.js";
import { testRedisUrl } from "../helpers/env.js";
import { InboxLog } from "../../src/modules/notification/inbox-log.js";
import { InboxEventType, type InboxChange } from "../../src/modules/notification/inbox-events.js";

const FOLLOWERS = 20_000;
const SEED_BATCH = 2_000;

/**
 * The worker is SIGKILLed in the middle of a fan-out to 20,000 followers and started again: the
 * fan-out resumes (its lock expires), the batch that was written but not announced is announced by
 * the recovery sweep, and every follower has the NEW_POST exactly once, in the inbox and in the
 * stream.
 */
describe("fan-out across a worker's crash", () => {
  let cluster: Cluster;
  let worker: HeraldProcess | undefined;
  let mongo: MongoClient;
  let redis: Redis;

  before(async () => {
    // A job whose worker died is run again once its lock expires; the sweep takes work older than
    // its grace for lost, which must be longer than a lock.
    cluster = await startCluster("e2e_worker_crash", 1, { AGENDA_LOCK_LIFETIME_MS: "3000", RECOVERY_GRACE_MS: "6000" });
    mongo = await MongoClient.connect(cluster.env["MONGO_URL"] ?? "");
    redis = new Redis(testRedisUrl());
  });
  after(async () => {
    const codes = await Promise.all([...cluster.apis, ...(worker ? [worker] : [])].map((p) => p.stop()));
    assert.deepEqual(
      codes.filter((c) => c !== 0),
      [],
    );
    await mongo?.close();
    redis?.disconnect();
  });

  it("every follower has the NEW_POST exactly once, in the inbox and in the stream", async () => {
    const [api] = cluster.apis;
    assert.ok(api);
    const author = await signUp(api.url, "Celebrity");
    const db = mongo.db();
    const followerIds = Array.from({ length: FOLLOWERS }, () => new ObjectId());
    for (let i = 0; i < FOLLOWERS; i += SEED_BATCH) {
      await db.collection("follows").insertMany(
        followerIds.slice(i, i + SEED_BATCH).map((followerId) => ({
          _id: new ObjectId(),
          followerId,
          followeeId: new ObjectId(author.id),
          createdAt: new Date(),
          notifiedAt: new Date(),
        })),
      );
    }
    // Each follower's app has started its stream (as asking for a page's streamCursor does).
    const log = new InboxLog(redis, { historyEvents: 1000, historyMs: 3600_000 });
    for (let i = 0; i < FOLLOWERS; i += SEED_BATCH) {
      await Promise.all(followerIds.slice(i, i + SEED_BATCH).map((id) => log.position(id.toHexString())));
    }

    const { createPost } = await gqlOk(
      api.url,
      CreatePostDocument,
      { input: { title: "Big news", body: "…" } },
      author.auth,
    );
    const postId = new ObjectId(createPost.id);
    const stored = () => db.collection("notifications").countDocuments({ postId, kind: "NEW_POST" });
    await eventually(async () => ((await stored()) >= 2_000 ? true : undefined), {
      timeoutMs: 60_000,
      what: "the fan-out to be under way",
    });
    cluster.worker.child.kill("SIGKILL");
    const atCrash = await stored();
    assert.ok(atCrash < FOLLOWERS, `the crash came mid-fan-out (${atCrash} stored)`);
    worker = await startHerald({ ...cluster.env, ROLES: "worker" });

    await eventually(
      async () => {
        const post = await db.collection("posts").findOne({ _id: postId });
        const pending = await db.collection("pending_announcements").countDocuments({});
        return post?.["fanoutCompletedAt"] && pending === 0 ? true : undefined;
      },
      { timeoutMs: 120_000, what: "the fan-out to finish and every announcement to be made", intervalMs: 250 },
    );

    const perFollower = await db
      .collection("notifications")
      .aggregate<{ _id: ObjectId; n: number }>([
        { $match: { postId, kind: "NEW_POST" } },
        { $group: { _id: "$recipientId", n: { $sum: 1 } } },
      ])
      .toArray();
    assert.equal(perFollower.length, FOLLOWERS, "every follower has it in the inbox");
    assert.deepEqual(
      perFollower.filter((r) => r.n !== 1),
      [],
      "exactly once",
    );

    const inStream = new Map<string, number>();
    for (let i = 0; i < FOLLOWERS; i += SEED_BATCH) {
      const pipeline = redis.pipeline();
      const ids = followerIds.slice(i, i + SEED_BATCH).map((id) => id.toHexString());
      for (const id of ids) pipeline.xrange(`herald:{u:${id}}:inbox`, "-", "+");
      const replies = (await pipeline.exec()) ?? [];
      ids.forEach((id, j) => {
        const entries = (replies[j]?.[1] ?? []) as [string, string[]][];
        const added = entries.filter(([, fields]) => {
          const change = JSON.parse(fields[fields.indexOf("e") + 1] ?? "{}") as InboxChange;
          return change.type === InboxEventType.ADDED && change.notification.postId === createPost.id;
        });
        inStream.set(id, added.length);
      });
    }
    assert.deepEqual(
      [...inStream].filter(([, n]) => n !== 1),
      [],
      "every follower's stream has it exactly once",
    );
  });
});
