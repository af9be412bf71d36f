import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { freePort } from "../../dev/local-stack.js";
import { Limits, type LimitSettings } from "../../src/infra/limits.js";
import { createLogger } from "../../src/infra/logger.js";
import { testRedisUrl } from "../helpers/env.js";
import { uniqueDatabase } from "../helpers/herald.js";

const SETTINGS: LimitSettings = {
  enabled: true,
  loginFailures: 2,
  loginsPerAddress: 1000,
  signupsPerAddress: 2,
  refreshesPerLogin: 10,
  recipientsPerKey: 10,
  mutationsPerUser: 10,
  socketsPerUser: 2,
  socketsPerAddress: 10,
  socketAttemptsPerAddress: 100,
  persistedQueriesPerAddress: 2,
  subscriptionsPerSocket: 10,
  operationsPerSocket: 10,
  messagesPerSocket: 10,
};

const logger = createLogger({ level: "silent" });

/** The seconds a sign-in waits now, or 0 when it may go on. */
async function waitOf(limits: Limits, account: string, address: string): Promise<number> {
  try {
    await limits.beforeLogin(account, address);
    return 0;
  } catch (err) {
    const extensions = (err as { extensions?: Record<string, unknown> }).extensions;
    assert.equal(extensions?.["code"], "RATE_LIMITED");
    return Number(extensions?.["retryAfterSeconds"]);
  }
}

describe("limits, counted in Redis", () => {
  let redis: Redis;
  let limits: Limits;
  const account = () => `${randomBytes(6).toString("hex")}@example.com`;

  before(() => {
    redis = new Redis(testRedisUrl());
    limits = new Limits(redis, SETTINGS, logger, uniqueDatabase("it_limits"));
  });

  after(async () => {
    await redis.quit();
  });

  it("doubles the wait after each wrong password past the free ones, up to a cap", async () => {
    const who = account();
    const waits: number[] = [];
    for (let failures = 1; failures <= 6; failures += 1) {
      await limits.loginFailed(who, "198.51.100.1");
      waits.push(await waitOf(limits, who, "198.51.100.1"));
    }
    assert.deepEqual(waits, [0, 1, 2, 4, 8, 16]);
    // A right password from that address forgives it.
    await limits.loginSucceeded(who, "198.51.100.1");
    assert.equal(await waitOf(limits, who, "198.51.100.1"), 0);
  });

  it("delays an account from every address once its wrong passwords from all of them add up", async () => {
    const who = account();
    // Ten times the free failures, one from each of twenty addresses: no single address is delayed...
    for (let i = 0; i < 19; i += 1) await limits.loginFailed(who, `198.51.100.${10 + i}`);
    assert.equal(await waitOf(limits, who, "198.51.100.200"), 0);
    // ...until the account as a whole has had its share.
    await limits.loginFailed(who, "198.51.100.99");
    assert.ok((await waitOf(limits, who, "198.51.100.200")) >= 1);
  });

  it("counts a user's open sockets until they are released, in any process", async () => {
    const user = randomBytes(12).toString("hex");
    const elsewhere = new Limits(redis, SETTINGS, logger, limits.namespace);
    const first = await limits.openSocket("s1", user, "198.51.100.7");
    const second = await elsewhere.openSocket("s2", user, "198.51.100.8");
    assert.ok(first && second);
    assert.equal(await limits.openSocket("s3", user, "198.51.100.9"), null);
    second.release();
    // release() tells Redis without waiting: the next ZREM it sends comes after it.
    await redis.ping();
    assert.ok(await limits.openSocket("s3", user, "198.51.100.9"));
  });

  it("stores an address's persisted queries up to its hourly allowance, other addresses unaffected", async () => {
    const refused: string[] = [];
    const counted = new Limits(redis, SETTINGS, logger, uniqueDatabase("it_limits"), (limit) => refused.push(limit));
    assert.deepEqual(
      [
        await counted.persistQuery("198.51.100.7"),
        await counted.persistQuery("198.51.100.7"),
        await counted.persistQuery("198.51.100.7"),
        await counted.persistQuery("198.51.100.8"),
      ],
      [true, true, false, true],
    );
    assert.deepEqual(refused, ["persisted-query"]);
  });

  it("lets requests through, and says so in the log, when Redis does not answer", async () => {
    const down = new Redis({
      port: await freePort(),
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    down.on("error", () => undefined);
    const blind = new Limits(down, SETTINGS, logger, "down");
    await blind.beforeLogin(account(), "198.51.100.3");
    await blind.signup("198.51.100.3");
    await blind.signup("198.51.100.3");
    await blind.signup("198.51.100.3");
    assert.ok(await blind.openSocket("s", "u", "198.51.100.3"));
    down.disconnect();
  });
});
