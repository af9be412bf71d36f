import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { Redis } from "ioredis";
import { createLogger } from "../../src/infra/logger.js";
import { persistedQueryCache } from "../../src/infra/query-cache.js";
import { testRedisUrl } from "../helpers/env.js";
import { uniqueDatabase } from "../helpers/herald.js";

describe("the persisted-query cache, in Redis", () => {
  let redis: Redis;

  before(() => {
    redis = new Redis(testRedisUrl());
  });
  after(async () => {
    await redis.quit();
  });

  const cache = (maxQueries: number, ttlSeconds = 60) =>
    persistedQueryCache(redis, {
      namespace: uniqueDatabase("it_apq"),
      maxQueries,
      ttlSeconds,
      logger: createLogger({ level: "silent" }),
    });

  it("keeps at most so many queries at once; past that a query is not stored until one goes", async () => {
    const queries = cache(2);
    await queries.set("a", "query A { me { id } }");
    await queries.set("b", "query B { me { id } }");
    await queries.set("c", "query C { me { id } }");
    assert.equal(await queries.get("a"), "query A { me { id } }");
    assert.equal(await queries.get("b"), "query B { me { id } }");
    assert.equal(await queries.get("c"), undefined, "full: the third is not kept");
    await queries.set("a", "query A { me { id } }");
    assert.equal(await queries.get("a"), "query A { me { id } }", "one kept already may be stored again");
    assert.equal(await queries.delete("b"), true);
    await queries.set("c", "query C { me { id } }");
    assert.equal(await queries.get("c"), "query C { me { id } }", "room again once one is gone");
  });

  it("lets a query expire, and counts only the live ones", async () => {
    const queries = cache(1, 1);
    await queries.set("a", "query A { me { id } }");
    assert.equal(await queries.get("a"), "query A { me { id } }");
    // Expiry is what is tested: Redis counts whole seconds, so a 1 s lifetime is over within 2.
    await delay(2100);
    assert.equal(await queries.get("a"), undefined, "gone after its time");
    await queries.set("b", "query B { me { id } }");
    assert.equal(await queries.get("b"), "query B { me { id } }", "the expired one no longer counts");
  });
});
