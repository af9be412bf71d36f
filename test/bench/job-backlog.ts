// How much background work is waiting. The one place that knows where the jobs are kept.
import type { Redis } from "ioredis";
import { RedisJobStore } from "../../src/infra/job-store.js";

export interface Backlog {
  /** Due and not yet picked up. */
  queued: number;
  /** Locked by a worker: running, or next in its own queue. */
  running: number;
}

/**
 * Agenda keeps Herald's jobs in Redis (RedisJobStore, keys `herald:{jobs:<database>}:…`): a due
 * set and a locked set per job name. Recurring jobs wait in neither until they are due.
 */
export async function jobBacklog(redis: Redis, database: string): Promise<Backlog> {
  const prefix = `herald:{jobs:${database}}:`;
  const store = new RedisJobStore(redis, prefix);
  const names = await store.getDistinctJobNames();
  const now = Date.now();
  const counts = await Promise.all(
    names.map(async (name) => {
      const [queued, running] = await Promise.all([
        redis.zcount(`${prefix}jobs:due:${name}`, 0, now),
        redis.zcard(`${prefix}jobs:locked:${name}`),
      ]);
      return { queued, running };
    }),
  );
  return counts.reduce((a, b) => ({ queued: a.queued + b.queued, running: a.running + b.running }), {
    queued: 0,
    running: 0,
  });
}
