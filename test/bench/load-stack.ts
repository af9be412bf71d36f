// What each Django-workload scenario runs on: a fresh database, one worker and one api process
// whose MongoDB traffic goes through the command counter, and the meters of the measured phase.
import { Redis } from "ioredis";
import { testMongoUrl, testRedisUrl } from "../helpers/env.js";
import { baseEnv, type HeraldProcess } from "../helpers/herald.js";
import { CostMeter } from "./costs.js";
import { jobBacklog } from "./job-backlog.js";
import type { LoadContext } from "./load.js";
import { RedisStats } from "./redis-stats.js";
import { startWireCounter } from "./wire-counter.js";

/** Pids of the servers the bench started itself; undefined for servers given by URL. */
export interface ServerPids {
  ferretdb: number | undefined;
  redis: number | undefined;
}

export interface LoadStack {
  ctx: LoadContext;
  api: HeraldProcess;
  worker: HeraldProcess;
  redisStats: RedisStats;
}

export async function startLoadStack(options: {
  database: string;
  servers: ServerPids;
  startHerald: (env: Record<string, string>) => Promise<HeraldProcess>;
  onCleanup: (name: string, stop: () => Promise<unknown>) => void;
  log: (message: string) => void;
}): Promise<LoadStack> {
  const wire = await startWireCounter(testMongoUrl(options.database));
  if (wire) options.onCleanup("MongoDB command counter", () => wire.stop());
  else options.log("MongoDB commands cannot be counted for this MONGO_URL (several hosts or SRV)");
  const env = { ...baseEnv(options.database), ...(wire ? { MONGO_URL: wire.url(options.database) } : {}) };
  const worker = await options.startHerald({ ...env, ROLES: "worker" });
  const api = await options.startHerald({ ...env, ROLES: "api" });

  // The bench's own connection bypasses the counters' sums: its reads are not Herald's work.
  const redis = new Redis(testRedisUrl());
  options.onCleanup("bench Redis connection", () => redis.quit());
  await redis.ping();
  const redisStats = new RedisStats(redis);
  const meter = new CostMeter(wire, redisStats, [
    { name: "api", pid: api.child.pid },
    { name: "worker", pid: worker.child.pid },
    { name: options.servers.ferretdb === undefined ? "MongoDB" : "FerretDB", pid: options.servers.ferretdb },
    { name: "Redis", pid: options.servers.redis },
    // The client shares the cores; its share says how much of the machine the bench took.
    { name: "bench client", pid: process.pid },
  ]);
  const ctx: LoadContext = {
    apiUrl: api.url,
    redis,
    meter,
    backlog: () => jobBacklog(redis, options.database).catch(() => undefined),
    log: options.log,
  };
  return { ctx, api, worker, redisStats };
}
