import { Redis } from "ioredis";
import type { Logger } from "./logger.js";

export type { Redis };

/**
 * A Redis client that keeps retrying while the server is away (the process should survive a Redis
 * restart) and logs, rather than throws, connection errors.
 */
export function createRedis(url: string, logger: Logger, role: string): Redis {
  const client = new Redis(url, {
    connectionName: `herald:${role}`,
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5000),
  });
  client.on("error", (err: Error) => logger.warn({ err: err.message, role }, "redis connection error"));
  return client;
}

export async function pingRedis(client: Redis): Promise<void> {
  const answer: string = await client.ping();
  if (answer !== "PONG") throw new Error(`unexpected PING answer: ${answer}`);
}

/**
 * Per-key counters that only go up, for ordering events computed concurrently: take a version
 * before reading the state an event reports, and a reader keeping only the highest version it has
 * seen converges on the latest state.
 */
export interface VersionClock {
  next(keys: readonly string[]): Promise<number[]>;
}

/**
 * INCR, but a counter that does not exist yet starts at the server's clock in microseconds. A
 * counter lost with Redis's data then restarts above every version handed out before, so readers
 * still holding an old high version do not ignore the new ones. (TIME's fields are strings; they
 * are joined as digits, a Lua number would be written in exponent form.)
 */
const NEXT_VERSION = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[1], now[1] .. string.format('%06d', tonumber(now[2])))
end
return redis.call('INCR', KEYS[1])`;

export function createVersionClock(client: Redis, prefix: string): VersionClock {
  return {
    next: async (keys) => {
      if (keys.length === 0) return [];
      const pipeline = client.pipeline();
      for (const key of keys) pipeline.eval(NEXT_VERSION, 1, `${prefix}:${key}`);
      const results = (await pipeline.exec()) ?? [];
      return results.map(([err, value]) => {
        if (err) throw err;
        return Number(value);
      });
    },
  };
}
