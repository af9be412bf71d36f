import { randomBytes, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { defineScripts, runScript, type Redis, type RedisScript } from "../../infra/redis.js";
import { channelName } from "../../infra/pubsub.js";
import { INBOX, InboxEventType, type InboxChange, type InboxPosition, type StoredInboxEvent } from "./inbox-events.js";
import { SpanKind, inSpan } from "../../infra/tracing.js";

/** Counts unread notifications in the database: the truth the counters stand for. */
export type Recount = (userIds: readonly string[]) => Promise<Map<string, number>>;

/** One user's share of a write: the changes it made, in order, each with its effect on the count. */
export interface InboxCommit {
  userId: string;
  changes: { delta: number; change: InboxChange }[];
  /** Held while the change was written (see `lock`): released once its events are in the log. */
  lock?: string;
  /** The write failed or its effect is unknown: the counter is dropped, to be counted anew. */
  forget?: boolean;
}

export interface InboxLogOptions {
  /** Events kept per user (approximately: Redis trims whole blocks). */
  historyEvents: number;
  /** Events older than this are dropped, and a user idle this long loses the whole history. */
  historyMs: number;
  countTtlMs?: number;
  writeTtlMs?: number;
}

/**
 * Each user's inbox as a log in Redis: the unread counter, and a stream of every change to the
 * inbox with the count after it, from which a client that was away resumes (see inboxEvents).
 *
 * MongoDB stays the truth. A change is written there first; then one Lua script applies its
 * effect to the counter, appends its events to the user's stream and publishes them, so that a
 * crash can never leave an event published but not in the history, or the reverse.
 *
 * The counter is a cache of the user's unread count that every change adjusts by its own effect.
 * One that is missing (never built, expired, lost with Redis's data, dropped because it might be
 * wrong) is rebuilt by counting once; a rebuild must not race a change whose write is done but
 * whose effect is not yet applied, so a change announces itself before its write (`begin` or
 * `lock`) and ends in `commit`; a count is kept only if no change was in flight and none
 * completed while it was counted. Until then, events carry a count read from the database after
 * their write.
 *
 * Changes to existing notifications (read, archive, delete, …) hold a per-user lock from before
 * their write until their events are appended, so that two changes to one notification are
 * logged in the order they were stored (and, on FerretDB, whose conditional updates are not
 * atomic, so that each reports exactly what it changed).
 *
 * A user's stream starts when a client first asks for a position in it (`position`: the
 * streamCursor of a page, or an inboxEvents subscription), and ends `historyMs` after its last
 * event: a user whose apps never resume costs no history, only the counter. Until then, changes
 * are published and not logged.
 *
 * Each user's stream has an epoch, a random id drawn when the stream starts. A stream lost with
 * Redis's data, or dropped after `historyMs` idle, starts again under another epoch, so a cursor
 * into the old one is recognised as one that cannot be served. Entries carry a sequence number
 * without holes, so a client's position is served only when every event after it is still there.
 *
 * Keys of one user share a hash tag, `herald:{u:<id>}:`, so they can move to a Redis Cluster.
 */
export class InboxLog {
  constructor(
    private readonly redis: Redis,
    private readonly options: InboxLogOptions,
  ) {
    defineScripts(redis, [COMMIT, READ, KEEP, LOCK, POSITION, AFTER]);
  }

  /** Before inserting notifications for these users. */
  async begin(userIds: Iterable<string>): Promise<void> {
    const pipeline = this.redis.pipeline();
    for (const id of new Set(userIds)) {
      pipeline.incr(key(id, "unread-writes"));
      pipeline.pexpire(key(id, "unread-writes"), this.writeTtlMs);
    }
    throwFirstError(await pipeline.exec());
  }

  /**
   * Before changing a user's existing notifications: waits for the user's other changes to end,
   * then begins. The answer is passed to `commit`, which ends the lock.
   */
  async lock(userId: string): Promise<string> {
    return (await this.lockAll([userId])).get(userId) ?? "";
  }

  /**
   * `lock` for many users at once, in one round trip while their inboxes are free. All or none:
   * when some are held by others, those taken are released and all are tried again after a
   * jittered wait, so that two callers locking overlapping sets never hold parts of each other's.
   */
  async lockAll(userIds: Iterable<string>): Promise<Map<string, string>> {
    const users = [...new Set(userIds)];
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let wait = 1; ; wait = Math.min(wait * 2, 25)) {
      const tokens = new Map(users.map((userId) => [userId, randomUUID()]));
      const pipeline = this.redis.pipeline();
      for (const [userId, token] of tokens) {
        void runScript(
          pipeline,
          LOCK,
          key(userId, "lock"),
          key(userId, "unread-writes"),
          token,
          LOCK_TTL_MS,
          this.writeTtlMs,
        );
      }
      const results = await pipeline.exec();
      if (!results) throw new Error("a Redis pipeline was aborted");
      const taken = new Map(
        users.flatMap((userId, i) => (results[i]?.[1] === 1 ? [[userId, tokens.get(userId) ?? ""]] : [])),
      );
      if (taken.size === users.length) return taken;
      await this.unlock(taken);
      const failed = results.find(([err]) => err)?.[0];
      if (failed) throw failed;
      if (Date.now() > deadline) {
        throw new Error(`${users.length - taken.size} of ${users.length} inboxes stayed locked for ${LOCK_WAIT_MS} ms`);
      }
      await sleep(wait * (0.5 + Math.random()));
    }
  }

  /** Ends locks under which nothing was written: the counters stay as they were. */
  private async unlock(tokens: ReadonlyMap<string, string>): Promise<void> {
    if (tokens.size === 0) return;
    await this.commit(
      [...tokens].map(([userId, lock]) => ({ userId, lock, changes: [] })),
      () => Promise.resolve(new Map<string, number>()),
    );
  }

  /**
   * After the write: applies each user's changes to the counter and appends them to the log, in
   * one step per user. Users whose counter is missing are counted in the database (after the
   * write, so the count includes it) and their events carry that count. Answers each user's
   * count after the write, where one was logged.
   */
  commit(commits: readonly InboxCommit[], recount: Recount): Promise<Map<string, number>> {
    // The push: what subscribers on every api instance receive leaves here.
    const attributes = { "herald.inbox.users": commits.length };
    return inSpan("inbox.commit", { kind: SpanKind.PRODUCER, attributes }, () => this.commitNow(commits, recount));
  }

  private async commitNow(commits: readonly InboxCommit[], recount: Recount): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    const pipeline = this.redis.pipeline();
    for (const c of commits) void this.run(pipeline, c, "delta", 0, 0);
    const replies = throwFirstError(await pipeline.exec()) as number[][];
    let uncounted: { commit: InboxCommit; version: number }[] = [];
    commits.forEach((c, i) => {
      const [done = 0, second = 0] = replies[i] ?? [];
      if (done === 0) uncounted.push({ commit: c, version: second });
      else if (second >= 0) counts.set(c.userId, second);
    });
    for (let attempt = 1; uncounted.length > 0; attempt += 1) {
      const counted = await recount(uncounted.map((u) => u.commit.userId));
      // A count is trusted only if no change completed while it was read; past a few tries under
      // a stream of changes, the last count read is logged (the next change corrects it).
      const mode = attempt < RECOUNT_TRIES ? "recount" : "force";
      const retry = this.redis.pipeline();
      for (const u of uncounted) {
        void this.run(retry, u.commit, mode, u.version, counted.get(u.commit.userId) ?? 0);
      }
      const again = throwFirstError(await retry.exec()) as number[][];
      const stale: typeof uncounted = [];
      uncounted.forEach((u, i) => {
        const [done = 0, second = 0] = again[i] ?? [];
        if (done === 1) counts.set(u.commit.userId, second);
        else stale.push({ commit: u.commit, version: second });
      });
      uncounted = stale;
    }
    return counts;
  }

  private run(
    target: object,
    c: InboxCommit,
    mode: "delta" | "recount" | "force",
    version: number,
    counted: number,
  ): Promise<unknown> {
    const id = c.userId;
    return runScript(
      target,
      COMMIT,
      key(id, "unread-count"),
      key(id, "unread-version"),
      key(id, "unread-writes"),
      key(id, "inbox"),
      key(id, "inbox-meta"),
      key(id, "lock"),
      mode[0] ?? "d",
      version,
      counted,
      c.lock ?? "",
      c.forget ? 1 : 0,
      this.options.historyEvents,
      this.options.historyMs,
      this.countTtlMs,
      channelName(INBOX, id),
      ...c.changes.flatMap(({ delta, change }) => [delta, JSON.stringify(change)]),
    );
  }

  /** Each user's count: from the counter, or counted and kept as the counter when that is safe. */
  async read(userIds: readonly string[], recount: Recount): Promise<Map<string, number>> {
    const pipeline = this.redis.pipeline();
    for (const id of userIds) void runScript(pipeline, READ, key(id, "unread-count"), key(id, "unread-version"));
    const replies = throwFirstError(await pipeline.exec()) as [number, number][];
    const known = new Map<string, number>();
    const missing: { id: string; version: number }[] = [];
    userIds.forEach((id, i) => {
      const [version, count] = replies[i] ?? [0, -1];
      if (count >= 0) known.set(id, count);
      else missing.push({ id, version });
    });
    if (missing.length === 0) return known;
    const counted = await recount(missing.map((m) => m.id));
    const keep = this.redis.pipeline();
    for (const { id, version } of missing) {
      const count = counted.get(id) ?? 0;
      known.set(id, count);
      void runScript(
        keep,
        KEEP,
        key(id, "unread-count"),
        key(id, "unread-version"),
        key(id, "unread-writes"),
        version,
        count,
        this.countTtlMs,
      );
    }
    throwFirstError(await keep.exec());
    return known;
  }

  /** Drops everything kept of a user's inbox: its counter, its stream, its lock. */
  async forget(userId: string): Promise<void> {
    const parts: KeyPart[] = ["unread-count", "unread-version", "unread-writes", "inbox", "inbox-meta", "lock"];
    await this.redis.del(...parts.map((part) => key(userId, part)));
  }

  /** Where the user's log ends now (starting it if need be): a cursor from here misses nothing that follows. */
  async position(userId: string): Promise<InboxPosition> {
    const [epoch, seq, id] = (await runScript(
      this.redis,
      POSITION,
      key(userId, "inbox-meta"),
      newEpoch(),
      this.options.historyMs,
    )) as [string, number, string];
    return { epoch, seq, id };
  }

  /**
   * The user's events after `from`, at most `limit`, oldest first; null when the log cannot serve
   * that position (another epoch, or events after it already dropped): the client must start
   * again from the inbox itself.
   */
  async after(userId: string, from: InboxPosition, limit: number): Promise<StoredInboxEvent[] | null> {
    const reply = (await runScript(
      this.redis,
      AFTER,
      key(userId, "inbox"),
      key(userId, "inbox-meta"),
      from.epoch,
      from.seq,
      from.id,
      limit,
    )) as [number, [string, string[]][]?];
    if (reply[0] !== 1) return null;
    return (reply[1] ?? []).map(([id, fields]) => parseEntry(from.epoch, id, fields));
  }

  /** Ids of the notifications whose ADDED event the user's log holds, of those logged since `since`. */
  async addedSince(userId: string, since: Date): Promise<Set<string>> {
    // Stream ids come from Redis's clock, `since` from this process's: a margin covers the skew.
    const from = Math.max(0, since.getTime() - CLOCK_MARGIN_MS);
    const entries = (await this.redis.xrange(key(userId, "inbox"), `${from}-0`, "+")) as [string, string[]][];
    const ids = new Set<string>();
    for (const [id, fields] of entries) {
      const { change } = parseEntry("", id, fields);
      if (change.type === InboxEventType.ADDED) ids.add(change.notification.id);
    }
    return ids;
  }

  private get countTtlMs(): number {
    return this.options.countTtlMs ?? COUNT_TTL_MS;
  }

  private get writeTtlMs(): number {
    return this.options.writeTtlMs ?? WRITE_TTL_MS;
  }
}

/** A stream entry's fields, as COMMIT writes them: s (sequence), c (count after), e (the change). */
function parseEntry(epoch: string, id: string, fields: readonly string[]): StoredInboxEvent {
  const value = (name: string) => fields[fields.indexOf(name) + 1] ?? "";
  return {
    position: { epoch, seq: Number(value("s")), id },
    unreadCount: Number(value("c")),
    change: JSON.parse(value("e")) as InboxChange,
  };
}

function newEpoch(): string {
  return randomBytes(8).toString("hex");
}

/** A counter is rebuilt at least this often, which bounds how long a wrong one can last. */
const COUNT_TTL_MS = 24 * 3600_000;
/**
 * How long a change may take between `begin` and `commit` (one write); a writer that died in
 * between stops blocking rebuilds after this.
 */
const WRITE_TTL_MS = 60_000;
/** A lock holder that died is presumed gone after this. */
const LOCK_TTL_MS = 10_000;
/** How long a change waits for the user's other changes before it fails. */
const LOCK_WAIT_MS = 5_000;
/** How far before a write its events are looked for, for clocks that disagree. */
const CLOCK_MARGIN_MS = 60_000;
/** Counts read while other changes complete are read again this many times at most. */
const RECOUNT_TRIES = 4;

type KeyPart = "unread-count" | "unread-version" | "unread-writes" | "inbox" | "inbox-meta" | "lock";

function key(userId: string, part: KeyPart): string {
  return `herald:{u:${userId}}:${part}`;
}

function throwFirstError(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error("a Redis pipeline was aborted");
  const failed = results.find(([err]) => err);
  if (failed?.[0]) throw failed[0];
  return results.map(([, value]) => value);
}

/**
 * The version counts completed changes, so that a rebuild can tell whether one completed while it
 * counted. It starts at the server's clock in microseconds, so one lost with Redis's data restarts
 * above every version seen before. (TIME's fields are joined as digits: a Lua number would be
 * written in exponent form.)
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

/**
 * KEYS: count, version, writes, stream, meta, lock.
 * ARGV: 1 mode (d: apply the deltas; r: log with a count read after the write if no change
 * completed since `version`; f: log with that count regardless), 2 version, 3 count read,
 * 4 lock token, 5 '1' to drop the counter, 6 history length, 7 history ms, 8 counter ttl ms,
 * 9 channel, then pairs of (delta, change JSON).
 * Returns { 1, count after } once logged (count -1: nothing logged nor published, as nobody would see
 * it), else { 0, version } (count the user, then try 'r').
 * A user without a stream (no client asked for a position within the history's lifetime: see
 * `position`) has nothing logged; the events are only published, with sequence number 0.
 */
const COMMIT: RedisScript = {
  name: "heraldInboxCommit",
  keys: 6,
  lua: `${VERSION_FUNCTION}
local mode = ARGV[1]
local n = (#ARGV - 9) / 2
local function release()
  if ARGV[4] ~= '' and redis.call('GET', KEYS[6]) == ARGV[4] then redis.call('DEL', KEYS[6]) end
end
local final
if mode == 'd' then
  if redis.call('DECR', KEYS[3]) <= 0 then redis.call('DEL', KEYS[3]) end
  local version = nextVersion(KEYS[2])
  if ARGV[5] == '1' then redis.call('DEL', KEYS[1]) end
  local total = 0
  for i = 0, n - 1 do total = total + tonumber(ARGV[10 + 2 * i]) end
  if redis.call('EXISTS', KEYS[1]) == 1 then
    local count = redis.call('INCRBY', KEYS[1], total)
    if count >= 0 then final = count else redis.call('DEL', KEYS[1]) end
  end
  if not final then
    -- Nobody would see a count: no stream to log in, no subscriber on the channel. The counter
    -- stays missing, to be counted when next read, and the database is spared a count.
    if n == 0 or (redis.call('HEXISTS', KEYS[5], 'epoch') == 0 and
        redis.call('PUBSUB', 'NUMSUB', ARGV[9])[2] == 0) then
      release()
      return { 1, -1 }
    end
    return { 0, version }
  end
else
  local counter = redis.call('GET', KEYS[1])
  local version = redis.call('GET', KEYS[2]) or '0'
  if counter then
    -- Built since this change's 'd' step, so from a count that includes it.
    final = tonumber(counter)
  elseif mode == 'r' and version ~= ARGV[2] then
    return { 0, tonumber(version) }
  else
    final = tonumber(ARGV[3])
    if mode == 'r' and redis.call('EXISTS', KEYS[3]) == 0 then
      redis.call('SET', KEYS[1], final, 'PX', ARGV[8])
    end
  end
end
if n > 0 then
  local epoch = redis.call('HGET', KEYS[5], 'epoch')
  local version = redis.call('GET', KEYS[2]) or '0'
  local counts = {}
  local rest = 0
  for i = n - 1, 0, -1 do
    counts[i] = final - rest
    rest = rest + tonumber(ARGV[10 + 2 * i])
  end
  for i = 0, n - 1 do
    local change = ARGV[11 + 2 * i]
    local seq = 0
    local id = '0-0'
    if epoch then
      seq = redis.call('HINCRBY', KEYS[5], 'seq', 1)
      id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 's', seq, 'c', counts[i], 'e', change)
      redis.call('HSET', KEYS[5], 'last', id)
    end
    redis.call('PUBLISH', ARGV[9], '{"epoch":"' .. (epoch or '') .. '","seq":' .. seq .. ',"id":"' .. id ..
      '","version":' .. version .. ',"unreadCount":' .. counts[i] .. ',"change":' .. change .. '}')
  end
  if epoch then
    local now = redis.call('TIME')
    local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    redis.call('XTRIM', KEYS[4], 'MINID', '~', string.format('%d', nowMs - tonumber(ARGV[7])))
    redis.call('PEXPIRE', KEYS[4], ARGV[7])
    redis.call('PEXPIRE', KEYS[5], ARGV[7])
  end
end
release()
return { 1, final }
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

/** KEYS: lock, writes. ARGV: token, lock ttl ms, writes ttl ms. Returns 1 when taken (and begun). */
const LOCK: RedisScript = {
  name: "heraldInboxLock",
  keys: 2,
  lua: `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`,
};

/** KEYS: meta. ARGV: a fresh epoch, history ms. Returns { epoch, seq, last id }. */
const POSITION: RedisScript = {
  name: "heraldInboxPosition",
  keys: 1,
  lua: `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
return { epoch, seq, redis.call('HGET', KEYS[1], 'last') or '0-0' }
`,
};

/**
 * KEYS: stream, meta. ARGV: epoch, seq, id of the position, limit. Returns { 1, entries } when
 * every event after the position is still in the stream, else { 0 }.
 */
const AFTER: RedisScript = {
  name: "heraldInboxAfter",
  keys: 2,
  lua: `
if redis.call('HGET', KEYS[2], 'epoch') ~= ARGV[1] then return { 0 } end
local seq = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
local from = tonumber(ARGV[2])
if from > seq then return { 0 } end
if from == seq then return { 1, {} } end
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[3], '+', 'COUNT', ARGV[4])
if #entries == 0 then return { 0 } end
local fields = entries[1][2]
for i = 1, #fields, 2 do
  if fields[i] == 's' and tonumber(fields[i + 1]) ~= from + 1 then return { 0 } end
end
return { 1, entries }
`,
};
