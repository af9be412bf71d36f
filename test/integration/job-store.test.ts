import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { Agenda, backoffStrategies, type JobParameters } from "agenda";
import { Redis } from "ioredis";
import { startRedis } from "../../dev/local-stack.js";
import { createAgenda, drainAgenda } from "../../src/infra/agenda.js";
import { RedisJobStore } from "../../src/infra/job-store.js";
import { createLogger } from "../../src/infra/logger.js";
import { eventually } from "../helpers/graphql-client.js";
import { testRedisUrl } from "../helpers/env.js";
import { uniqueDatabase } from "../helpers/herald.js";

const logger = createLogger({ level: process.env["TEST_LOG_LEVEL"] ?? "warn", name: "it_job_store" });

function job(name: string, nextRunAt: Date | null, priority = 0): JobParameters {
  return { name, nextRunAt, priority, type: "normal", data: { name } };
}

describe("the Redis job store", () => {
  let redis: Redis;
  let store: RedisJobStore;
  const later = (ms: number) => new Date(Date.now() + ms);

  before(() => {
    redis = new Redis(testRedisUrl());
    store = new RedisJobStore(redis, `herald:{jobs:${uniqueDatabase("it_store")}}:`);
  });

  after(() => redis.disconnect());

  it("hands out due jobs by run time, then priority, and no job twice while its lock holds", async () => {
    const past = new Date(Date.now() - 60_000);
    const low = await store.saveJob(job("order", past, 0), undefined);
    const high = await store.saveJob(job("order", past, 10), undefined);
    const older = await store.saveJob(job("order", new Date(past.getTime() - 1000)), undefined);
    const future = await store.saveJob(job("order", later(60_000)), undefined);
    const take = () => store.getNextJobToRun("order", later(1000), new Date(Date.now() - 60_000), undefined, undefined);

    const taken = [await take(), await take(), await take(), await take()].map((j) => j?._id?.toString());
    assert.deepEqual(
      taken,
      [older._id, high._id, low._id, undefined].map((id) => id?.toString()),
    );
    assert.equal(
      (await store.getNextJobToRun("order", later(120_000), new Date(0), undefined, undefined))?._id?.toString(),
      future._id?.toString(),
      "a job due before the next scan is taken",
    );
  });

  it("gives a job whose lock expired to the next taker, and never one that is running", async () => {
    const saved = await store.saveJob(job("expiry", new Date()), undefined);
    const first = await store.getNextJobToRun("expiry", later(1000), new Date(0), undefined, undefined);
    assert.equal(first?._id?.toString(), saved._id?.toString());
    assert.ok(first?.lockedAt, "the taken job carries its lock time");
    assert.equal(await store.getNextJobToRun("expiry", later(1000), new Date(0), undefined, undefined), undefined);
    // Every lock taken before the deadline counts as expired: its worker went silent.
    const again = await store.getNextJobToRun("expiry", later(1000), later(1000), undefined, undefined);
    assert.equal(again?._id?.toString(), saved._id?.toString());
  });

  it("takes a job back out of the queue once it runs, and puts a retry back in", async () => {
    const saved = await store.saveJob(job("state", new Date()), undefined);
    const taken = await store.getNextJobToRun("state", later(1000), new Date(0), undefined, undefined);
    assert.ok(taken);
    // What Agenda saves when a one-off job starts (no next run) and when it ends unlocked.
    await store.saveJobState({ ...taken, nextRunAt: null, lastRunAt: new Date() }, undefined);
    await store.saveJobState({ ...taken, nextRunAt: null, lockedAt: undefined }, undefined);
    assert.equal(await store.getNextJobToRun("state", later(1000), later(1000), undefined, undefined), undefined);
    // A failed run that Agenda retries gets a next run again.
    await store.saveJobState({ ...taken, nextRunAt: new Date(), lockedAt: undefined, failCount: 1 }, undefined);
    const retried = await store.getNextJobToRun("state", later(1000), new Date(0), undefined, undefined);
    assert.equal(retried?._id?.toString(), saved._id?.toString());
    assert.equal(retried?.failCount, 1);
    assert.equal(await store.removeJobs({ id: saved._id ?? "" }), 1);
    assert.equal(await store.getJobById(String(saved._id)), null);
    await assert.rejects(store.saveJobState({ ...taken, lockedAt: undefined }, undefined), /does not exist/);
  });

  it("skips disabled and removed jobs", async () => {
    const disabled = await store.saveJob(job("skip", new Date()), undefined);
    const removed = await store.saveJob(job("skip", new Date()), undefined);
    const kept = await store.saveJob(job("skip", new Date()), undefined);
    await store.disableJobs({ id: disabled._id ?? "" });
    await store.removeJobs({ id: removed._id ?? "" });
    const taken = await store.getNextJobToRun("skip", later(1000), new Date(0), undefined, undefined);
    assert.equal(taken?._id?.toString(), kept._id?.toString());
    assert.equal(await store.getNextJobToRun("skip", later(1000), new Date(0), undefined, undefined), undefined);
    await store.enableJobs({ id: disabled._id ?? "" });
    const enabled = await store.getNextJobToRun("skip", later(1000), new Date(0), undefined, undefined);
    assert.equal(enabled?._id?.toString(), disabled._id?.toString());
  });
});

describe("jobs through Agenda on the Redis store", () => {
  const clients: Redis[] = [];
  const agendas: Agenda[] = [];

  function worker(namespace: string): Agenda {
    const redis = new Redis(testRedisUrl());
    clients.push(redis);
    const agenda = createAgenda({
      redis,
      notifications: true,
      namespace,
      role: `it-store-${agendas.length}`,
      // Polls far apart: a job is picked up because it was announced, not because a poll came by.
      // (Agenda keeps a liveness timer of half the poll interval alive after each run.)
      processEveryMs: 10_000,
      concurrency: 10,
      logger,
      lockLifetimeMs: 4000,
    });
    agendas.push(agenda);
    return agenda;
  }

  after(async () => {
    await Promise.all(agendas.map((a) => drainAgenda(a, 5000)));
    for (const c of clients) c.disconnect();
  });

  it("runs every job of many producers once across two workers, then forgets it", async () => {
    const namespace = uniqueDatabase("it_store_agenda");
    const [a, b, producer] = [worker(namespace), worker(namespace), worker(namespace)];
    const runs = new Map<number, number>();
    for (const w of [a, b]) {
      w.define<{ n: number }>("count", async (j) => {
        runs.set(j.attrs.data.n, (runs.get(j.attrs.data.n) ?? 0) + 1);
        await Promise.resolve();
      });
    }
    await Promise.all([a.start(), b.start(), producer.start()]);
    const total = 400;
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < total) await producer.now("count", { n: next++ });
      }),
    );
    await eventually(() => Promise.resolve(runs.size === total ? true : undefined), {
      timeoutMs: 20_000,
      what: `${total} jobs to run (${runs.size} so far)`,
    });
    assert.deepEqual(
      [...runs.values()].filter((n) => n !== 1),
      [],
      "no job ran twice",
    );
    const store = new RedisJobStore(clients[0] as Redis, `herald:{jobs:${namespace}}:`);
    await eventually(async () => ((await store.queryJobs({ name: "count" })).total === 0 ? true : undefined), {
      timeoutMs: 10_000,
      what: "completed jobs to be removed",
    });
  });

  it("retries a failed run with its backoff", async () => {
    const agenda = worker(uniqueDatabase("it_store_retry"));
    let attempts = 0;
    const succeeded = new Promise<void>((resolve) => {
      agenda.define(
        "flaky",
        async () => {
          attempts += 1;
          await Promise.resolve();
          if (attempts === 1) throw new Error("the first run fails");
          resolve();
        },
        { backoff: backoffStrategies.constant({ delay: 50, maxRetries: 2 }) },
      );
    });
    agenda.on("error", () => undefined);
    await agenda.start();
    await agenda.now("flaky", {});
    // The retry is due 50 ms later, seconds before the next poll: it is announced when the failed
    // run ends.
    await eventually(() => Promise.resolve(attempts >= 2 ? true : undefined), {
      timeoutMs: 5000,
      what: "the retry to run",
    });
    await succeeded;
    assert.equal(attempts, 2);
  });
});

describe("jobs in a Redis with an append-only file", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "herald-aof-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("keeps an accepted job across a restart of Redis", async () => {
    const prefix = "herald:{jobs:aof}:";
    const first = await startRedis({ dataDir: dir, persist: true });
    let saved: JobParameters;
    const before = new Redis(first.url);
    try {
      saved = await new RedisJobStore(before, prefix).saveJob(job("durable", new Date()), undefined);
    } finally {
      before.disconnect();
      await first.stop();
    }
    const second = await startRedis({ dataDir: dir, persist: true });
    const afterRestart = new Redis(second.url);
    try {
      const store = new RedisJobStore(afterRestart, prefix);
      const taken = await store.getNextJobToRun(
        "durable",
        new Date(Date.now() + 1000),
        new Date(0),
        undefined,
        undefined,
      );
      assert.equal(taken?._id?.toString(), saved._id?.toString());
      assert.deepEqual(taken?.data, { name: "durable" });
    } finally {
      afterRestart.disconnect();
      await second.stop();
    }
  });
});
