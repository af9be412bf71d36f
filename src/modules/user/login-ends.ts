import { channelName, type PubSubBridge, type Topics } from "../../infra/pubsub.js";
import type { Redis } from "../../infra/redis.js";

export const LOGINS_ENDED = "LOGINS_ENDED";
/** One channel for all: every api instance wants to hear of every login that ends. */
const EVERY_LOGIN = "all";
/** Ended logins whose tokens may still be unexpired, scored by when the last of them expires. */
const ENDED_KEY = "herald:logins:ended";

declare module "../../infra/pubsub.js" {
  interface Topics {
    [LOGINS_ENDED]: { loginIds: string[]; until: number };
  }
}

/**
 * Which logins have ended, known to every api instance at once. Access tokens are checked by
 * signature, with no database read, so an ended login's tokens stay refused here until they would
 * have expired anyway; its open sockets are closed as soon as the end is heard, on every instance.
 * The ends live in Redis (a sorted set, for instances that start later or were cut off) and are
 * published there; each instance keeps those in force in memory, so a request costs a map lookup.
 */
export class LoginEnds {
  private readonly ended = new Map<string, number>();
  private readonly watchers = new Map<string, Set<() => void>>();

  constructor(
    private readonly redis: Redis,
    private readonly pubsub: PubSubBridge<Topics>,
    /** How long an access token lives: how long an end must be remembered. */
    private readonly tokenTtlMs: number,
  ) {}

  /** Hears ends from every process from now on, after loading those in force; answers how to stop. */
  async listen(): Promise<() => void> {
    const stop = await this.pubsub.listen(LOGINS_ENDED, EVERY_LOGIN, ({ loginIds, until }) =>
      this.apply(loginIds, until),
    );
    // Ends published while Redis was away were not heard: the sorted set has them.
    const stopReloading = this.pubsub.onResubscribed(() => void this.load().catch(() => undefined));
    await this.load();
    return () => {
      stop();
      stopReloading();
    };
  }

  /** Ends `loginIds` everywhere: stored first, then announced. */
  async end(loginIds: readonly string[]): Promise<void> {
    if (loginIds.length === 0) return;
    const now = Date.now();
    const until = now + this.tokenTtlMs;
    await this.redis
      .multi()
      .zadd(ENDED_KEY, ...loginIds.flatMap((id) => [until, id]))
      .zremrangebyscore(ENDED_KEY, "-inf", now)
      .publish(channelName(LOGINS_ENDED, EVERY_LOGIN), JSON.stringify({ loginIds, until }))
      .exec();
    this.apply(loginIds, until);
  }

  isEnded(loginId: string): boolean {
    const until = this.ended.get(loginId);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    // Every token of that login has expired by now: nothing left to refuse.
    this.ended.delete(loginId);
    return false;
  }

  /** Calls `onEnded` once the login ends (at once if it has); answers how to stop watching. */
  watch(loginId: string, onEnded: () => void): () => void {
    if (this.isEnded(loginId)) {
      onEnded();
      return () => undefined;
    }
    const set = this.watchers.get(loginId) ?? new Set();
    this.watchers.set(loginId, set);
    set.add(onEnded);
    return () => {
      set.delete(onEnded);
      if (set.size === 0) this.watchers.delete(loginId);
    };
  }

  private async load(): Promise<void> {
    const now = Date.now();
    const found = await this.redis.zrangebyscore(ENDED_KEY, now, "+inf", "WITHSCORES");
    for (let i = 0; i + 1 < found.length; i += 2) this.apply([found[i] ?? ""], Number(found[i + 1]));
  }

  private apply(loginIds: readonly string[], until: number): void {
    for (const id of loginIds) {
      this.ended.set(id, Math.max(until, this.ended.get(id) ?? 0));
      const watching = this.watchers.get(id);
      this.watchers.delete(id);
      for (const onEnded of watching ?? []) onEnded();
    }
    if (this.ended.size > PRUNE_ABOVE) {
      const now = Date.now();
      for (const [id, at] of this.ended) if (at <= now) this.ended.delete(id);
    }
  }
}

/** Ends remembered before the expired ones are swept out of memory. */
const PRUNE_ABOVE = 10_000;
