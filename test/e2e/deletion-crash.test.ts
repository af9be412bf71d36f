import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MongoClient, ObjectId, type Db } from "mongodb";
import {
  CreatePostDocument,
  DeleteAccountDocument,
  FollowDocument,
  UnreadCountDocument,
} from "../generated/graphql.js";
import { eventually, gqlOk } from "../helpers/graphql-client.js";
import { startCluster, startHerald, type Cluster, type HeraldProcess } from "../helpers/herald.js";
import { signUp, untilUnread, type TestUser } from "../helpers/users.js";

const SEEDED_FOLLOWERS = 10_000;
const OWN_NOTIFICATIONS = 60_000;
const SEED_BATCH = 5_000;

/**
 * A large account deletion survives a crash of its worker: the account's post reached 10,000
 * inboxes and it has 60,000 notifications of its own; the worker is SIGKILLed part-way, another
 * is started, and the deletion finishes: nothing of the account is left, and the real followers'
 * unread counts are right.
 */
describe("a large account deletion across a worker's crash", () => {
  let cluster: Cluster;
  let worker: HeraldProcess | undefined;
  let mongo: MongoClient;

  before(async () => {
    // A job whose worker died is run again once its lock expires; the recovery sweep's grace must
    // be longer than a lock.
    cluster = await startCluster("e2e_deletion_crash", 1, {
      AGENDA_LOCK_LIFETIME_MS: "3000",
      RECOVERY_GRACE_MS: "6000",
    });
    mongo = await MongoClient.connect(cluster.env["MONGO_URL"] ?? "");
  });
  after(async () => {
    const codes = await Promise.all([...cluster.apis, ...(worker ? [worker] : [])].map((p) => p.stop()));
    assert.deepEqual(
      codes.filter((c) => c !== 0),
      [],
    );
    await mongo?.close();
  });

  it("finishes after a restart, leaving nothing of the account and every count right", async () => {
    const [api] = cluster.apis;
    assert.ok(api);
    const db = mongo.db();
    const leaver = await signUp(api.url, "Leaver");
    const leaverId = new ObjectId(leaver.id);
    const fans: TestUser[] = await Promise.all([signUp(api.url, "Fan A"), signUp(api.url, "Fan B")]);
    for (const fan of fans) await gqlOk(api.url, FollowDocument, { userId: leaver.id }, fan.auth);
    await seedFollowers(db, leaverId);
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
    await seedOwnNotifications(db, leaverId);

    const left = async () =>
      (await reached()) + (await db.collection("notifications").countDocuments({ recipientId: leaverId }));
    const before = await left();
    await gqlOk(api.url, DeleteAccountDocument, { password: "correct horse battery" }, leaver.auth);
    await eventually(async () => ((await left()) < before ? true : undefined), {
      timeoutMs: 60_000,
      what: "the deletion to be under way",
      intervalMs: 10,
    });
    cluster.worker.child.kill("SIGKILL");
    const atCrash = await left();
    assert.ok(atCrash > 0, `the crash came part-way (${atCrash} of ${before} left)`);
    worker = await startHerald({ ...cluster.env, ROLES: "worker" });

    await eventually(
      async () => ((await db.collection("users").countDocuments({ _id: leaverId })) === 0 ? true : undefined),
      { timeoutMs: 120_000, what: "the deletion to finish", intervalMs: 250 },
    );
    assert.equal(await left(), 0, "every notification about the post and of the account is gone");
    assert.equal(await db.collection("posts").countDocuments({ authorId: leaverId }), 0);
    assert.equal(await db.collection("follows").countDocuments({ followeeId: leaverId }), 0);
    for (const fan of fans) {
      assert.equal(
        (await gqlOk(api.url, UnreadCountDocument, {}, fan.auth)).unreadCount,
        1,
        `${fan.name}: the WELCOME`,
      );
    }
  });
});

async function seedFollowers(db: Db, followeeId: ObjectId): Promise<void> {
  for (let i = 0; i < SEEDED_FOLLOWERS; i += SEED_BATCH) {
    await db.collection("follows").insertMany(
      Array.from({ length: Math.min(SEED_BATCH, SEEDED_FOLLOWERS - i) }, () => ({
        _id: new ObjectId(),
        followerId: new ObjectId(),
        followeeId,
        createdAt: new Date(),
        notifiedAt: new Date(),
      })),
    );
  }
}

/** Notifications as Herald stores them, straight into the database: faster than making them. */
async function seedOwnNotifications(db: Db, recipientId: ObjectId): Promise<void> {
  for (let i = 0; i < OWN_NOTIFICATIONS; i += SEED_BATCH) {
    await db.collection("notifications").insertMany(
      Array.from({ length: Math.min(SEED_BATCH, OWN_NOTIFICATIONS - i) }, (_, j) => ({
        _id: new ObjectId(),
        recipientId,
        dedupeKey: `seed:${recipientId.toHexString()}:${i + j}`,
        kind: "SYSTEM",
        title: "Seeded",
        body: "…",
        actorId: null,
        postId: null,
        commentId: null,
        createdAt: new Date(),
        readAt: null,
        archivedAt: null,
        inApp: true,
        deliveries: [],
      })),
    );
  }
}
