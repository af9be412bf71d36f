// The soak option of the Django-workload scenarios (`--soak-minutes=N`, never in CI): comments at a
// steady rate below what the throughput scenario reached, for minutes, to see whether anything
// accumulates: memory in api, worker or Redis, or the job backlog.
import type { Costs } from "./costs.js";
import { describeBacklog, barrier, message, setUpCast, type LoadContext, type LoadOptions } from "./load.js";
import type { Backlog } from "./job-backlog.js";
import { residentKiB } from "./process-cpu.js";
import type { RedisStats } from "./redis-stats.js";

export interface SoakOptions {
  minutes: number;
  /** Comments per second, sent on a fixed schedule whatever the answers take. */
  rate: number;
  reportEveryMs: number;
  /** Comments awaiting an answer at most; a send due beyond it is skipped and counted. */
  maxInFlight: number;
}

export interface SoakSample {
  atMs: number;
  sent: number;
  received: number;
  /** Sent more than the event timeout ago and still without an event. */
  lostSoFar: number;
  apiRssKiB: number | undefined;
  workerRssKiB: number | undefined;
  redisUsedBytes: number | undefined;
  backlog: Backlog | undefined;
}

export interface SoakResult {
  rate: number;
  minutes: number;
  sent: number;
  skipped: number;
  httpErrors: number;
  /** What the first failed requests said. */
  errorSamples: string[];
  received: number;
  lost: number;
  samples: SoakSample[];
  costs: Costs | undefined;
  stopped: string | undefined;
}

export async function runSoak(
  ctx: LoadContext,
  stack: { apiPid: number | undefined; workerPid: number | undefined; redisStats: RedisStats },
  options: LoadOptions,
  soak: SoakOptions,
  tag: string,
): Promise<SoakResult> {
  const result: SoakResult = {
    rate: soak.rate,
    minutes: soak.minutes,
    sent: 0,
    skipped: 0,
    httpErrors: 0,
    errorSamples: [],
    received: 0,
    lost: 0,
    samples: [],
    costs: undefined,
    stopped: undefined,
  };
  const cast = await setUpCast(ctx, options, tag);
  try {
    const through = await barrier(ctx, cast, options.barrierTimeoutMs);
    if (!through.ok) return { ...result, stopped: "the barrier before it did not get through" };
    ctx.log(`soak: ${soak.rate.toFixed(1)} comments/s for ${soak.minutes} min …`);
    const sentAt = new Map<number, number>();
    const arrived = new Set<number>();
    let sending = true;
    const collector = (async () => {
      while (sending || arrived.size < sentAt.size) {
        const event = await cast.socketB.next("NEW_COMMENT", options.eventTimeoutMs, (b) => b.startsWith("soak "));
        if (event) arrived.add(Number(event.body.slice("soak ".length)));
        else if (!sending || cast.socketB.failed !== undefined) break;
      }
    })();
    const mark = await ctx.meter.start();
    const started = performance.now();
    const endAt = started + soak.minutes * 60_000;
    let inFlight = 0;
    let nextReport = started + soak.reportEveryMs;
    for (let i = 0; performance.now() < endAt; i += 1) {
      const due = started + (i * 1000) / soak.rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (inFlight >= soak.maxInFlight) {
        result.skipped += 1;
      } else {
        inFlight += 1;
        sentAt.set(i, performance.now());
        cast.api
          .comment(cast.a, cast.postId, `soak ${i}`)
          .catch((err: unknown) => {
            result.httpErrors += 1;
            if (result.errorSamples.length < 3) result.errorSamples.push(message(err));
          })
          .finally(() => (inFlight -= 1));
      }
      if (performance.now() >= nextReport) {
        nextReport += soak.reportEveryMs;
        const sample = await takeSample(ctx, stack, started, sentAt, arrived, options.eventTimeoutMs);
        result.samples.push(sample);
        ctx.log(describeSample(sample, result.samples.at(-2), soak.reportEveryMs));
      }
    }
    sending = false;
    ctx.log(`soak: sending stopped; waiting up to ${options.eventTimeoutMs / 1000} s for the last events …`);
    await collector;
    result.costs = await ctx.meter.stop(mark, arrived.size);
    result.sent = sentAt.size;
    result.received = arrived.size;
    result.lost = sentAt.size - arrived.size;
  } catch (err) {
    result.stopped = message(err);
  } finally {
    await cast.socketB.close();
    cast.api.close();
  }
  return result;
}

async function takeSample(
  ctx: LoadContext,
  stack: { apiPid: number | undefined; workerPid: number | undefined; redisStats: RedisStats },
  started: number,
  sentAt: Map<number, number>,
  arrived: Set<number>,
  eventTimeoutMs: number,
): Promise<SoakSample> {
  const now = performance.now();
  let lostSoFar = 0;
  for (const [i, at] of sentAt) if (now - at > eventTimeoutMs && !arrived.has(i)) lostSoFar += 1;
  const [apiRssKiB, workerRssKiB, redisUsedBytes, backlog] = await Promise.all([
    residentKiB(stack.apiPid),
    residentKiB(stack.workerPid),
    stack.redisStats.usedMemory().catch(() => undefined),
    ctx.backlog(),
  ]);
  return {
    atMs: now - started,
    sent: sentAt.size,
    received: arrived.size,
    lostSoFar,
    apiRssKiB,
    workerRssKiB,
    redisUsedBytes,
    backlog,
  };
}

const mib = (kib: number | undefined) => (kib === undefined ? "n/a" : `${(kib / 1024).toFixed(0)} MiB`);

function describeSample(s: SoakSample, previous: SoakSample | undefined, intervalMs: number): string {
  const events = s.received - (previous?.received ?? 0);
  return (
    `soak ${(s.atMs / 1000).toFixed(0)} s: ${(events / (intervalMs / 1000)).toFixed(1)} events/s, ` +
    `sent ${s.sent}, received ${s.received}, lost so far ${s.lostSoFar} | RSS api ${mib(s.apiRssKiB)}, ` +
    `worker ${mib(s.workerRssKiB)} | Redis used_memory ${mib(s.redisUsedBytes && s.redisUsedBytes / 1024)} | ` +
    describeBacklog(s.backlog)
  );
}

/** A figure grows when its last third's mean is over its first third's by more than its slack. */
export function flatness(
  samples: readonly SoakSample[],
): { name: string; first: string; last: string; flat: boolean }[] | undefined {
  const third = Math.floor(samples.length / 3);
  if (third === 0) return undefined;
  const mean = (part: readonly SoakSample[], pick: (s: SoakSample) => number | undefined) => {
    const values = part.map(pick).filter((v): v is number => v !== undefined);
    return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length;
  };
  const inMiB = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
  const figures: {
    name: string;
    pick: (s: SoakSample) => number | undefined;
    slack: (first: number) => number;
    show: (value: number) => string;
  }[] = [
    { name: "api RSS", pick: (s) => s.apiRssKiB, slack: (f) => f * 0.1, show: inMiB },
    { name: "worker RSS", pick: (s) => s.workerRssKiB, slack: (f) => f * 0.1, show: inMiB },
    {
      name: "Redis used_memory",
      pick: (s) => s.redisUsedBytes,
      slack: (f) => f * 0.1,
      show: (bytes) => inMiB(bytes / 1024),
    },
    // A backlog of a few dozen jobs comes and goes with the rate; a trend above that does not.
    {
      name: "job backlog (queued + locked)",
      pick: (s) => s.backlog && s.backlog.queued + s.backlog.running,
      slack: (f) => Math.max(50, f * 0.1),
      show: (jobs) => jobs.toFixed(0),
    },
  ];
  return figures.flatMap(({ name, pick, slack, show }) => {
    const first = mean(samples.slice(0, third), pick);
    const last = mean(samples.slice(-third), pick);
    if (first === undefined || last === undefined) return [];
    return [{ name, first: show(first), last: show(last), flat: last <= first + slack(first) }];
  });
}

export function reportSoak(r: SoakResult, costLines: readonly string[]): string[] {
  const lines = [
    `soak: ${r.rate.toFixed(1)} comments/s for ${r.minutes} min; sent ${r.sent}, received ${r.received}, ` +
      `lost ${r.lost}, http errors ${r.httpErrors}${r.skipped > 0 ? `, skipped (too many in flight) ${r.skipped}` : ""}` +
      (r.errorSamples.length > 0 ? ` (first errors: ${r.errorSamples.join("; ")})` : ""),
  ];
  const verdicts = flatness(r.samples);
  if (!verdicts) lines.push("  too few samples to compare the first and last third");
  else lines.push("  means of the first and last third of the samples (grew: by more than 10 %, or 50 jobs):");
  for (const v of verdicts ?? []) {
    lines.push(`  ${v.name}: first third ${v.first}, last third ${v.last} — ${v.flat ? "flat" : "GREW"}`);
  }
  if (r.stopped) lines.push(`  stopped early: ${r.stopped}`);
  return [...lines, ...costLines];
}
