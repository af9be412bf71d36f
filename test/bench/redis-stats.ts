// Redis commands Herald sends, from the server's own tally (INFO commandstats), less the ones this
// client sends to read it: the figures are per event, so the bench must not count itself.
import type { Redis } from "ioredis";

/** Calls per command as INFO commandstats names them ("publish", "pubsub|numsub"). */
export type RedisCalls = Map<string, number>;

export interface RedisMark {
  calls: RedisCalls;
  /** What this client had sent by then, by the same names. */
  own: RedisCalls;
}

export class RedisStats {
  private readonly own: RedisCalls = new Map();

  /** `redis` must be connected already: ioredis's ready check would count as ours but happen unseen. */
  constructor(private readonly redis: Redis) {}

  async mark(): Promise<RedisMark> {
    const info = await this.info("commandstats");
    const calls: RedisCalls = new Map();
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      calls.set(match[1] ?? "", Number(match[2]));
    }
    return { calls, own: new Map(this.own) };
  }

  /** used_memory, in bytes. */
  async usedMemory(): Promise<number | undefined> {
    const value = /^used_memory:(\d+)/m.exec(await this.info("memory"))?.[1];
    return value === undefined ? undefined : Number(value);
  }

  private info(section: string): Promise<string> {
    this.own.set("info", (this.own.get("info") ?? 0) + 1);
    return this.redis.info(section);
  }
}

/** Calls by everyone but this client between two marks, commands with none left out. */
export function redisDelta(before: RedisMark, after: RedisMark): RedisCalls {
  const delta: RedisCalls = new Map();
  for (const [name, calls] of after.calls) {
    const own = (after.own.get(name) ?? 0) - (before.own.get(name) ?? 0);
    const others = calls - (before.calls.get(name) ?? 0) - own;
    if (others > 0) delta.set(name, others);
  }
  return delta;
}
