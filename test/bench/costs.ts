// What a measured phase cost, to divide by the events it delivered: MongoDB commands (wire
// counter), Redis commands (commandstats) and each process's CPU time.
import { cpuMsBetween, cpuSnapshot, type CpuSnapshot, type ProcessRef } from "./process-cpu.js";
import { redisDelta, type RedisCalls, type RedisMark, type RedisStats } from "./redis-stats.js";
import { addWireCounts, wireDelta, type WireCounter, type WireCounts } from "./wire-counter.js";

export interface Costs {
  /** Events delivered in the phase: the denominator of every figure per event. */
  events: number;
  wallMs: number;
  /** Undefined when the commands could not be counted (see startWireCounter). */
  mongo: WireCounts | undefined;
  redis: RedisCalls;
  /** By process name; undefined for a process that is not ours to read. */
  cpuMs: Map<string, number | undefined>;
}

interface CostMark {
  at: number;
  mongo: WireCounts | undefined;
  redis: RedisMark;
  cpu: CpuSnapshot;
}

export class CostMeter {
  constructor(
    private readonly wire: WireCounter | undefined,
    private readonly redis: RedisStats,
    private readonly processes: readonly ProcessRef[],
  ) {}

  async start(): Promise<CostMark> {
    const [mongo, redis, cpu] = await Promise.all([
      this.wire?.snapshot(),
      this.redis.mark(),
      cpuSnapshot(this.processes),
    ]);
    return { at: performance.now(), mongo, redis, cpu };
  }

  async stop(start: CostMark, events: number): Promise<Costs> {
    const wallMs = performance.now() - start.at;
    const [mongo, redis, cpu] = await Promise.all([
      this.wire?.snapshot(),
      this.redis.mark(),
      cpuSnapshot(this.processes),
    ]);
    return {
      events,
      wallMs,
      mongo: mongo && start.mongo ? wireDelta(start.mongo, mongo) : undefined,
      redis: redisDelta(start.redis, redis),
      cpuMs: cpuMsBetween(start.cpu, cpu),
    };
  }
}

/** The phases of several rounds as one. */
export function addCosts(a: Costs, b: Costs): Costs {
  const redis = new Map(a.redis);
  for (const [name, calls] of b.redis) redis.set(name, (redis.get(name) ?? 0) + calls);
  // A process unreadable in either phase stays unknown rather than counting half its time.
  const cpuMs = new Map(a.cpuMs);
  for (const [name, ms] of b.cpuMs) {
    const prior = cpuMs.get(name);
    cpuMs.set(name, ms === undefined || prior === undefined ? undefined : prior + ms);
  }
  return {
    events: a.events + b.events,
    wallMs: a.wallMs + b.wallMs,
    mongo: a.mongo && b.mongo ? addWireCounts(a.mongo, b.mongo) : undefined,
    redis,
    cpuMs,
  };
}
