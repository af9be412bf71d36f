import { defineScripts, runScript, type Redis, type RedisScript } from "../../infra/redis.js";

/** A user's unread count as of `version`: every change with a version up to it is included. */
export interface CountAt {
  count: number;
  version: number;
}

/** Counts unread notifications in the database: the truth the counters stand for. */
export type Recount = (userIds: readonly string[]) => Promise<Map<string, number>>;

/**
 * Unread counts kept as counters in Redis, so that a badge never costs a scan of the inbox.
 *
 * MongoDB stays the truth; a counter is a cache of one user's count that every change adjusts by
 * its own effect (+1 for a new unread notification, -n for n marked read, ...). Deltas commute, so
 * concurrent changes need no ordering. A counter that is missing (never built, expired, lost with
 * Redis's data, or dropped because it might be wrong) is rebuilt by counting once.
 *
 * A rebuild must not race a change: a count read while a change's write is done but its delta not
 * yet applied would include the change, and the delta would count it again. So a change announces
 * itself before its write (`begin`) and applies its delta after it (`apply`); a rebuild keeps its
 * count only if no change was in flight and none completed while it counted.
 *
 * Every change also moves the user's version, which orders published counts: a count carries the
 * version its change produced, so a client keeping the highest version never steps back.
 *
 * Keys of one user share a hash tag, `herald:{u:<id>}:`, so they can move to a Redis Cluster.
 */
export class UnreadCounters {
  constructor(
    private readonly redis: Redis,
    private readonly options: {
      /**
       * Whether a conditional update or delete changes each document atomically, so that its
       * result says exactly what changed: MongoDB's do; FerretDB v1's read and then write, and two
       * concurrent ones can both report the same change. Without it, a change whose delta comes
       * from such results drops the counter instead (the next read counts once).
       */
      atomicUpdates: boolean;
      countTtlMs?: number;
      writeTtlMs?: number;
    },
  ) {
    defineScripts(redis, [APPLY, READ, KEEP]);
  }

  /** Before writing changes to these users' unread notifications. */
  async begin(userIds: Iterable<string>): Promise<void> {
    const pipeline = this.redis.pipeline();
    for (const id of new Set(userIds)) {
      pipeline.incr(key(id, "writes"));
      pipeline.pexpire(key(id, "writes"), this.options.writeTtlMs ?? WRITE_TTL_MS);
    }
    throwFirstError(await pipeline.exec());
  }

  /**
   * After the write: applies each user's delta (0 for a change that changed nothing) and ends what
   * `begin` started. Answers each user's new version, with the count when the counter exists.
   * `fromUpdates`: the deltas come from the results of conditional updates or deletes (see the
   * constructor's `atomicUpdates`), rather than from inserts, whose results are always exact.
   */
  async apply(
    deltas: ReadonlyMap<string, number>,
    fromUpdates = false,
  ): Promise<Map<string, { count: number | null; version: number }>> {
    const ids = [...deltas.keys()];
    const forget = fromUpdates && !this.options.atomicUpdates ? 1 : 0;
    const pipeline = this.redis.pipeline();
    for (const id of ids) {
      void runScript(
        pipeline,
        APPLY,
        key(id, "count"),
        key(id, "version"),
        key(id, "writes"),
        deltas.get(id) ?? 0,
        forget,
      );
    }
    const replies = throwFirstError(await pipeline.exec()) as [number, number][];
    return new Map(
      ids.map((id, i) => {
        const [version, count] = replies[i] ?? [0, -1];
        return [id, { version, count: count < 0 ? null : count }];
      }),
    );
  }

  /** Each user's count: from the counter, or counted and kept as the counter when that is safe. */
  async read(userIds: readonly string[], recount: Recount): Promise<Map<string, CountAt>> {
    const pipeline = this.redis.pipeline();
    for (const id of userIds) void runScript(pipeline, READ, key(id, "count"), key(id, "version"));
    const replies = throwFirstError(await pipeline.exec()) as [number, number][];
    const known = new Map<string, CountAt>();
    const missing: { id: string; version: number }[] = [];
    userIds.forEach((id, i) => {
      const [version, count] = replies[i] ?? [0, -1];
      if (count >= 0) known.set(id, { count, version });
      else missing.push({ id, version });
    });
    if (missing.length === 0) return known;
    const counted = await recount(missing.map((m) => m.id));
    const keep = this.redis.pipeline();
    for (const { id, version } of missing) {
      const count = counted.get(id) ?? 0;
      known.set(id, { count, version });
      void runScript(
        keep,
        KEEP,
        key(id, "count"),
        key(id, "version"),
        key(id, "writes"),
        version,
        count,
        this.options.countTtlMs ?? COUNT_TTL_MS,
      );
    }
    throwFirstError(await keep.exec());
    return known;
  }

  /** Drops counters that may be wrong (a writer stopped between its write and its delta). */
  async forget(userIds: Iterable<string>): Promise<void> {
    const keys = [...new Set(userIds)].map((id) => key(id, "count"));
    // One DEL per key: keys of different users may live on different cluster nodes.
    await Promise.all(keys.map((k) => this.redis.del(k)));
  }
}

/** A counter is rebuilt at least this often, which bounds how long a wrong one can last. */
const COUNT_TTL_MS = 3600_000;
/**
 * How long a change may take between `begin` and `apply` (one write); a writer that died in
 * between stops blocking rebuilds after this.
 */
const WRITE_TTL_MS = 60_000;

function key(userId: string, part: "count" | "version" | "writes"): string {
  return `herald:{u:${userId}}:unread-${part}`;
}

function throwFirstError(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error("a Redis pipeline was aborted");
  const failed = results.find(([err]) => err);
  if (failed?.[0]) throw failed[0];
  return results.map(([, value]) => value);
}

/**
 * The version starts at the server's clock in microseconds, so one lost with Redis's data restarts
 * above every version handed out before. (TIME's fields are joined as digits: a Lua number would
 * be written in exponent form.)
 */
const VERSION_FUNCTION = `
local function nextVersion(versionKey)
  if redis.call('EXISTS', versionKey) == 0 then
    local now = redis.call('TIME')
    redis.call('SET', versionKey, now[1] .. string.format('%06d', tonumber(now[2])))
  end
  return redis.call('INCR', versionKey)
end
`;

/** KEYS: count, version, writes. ARGV: delta, 1 to drop the counter. Returns { version, count or -1 }. */
const APPLY: RedisScript = {
  name: "heraldUnreadApply",
  keys: 3,
  lua: `${VERSION_FUNCTION}
if redis.call('DECR', KEYS[3]) <= 0 then redis.call('DEL', KEYS[3]) end
local version = nextVersion(KEYS[2])
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return { version, -1 } end
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if count < 0 then
  redis.call('DEL', KEYS[1])
  return { version, -1 }
end
return { version, count }
`,
};

/** KEYS: count, version. Returns { version, count or -1 }; a rebuild starts from that version. */
const READ: RedisScript = {
  name: "heraldUnreadRead",
  keys: 2,
  lua: `${VERSION_FUNCTION}
local version = tonumber(redis.call('GET', KEYS[2]))
if not version then version = nextVersion(KEYS[2]) end
local count = redis.call('GET', KEYS[1])
if not count then return { version, -1 } end
return { version, tonumber(count) }
`,
};

/**
 * KEYS: count, version, writes. ARGV: version the count started at, count, ttl ms. Keeps the count
 * only if no change completed since (same version) and none is in flight.
 */
const KEEP: RedisScript = {
  name: "heraldUnreadKeep",
  keys: 3,
  lua: `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`,
};
