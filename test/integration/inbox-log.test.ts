import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ObjectId } from "@mikro-orm/mongodb";
import { Redis } from "ioredis";
import { InboxLog, type Recount } from "../../src/modules/notification/inbox-log.js";
import { InboxEventType, type InboxChange, type InboxMessage } from "../../src/modules/notification/inbox-events.js";
import { testRedisUrl } from "../helpers/env.js";

/** A stand-in for the database's count: what it answers, and how often it was asked. */
function database(initial: number): { recount: Recount; set(n: number): void; asked(): number } {
  let count = initial;
  let asked = 0;
  return {
    recount: (ids) => {
      asked += 1;
      return Promise.resolve(new Map(ids.map((id) => [id, count])));
    },
    set: (n) => (count = n),
    asked: () => asked,
  };
}

const deleted = (notificationId: string): InboxChange => ({ type: InboxEventType.DELETED, notificationId });
const allRead: InboxChange = { type: InboxEventType.ALL_READ };

describe("inbox log", () => {
  let redis: Redis;
  let log: InboxLog;
  const user = () => new ObjectId().toHexString();

  before(() => {
    redis = new Redis(testRedisUrl());
    log = new InboxLog(redis, { historyEvents: 1000, historyMs: 3600_000 });
  });
  after(() => redis.disconnect());

  it("counts once, then follows every change without counting again", async () => {
    const id = user();
    const db = database(3);
    assert.equal((await log.read([id], db.recount)).get(id), 3);
    await log.begin([id]);
    const counts = await log.commit([{ userId: id, changes: [{ delta: 2, change: allRead }] }], db.recount);
    assert.equal(counts.get(id), 5);
    await log.begin([id]);
    await log.commit([{ userId: id, changes: [{ delta: -4, change: allRead }] }], db.recount);
    assert.equal((await log.read([id], db.recount)).get(id), 1);
    assert.equal(db.asked(), 1, "the database was counted once");
  });

  it("logs each change with the count after it, and serves every event after a position", async () => {
    const id = user();
    const db = database(0);
    await log.read([id], db.recount);
    const start = await log.position(id);
    await log.begin([id]);
    await log.commit(
      [
        {
          userId: id,
          changes: [
            { delta: 1, change: deleted("a") },
            { delta: 1, change: deleted("b") },
            { delta: -1, change: deleted("c") },
          ],
        },
      ],
      db.recount,
    );
    const events = await log.after(id, start, 100);
    assert.deepEqual(
      events?.map((e) => [e.position.seq, e.unreadCount, e.change]),
      [
        [start.seq + 1, 1, deleted("a")],
        [start.seq + 2, 2, deleted("b")],
        [start.seq + 3, 1, deleted("c")],
      ],
    );
    const second = events?.[1];
    assert.ok(second);
    assert.deepEqual(
      (await log.after(id, second.position, 100))?.map((e) => e.change),
      [deleted("c")],
    );
    assert.deepEqual(await log.after(id, await log.position(id), 100), [], "nothing after the end");
  });

  it("publishes each event as it logs it, with its place in the stream", async () => {
    const id = user();
    const subscriber = new Redis(testRedisUrl());
    try {
      const got: InboxMessage[] = [];
      await subscriber.subscribe(`INBOX:${id}`);
      subscriber.on("message", (_channel: string, message: string) => got.push(JSON.parse(message) as InboxMessage));
      await log.read([id], database(0).recount);
      await log.position(id);
      await log.begin([id]);
      await log.commit([{ userId: id, changes: [{ delta: 1, change: deleted("x") }] }], database(0).recount);
      const [logged] = (await log.after(id, { ...(await log.position(id)), seq: 0, id: "0-0" }, 10)) ?? [];
      await subscriber.ping();
      assert.deepEqual(got, [
        {
          epoch: logged?.position.epoch,
          seq: 1,
          id: logged?.position.id,
          version: got[0]?.version,
          unreadCount: 1,
          change: deleted("x"),
        },
      ]);
    } finally {
      subscriber.disconnect();
    }
  });

  it("publishes without logging for a user whose stream has not started", async () => {
    const id = user();
    await log.read([id], database(0).recount);
    await log.begin([id]);
    await log.commit([{ userId: id, changes: [{ delta: 1, change: deleted("x") }] }], database(0).recount);
    assert.equal(await redis.exists(`herald:{u:${id}}:inbox`, `herald:{u:${id}}:inbox-meta`), 0, "no history kept");
    const start = await log.position(id);
    assert.equal(start.seq, 0);
    await log.begin([id]);
    await log.commit([{ userId: id, changes: [{ delta: 1, change: deleted("y") }] }], database(0).recount);
    assert.deepEqual(
      (await log.after(id, start, 10))?.map((e) => [e.change, e.unreadCount]),
      [[deleted("y"), 2]],
    );
  });

  it("counts nobody's inbox for nobody: no stream, no subscriber, no counter means no count and no event", async () => {
    const id = user();
    const db = database(3);
    await log.begin([id]);
    const counts = await log.commit([{ userId: id, changes: [{ delta: 1, change: deleted("x") }] }], db.recount);
    assert.equal(counts.has(id), false);
    assert.equal(db.asked(), 0, "the database was not asked");
    // Someone listens: the count is needed again.
    const subscriber = new Redis(testRedisUrl());
    try {
      await subscriber.subscribe(`INBOX:${id}`);
      await log.begin([id]);
      const heard = await log.commit([{ userId: id, changes: [{ delta: 1, change: deleted("y") }] }], db.recount);
      assert.equal(heard.get(id), 3, "counted after the write");
      assert.equal(db.asked(), 1);
    } finally {
      subscriber.disconnect();
    }
  });

  it("cannot serve a position of another epoch, or one whose following events were dropped", async () => {
    const id = user();
    const small = new InboxLog(redis, { historyEvents: 1, historyMs: 3600_000 });
    const db = database(0);
    const start = await small.position(id);
    for (let i = 0; i < 300; i += 1) {
      await small.begin([id]);
      await small.commit([{ userId: id, changes: [{ delta: 0, change: deleted(String(i)) }] }], db.recount);
    }
    assert.equal(await small.after(id, start, 10), null, "the first events were trimmed");
    const end = await small.position(id);
    assert.deepEqual(await small.after(id, end, 10), []);
    assert.equal(await small.after(id, { ...end, epoch: "0123456789abcdef" }, 10), null, "another epoch");
    // Lost with Redis's data: the stream starts again under a new epoch.
    await redis.del(`herald:{u:${id}}:inbox`, `herald:{u:${id}}:inbox-meta`);
    assert.equal(await small.after(id, end, 10), null);
    assert.notEqual((await small.position(id)).epoch, end.epoch);
  });

  it("does not keep a count taken while a change was in flight, and logs the change with a fresh count", async () => {
    const id = user();
    // A user whose stream has started: their events need a count.
    await log.position(id);
    const db = database(1);
    await log.begin([id]);
    // The change's write is done (the database says 2), its commit not yet.
    db.set(2);
    assert.equal((await log.read([id], db.recount)).get(id), 2, "the count read is the truth");
    const counts = await log.commit([{ userId: id, changes: [{ delta: 1, change: allRead }] }], db.recount);
    assert.equal(counts.get(id), 2, "counted after the write, the delta not added twice");
    assert.equal((await log.read([id], db.recount)).get(id), 2);
    assert.equal(db.asked(), 2, "the count logged with the change was kept");
  });

  it("does not keep a count that a change completed during", async () => {
    const id = user();
    const db = database(1);
    const slowRecount: Recount = async (ids) => {
      // A change begins, writes and commits while this count is being taken.
      await log.begin([id]);
      db.set(2);
      await log.commit([{ userId: id, changes: [] }], db.recount);
      return db.recount(ids);
    };
    assert.equal((await log.read([id], slowRecount)).get(id), 2);
    db.set(5);
    assert.equal((await log.read([id], db.recount)).get(id), 5, "counted anew");
  });

  it("drops a counter that would go negative, or that the writer could not trust", async () => {
    const id = user();
    // A user whose stream has started: their events need a count.
    await log.position(id);
    const db = database(4);
    await log.read([id], db.recount);
    await log.begin([id]);
    assert.equal(
      (await log.commit([{ userId: id, changes: [{ delta: -9, change: allRead }] }], db.recount)).get(id),
      4,
      "counted again",
    );
    await log.begin([id]);
    await log.commit([{ userId: id, changes: [], forget: true }], db.recount);
    db.set(7);
    assert.equal((await log.read([id], db.recount)).get(id), 7);
  });

  it("lets one change at a time hold a user's lock", async () => {
    const id = user();
    const first = await log.lock(id);
    const order: string[] = [];
    const second = log.lock(id).then(async (token) => {
      order.push("second");
      await log.commit([{ userId: id, lock: token, changes: [] }], database(0).recount);
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    order.push("first");
    await log.commit([{ userId: id, lock: first, changes: [] }], database(0).recount);
    await second;
    assert.deepEqual(order, ["first", "second"]);
  });
});
