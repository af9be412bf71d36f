import type { Logger } from "./logger.js";
import type { Redis } from "./redis.js";

/** Apollo Server's cache interface (@apollo/utils.keyvaluecache), for the persisted queries. */
export interface StringCache {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, options?: { ttl?: number | null }): Promise<void>;
  delete(key: string): Promise<boolean | void>;
}

/**
 * Automatic persisted queries, kept in Redis so that a query registered through one api instance
 * is known to every other: a mobile client sends a hash instead of its query text, and the
 * instance it reaches next has it. A few lines over the process's own Redis client, where Keyv's
 * adapter would open connections of its own. A Redis failure is a miss (the client then sends the
 * query again) or an unstored query, never a failed request.
 */
export function persistedQueryCache(redis: Redis, namespace: string, logger: Logger): StringCache {
  const key = (hash: string) => `herald:apq:${namespace}:${hash}`;
  const quietly = async <T>(what: string, call: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      logger.warn({ err }, `persisted queries: could not ${what}`);
      return fallback;
    }
  };
  return {
    get: (hash) => quietly("read a query", async () => (await redis.get(key(hash))) ?? undefined, undefined),
    set: (hash, query, options) =>
      quietly(
        "store a query",
        async () => {
          const ttl = options?.ttl;
          if (ttl) await redis.set(key(hash), query, "EX", Math.ceil(ttl));
          else await redis.set(key(hash), query);
        },
        undefined,
      ),
    delete: (hash) => quietly("delete a query", async () => (await redis.del(key(hash))) > 0, false),
  };
}

/** How long a persisted query is kept after its last registration: a day of a client's use. */
export const PERSISTED_QUERY_TTL_SECONDS = 24 * 3600;
