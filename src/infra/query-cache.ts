import type { Logger } from "./logger.js";
import { defineScripts, runScript, type Redis, type RedisScript } from "./redis.js";

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
 * adapter would open connections of its own.
 *
 * Anyone may register a query, and Redis also holds the jobs, so what is kept is bounded as a
 * whole: at most `maxQueries` at once (an index scored by expiry says how many live), each for
 * `ttlSeconds`. Past that, a query runs unstored until older ones expire. A Redis failure is a miss
 * (the client sends the query again) or an unstored query, never a failed request.
 */
export function persistedQueryCache(
  redis: Redis,
  options: { namespace: string; maxQueries: number; ttlSeconds: number; logger: Logger },
): StringCache {
  defineScripts(redis, [STORE]);
  // One hash tag: the script touches the index and a query, which a Redis Cluster needs in one slot.
  const prefix = `herald:{apq:${options.namespace}}:`;
  const key = (hash: string) => `${prefix}q:${hash}`;
  const quietly = async <T>(what: string, call: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      options.logger.warn({ err }, `persisted queries: could not ${what}`);
      return fallback;
    }
  };
  return {
    get: (hash) => quietly("read a query", async () => (await redis.get(key(hash))) ?? undefined, undefined),
    set: (hash, query) =>
      quietly(
        "store a query",
        async () => {
          const stored = await runScript(redis, STORE, prefix, hash, query, options.ttlSeconds, options.maxQueries);
          if (stored === 0) options.logger.debug({ hash }, "persisted queries: full, the query runs unstored");
        },
        undefined,
      ),
    delete: (hash) =>
      quietly(
        "delete a query",
        async () => {
          const [[, removed]] = (await redis.multi().del(key(hash)).zrem(`${prefix}index`, hash).exec()) as [
            [Error | null, number],
          ];
          return removed > 0;
        },
        false,
      ),
  };
}

/** ARGV: prefix, hash, query, ttl seconds, most queries kept. 1 when stored (or renewed), 0 when full. */
const STORE: RedisScript = {
  name: "heraldPersistQuery",
  keys: 0,
  lua: `
local prefix, hash, query, ttl, most = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local index = prefix .. 'index'
local now = tonumber(redis.call('TIME')[1])
redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
if not redis.call('ZSCORE', index, hash) and redis.call('ZCARD', index) >= most then return 0 end
redis.call('SET', prefix .. 'q:' .. hash, query, 'EX', ttl)
redis.call('ZADD', index, now + ttl, hash)
return 1
`,
};

/** How long a persisted query is kept after it was registered: a day of a client's use. */
export const PERSISTED_QUERY_TTL_SECONDS = 24 * 3600;
/** The most kept at once: with queries of at most 8 KiB, 40 MiB of Redis at worst. */
export const MAX_PERSISTED_QUERIES = 5000;
