import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ObjectId } from "@mikro-orm/mongodb";
import { Redis } from "ioredis";
import { UnreadCounters, type Recount } from "../../src/modules/notification/unread-counters.js";
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

describe("unread counters", () => {
  let redis: Redis;
  let counters: UnreadCounters;
  const user = () => new ObjectId().toHexString();

  before(() => {
    redis = new Redis(testRedisUrl());
    counters = new UnreadCounters(redis, { atomicUpdates: true });
  });
  after(() => redis.disconnect());

  it("counts once, then follows every change without counting again", async () => {
    const id = user();
    const db = database(3);
    assert.equal((await counters.read([id], db.recount)).get(id)?.count, 3);
    await counters.begin([id]);
    const after = await counters.apply(new Map([[id, 2]]));
    assert.equal(after.get(id)?.count, 5);
    await counters.begin([id]);
    await counters.apply(new Map([[id, -4]]), true);
    assert.equal((await counters.read([id], db.recount)).get(id)?.count, 1);
    assert.equal(db.asked(), 1, "the database was counted once");
  });

  it("orders counts by a version that every change moves forward", async () => {
    const id = user();
    const db = database(0);
    const first = (await counters.read([id], db.recount)).get(id)?.version ?? 0;
    await counters.begin([id]);
    const second = (await counters.apply(new Map([[id, 1]]))).get(id)?.version ?? 0;
    assert.ok(second > first);
    // Lost with Redis's data: the version starts again above every one handed out.
    await redis.del(`herald:{u:${id}}:unread-version`, `herald:{u:${id}}:unread-count`);
    const third = (await counters.read([id], db.recount)).get(id)?.version ?? 0;
    assert.ok(third > second, `${third} > ${second}`);
  });

  it("does not keep a count taken while a change was in flight", async () => {
    const id = user();
    const db = database(1);
    await counters.begin([id]);
    // The change's write is done (the database says 2), its delta not applied yet.
    db.set(2);
    assert.equal((await counters.read([id], db.recount)).get(id)?.count, 2, "the count read is the truth");
    const after = await counters.apply(new Map([[id, 1]]));
    assert.equal(after.get(id)?.count, null, "no counter was kept, so the delta counts nothing twice");
    assert.equal((await counters.read([id], db.recount)).get(id)?.count, 2);
    assert.equal(db.asked(), 2);
  });

  it("does not keep a count that a change completed during", async () => {
    const id = user();
    const db = database(1);
    const slowRecount: Recount = async (ids) => {
      // A change begins, writes and applies while this count is being taken.
      await counters.begin([id]);
      db.set(2);
      await counters.apply(new Map([[id, 1]]));
      return db.recount(ids);
    };
    assert.equal((await counters.read([id], slowRecount)).get(id)?.count, 2);
    db.set(5);
    assert.equal((await counters.read([id], db.recount)).get(id)?.count, 5, "counted anew");
  });

  it("drops the counter when update results cannot be trusted, and when it would go negative", async () => {
    const id = user();
    const db = database(4);
    const loose = new UnreadCounters(redis, { atomicUpdates: false });
    await loose.read([id], db.recount);
    await loose.begin([id]);
    assert.equal((await loose.apply(new Map([[id, 1]]))).get(id)?.count, 5, "inserts are exact");
    await loose.begin([id]);
    assert.equal((await loose.apply(new Map([[id, -1]]), true)).get(id)?.count, null);
    db.set(4);
    await loose.read([id], db.recount);
    await loose.begin([id]);
    assert.equal((await loose.apply(new Map([[id, -9]]))).get(id)?.count, null);
    assert.equal(db.asked(), 2);
  });
});
