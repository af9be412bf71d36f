import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MongoClient, ObjectId } from "mongodb";
import { Redis } from "ioredis";
import { InboxLog } from "../../src/modules/notification/inbox-log.js";
import { InboxEventType, type InboxChange } from "../../src/modules/notification/inbox-events.js";
import { testRedisUrl } from "../helpers/env.js";
import {
  CreatePostDocument,
  DeleteAccountDocument,
  FollowDocument,
  UnreadCountDocument,
} from "../generated/graphql.js";
import { eventually, gqlOk } from "../helpers/graphql-client.js";
import { startCluster, startHerald, type Cluster, type HeraldProcess } from "../helpers/herald.js";
import { seedFollowers, seedNotifications } from "../helpers/seed.js";
import { signUp, untilUnread, type TestUser } from "../helpers/users.js";

const SEEDED_FOLLOWERS = 10_000;
const OWN_NOTIFICATIONS = 60_000;
const SEED_BATCH = 5_000;

/**
 * A large account deletion survives a crash of its worker: the account's post reached 10,000
 * inboxes and it has 60,000 notifications of its own; the worker is SIGKILLed part-way, another
 * is started, and the deletion finishes: nothing of the account is left, every follower's unread
 * counter is right (or gone, to be counted anew), and every follower's inbox stream has the
 * DELETED event of the post's notification.
 */
describe("a large account deletion across a worker's crash", () => {
  let cluster: Cluster;
  let worker: HeraldProcess | undefined;
  let mongo: MongoClient;
  let redis: Redis;

  before(async () => {
    // A job whose worker died is run again once its lock expires; the recovery sweep's grace must
    // be longer than a lock.
    cluster = await startCluster("e2e_deletion_crash", 1, {
      AGENDA_LOCK_LIFETIME_MS: "3000",
      RECOVERY_GRACE_MS: "6000",
    });
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

  it("finishes after a restart, leaving nothing of the account and every count right", async (t) => {
    const [api] = cluster.apis;
    assert.ok(api);
    const db = mongo.db();
    const leaver = await signUp(api.url, "Leaver");
    const leaverId = new ObjectId(leaver.id);
    const fans: TestUser[] = await Promise.all([signUp(api.url, "Fan A"), signUp(api.url, "Fan B")]);
    for (const fan of fans) await gqlOk(api.url, FollowDocument, { userId: leaver.id }, fan.auth);
    const followerIds = await seedFollowers(db, leaverId, SEEDED_FOLLOWERS);
    const { createPost } = await gqlOk(
      api.url,
      CreatePostDocument,
      { input: { title: "Farewell", body: "…" } },
      leaver.auth,
    );
    const postId = new ObjectId(createPost.id);
    const reached = () => db.collection("notifications").countDocuments({ postId });
    await eventually(async () => ((await reached()) === SEEDED_FOLLOWERS + fans.length ? true : undefined), {
      timeoutMs: 120_000,
      what: "the post's fan-out",
      intervalMs: 250,
    });
    await Promise.all(fans.map((fan) => untilUnread(api.url, fan, 2)));
    await seedNotifications(db, leaverId, OWN_NOTIFICATIONS);
    // Every follower's app has read its count (1: the NEW_POST) and started its stream.
    const log = new InboxLog(redis, { historyEvents: 1000, historyMs: 3600_000 });
    const ids = followerIds.map((id) => id.toHexString());
    await log.read(ids, (users) => Promise.resolve(new Map(users.map((id) => [id, 1]))));
    for (let i = 0; i < ids.length; i += SEED_BATCH) {
      await Promise.all(ids.slice(i, i + SEED_BATCH).map((id) => log.position(id)));
    }
    const newPostOf = new Map(
      (
        await db
          .collection("notifications")
          .find({ postId }, { projection: { recipientId: 1 } })
          .toArray()
      ).map((n) => [String(n["recipientId"]), String(n["_id"])]),
    );

    const left = async () =>
      (await reached()) + (await db.collection("notifications").countDocuments({ recipientId: leaverId }));
    const before = await left();
    await gqlOk(api.url, DeleteAccountDocument, { password: "correct horse battery" }, leaver.auth);
    // Killed once the post's notifications are leaving the inboxes (the account's own go after).
    await eventually(async () => ((await reached()) < SEEDED_FOLLOWERS + fans.length ? true : undefined), {
      timeoutMs: 60_000,
      what: "the deletion to be under way",
      intervalMs: 5,
    });
    cluster.worker.child.kill("SIGKILL");
    const atCrash = await left();
    assert.ok(atCrash > 0, `the crash came part-way (${atCrash} of ${before} left)`);
    t.diagnostic(
      `at the crash: ${await reached()} notifications about the post and ${atCrash} in all left of ${before}`,
    );
    worker = await startHerald({ ...cluster.env, ROLES: "worker" });

    // The job, run again, finishes the deletion; the recovery sweep (every minute) finishes the batch
    // the crash interrupted between its delete and its log: the DELETED events, the counts anew.
    await eventually(
      async () =>
        (await db.collection("users").countDocuments({ _id: leaverId })) === 0 &&
        (await db.collection("pending_withdrawals").countDocuments({})) === 0
          ? true
          : undefined,
      { timeoutMs: 180_000, what: "the deletion to finish", intervalMs: 250 },
    );
    assert.equal(await left(), 0, "every notification about the post and of the account is gone");
    assert.equal(await db.collection("posts").countDocuments({ authorId: leaverId }), 0);
    assert.equal(await db.collection("follows").countDocuments({ followeeId: leaverId }), 0);
    const pipeline = redis.pipeline();
    for (const id of ids) {
      pipeline.get(`herald:{u:${id}}:unread-count`);
      pipeline.xrange(`herald:{u:${id}}:inbox`, "-", "+");
    }
    const replies = (await pipeline.exec()) ?? [];
    const wrongCounts = ids.filter((_, i) => ![null, "0"].includes(replies[2 * i]?.[1] as string | null));
    assert.deepEqual(wrongCounts.slice(0, 5), [], `${wrongCounts.length} followers' counters still count the post`);
    const withoutEvent = ids.filter((id, i) => {
      const entries = (replies[2 * i + 1]?.[1] ?? []) as [string, string[]][];
      return !entries.some(([, fields]) => {
        const change = JSON.parse(fields[fields.indexOf("e") + 1] ?? "{}") as InboxChange;
        return change.type === InboxEventType.DELETED && change.notificationId === newPostOf.get(id);
      });
    });
    assert.deepEqual(withoutEvent.slice(0, 5), [], `${withoutEvent.length} followers' streams lack the DELETED event`);
    for (const fan of fans) {
      assert.equal(
        (await gqlOk(api.url, UnreadCountDocument, {}, fan.auth)).unreadCount,
        1,
        `${fan.name}: the WELCOME`,
      );
    }
  });
});
