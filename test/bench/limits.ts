// The `limits` scenario of `npm run bench`: what the rate limits (src/infra/limits.ts) cost, and
// what they are for.
//   limiter latency  the latency scenario's workload (load.ts: A comments on B's post, one at a
//                    time, POST -> B's NEW_COMMENT) on two api processes sharing one worker and
//                    database, one with RATE_LIMITS=on and limits out of reach, one with
//                    RATE_LIMITS=off. Comment by comment they take turns, each going first every
//                    other time. Run one after the other, the two would meet different moments of a
//                    noisy machine, and a difference of a fraction of a millisecond (one Redis call
//                    per mutation) would be lost in the drift between them; taking turns, both see
//                    the same moments, the same worker, the same database and its size. What still
//                    differs is the process, and its place in the pair: hence two halves, the
//                    second with a fresh pair in the other order, and each api's CPU per comment.
//   login flood      one api and one worker with Herald's default sign-in limits. A legitimate
//                    client sends `me` at a steady rate and is timed, alone (the baseline), then
//                    while an attacker keeps N wrong-password sign-ins in flight against a few
//                    accounts from many addresses, for each N asked. Every level attacks fresh
//                    accounts from fresh addresses, in three phases (login-flood-thread.ts): while
//                    attempts reach the password hash (scrypt, the expensive part), while those let
//                    through before the limiter closed still wait for it, and once the limiter
//                    answers everything.
import http from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { Redis } from "ioredis";
import { LoginDocument, MeDocument, RegisterDocument } from "../generated/graphql.js";
import { bearer, gqlOk, queryText } from "../helpers/graphql-client.js";
import { testMongoUrl, testRedisUrl } from "../helpers/env.js";
import { baseEnv, type HeraldProcess } from "../helpers/herald.js";
import { addCosts, CostMeter, type Costs } from "./costs.js";
import { jobBacklog } from "./job-backlog.js";
import { postGraphql, within } from "./load-client.js";
import {
  barrier,
  Deadline,
  message,
  newTimed,
  setUpCast,
  summarizeTimed,
  timeOne,
  warmUp,
  type Cast,
  type LoadContext,
  type LoadOptions,
  type Target,
  type Timed,
} from "./load.js";
import { reportCosts } from "./load-report.js";
import type { ServerPids } from "./load-stack.js";
import type { FloodFromMain, FloodPhaseName, FloodTally, FloodThreadData, FloodToMain } from "./login-flood-thread.js";
import { RedisStats } from "./redis-stats.js";
import { summarize, type Summary } from "./stats.js";
import { startWireCounter, type WireCounter } from "./wire-counter.js";

export interface LimitsDeps {
  database: string;
  servers: ServerPids;
  startHerald: (env: Record<string, string>) => Promise<HeraldProcess>;
  onCleanup: (name: string, stop: () => Promise<unknown>) => void;
  log: (message: string) => void;
}

/** Epoch milliseconds with sub-millisecond precision: comparable with the attacker thread's clock. */
const now = (): number => performance.timeOrigin + performance.now();

const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : "n/a");
const ms = (value: number | undefined) => (value === undefined ? "n/a" : `${value.toFixed(1)} ms`);
const cell = (text: string, width: number) => text.padStart(width);

// --- The limiter's cost on the latency figure ---------------------------------------------------

const CONFIGS = ["limits on", "limits off"] as const;
type Config = (typeof CONFIGS)[number];

export interface LimiterSide {
  config: Config;
  sent: number;
  lost: number;
  httpErrors: number;
  e2e: Summary | undefined;
  http: Summary | undefined;
  /** The process's CPU over the measured phase, per comment it took. */
  apiCpuMsPerComment: number | undefined;
}

/** One half: two fresh api processes, the first started and set up first. */
export interface LimiterHalf {
  first: Config;
  sides: LimiterSide[];
  /** A's count in each api's Redis counter after the half: the limiter at work, or not. */
  counted: Partial<Record<Config, number>>;
}

export interface LimiterLatencyResult {
  /** Comments per api and half. */
  perHalf: number;
  halves: LimiterHalf[];
  /** Both halves' samples together, per configuration. */
  pooled: LimiterSide[];
  costs: Costs | undefined;
  stopped: string | undefined;
}

/**
 * Two halves on one worker and database, each with two fresh api processes taking turns. Run with
 * both limited or both not, the api started and set up first was 0.2 to 0.6 ms slower at p50 (and
 * used as much more CPU per comment), as large as the limiter's own cost: so the second half
 * swaps which configuration comes first, and the figures are both halves' samples together.
 */
export async function measureLimiterLatency(
  load: LoadOptions,
  deps: LimitsDeps,
  tag: string,
): Promise<LimiterLatencyResult> {
  // Through the command counter, as the latency scenario's processes are.
  const wire = await startWireCounter(testMongoUrl(deps.database));
  if (wire) deps.onCleanup("MongoDB command counter", () => wire.stop());
  // baseEnv's limits are out of reach: with RATE_LIMITS=on every one is counted, none refuses.
  const env = { ...baseEnv(deps.database), ...(wire ? { MONGO_URL: wire.url(deps.database) } : {}) };
  const worker = await deps.startHerald({ ...env, ROLES: "worker" });
  const redis = new Redis(testRedisUrl());
  deps.onCleanup("bench Redis connection", () => redis.quit());
  await redis.ping();
  const perHalf = Math.ceil(load.latencyN / 2);
  const result: LimiterLatencyResult = { perHalf, halves: [], pooled: [], costs: undefined, stopped: undefined };
  const timed = new Map<Config, Timed[]>(CONFIGS.map((config) => [config, []]));
  try {
    for (const first of CONFIGS) {
      const order = first === "limits on" ? CONFIGS : [...CONFIGS].reverse();
      const half = await measureHalf(order, { worker, redis, wire, env }, { ...load, latencyN: perHalf }, deps, tag);
      result.halves.push(half.result);
      for (const [config, t] of half.timed) timed.get(config)?.push(t);
      result.costs = result.costs ? addCosts(result.costs, half.costs) : half.costs;
      if (half.stopped) {
        result.stopped = half.stopped;
        break;
      }
    }
  } catch (err) {
    result.stopped = message(err);
  }
  result.pooled = CONFIGS.map((config) => {
    const all = timed.get(config) ?? [];
    const cpu = result.costs?.cpuMs.get(`api, ${config}`);
    return side(config, joinTimed(all), cpu);
  });
  return result;
}

async function measureHalf(
  order: readonly Config[],
  shared: { worker: HeraldProcess; redis: Redis; wire: WireCounter | undefined; env: Record<string, string> },
  load: LoadOptions,
  deps: LimitsDeps,
  tag: string,
): Promise<{ result: LimiterHalf; timed: Map<Config, Timed>; costs: Costs; stopped: string | undefined }> {
  const { worker, redis, wire, env } = shared;
  const apis: { config: Config; proc: HeraldProcess }[] = [];
  for (const config of order) {
    const limits = config === "limits on" ? "on" : "off";
    apis.push({ config, proc: await deps.startHerald({ ...env, ROLES: "api", RATE_LIMITS: limits }) });
  }
  const meter = new CostMeter(wire, new RedisStats(redis), [
    ...apis.map((api) => ({ name: `api, ${api.config}`, pid: api.proc.child.pid })),
    { name: "worker", pid: worker.child.pid },
    { name: deps.servers.ferretdb === undefined ? "MongoDB" : "FerretDB", pid: deps.servers.ferretdb },
    { name: "Redis", pid: deps.servers.redis },
    { name: "bench client", pid: process.pid },
  ]);
  const ctxFor = (apiUrl: string): LoadContext => ({
    apiUrl,
    redis,
    meter,
    backlog: () => jobBacklog(redis, deps.database).catch(() => undefined),
    log: deps.log,
  });
  const deadline = new Deadline(load.budgetMs / 2);
  const sides: { config: Config; ctx: LoadContext; cast: Cast; target: Target }[] = [];
  const half: LimiterHalf = { first: order[0] as Config, sides: [], counted: {} };
  let costs: Costs | undefined;
  let stopped: string | undefined;
  try {
    for (const [i, api] of apis.entries()) {
      const ctx = ctxFor(api.proc.url);
      const cast = await setUpCast(ctx, load, `${tag}_${half.first === "limits on" ? "a" : "b"}${i}`);
      sides.push({
        config: api.config,
        ctx,
        cast,
        target: { postId: cast.postId, socket: cast.socketB, timed: newTimed() },
      });
    }
    for (const s of sides) {
      const through = await barrier(s.ctx, s.cast, deadline.clip(load.barrierTimeoutMs));
      if (!through.ok) throw new Error(`the barrier on the api with ${s.config} did not get through`);
      await warmUp(s.cast, load, deadline, "warmup");
    }
    deps.log(
      `limiter latency, ${half.first} first: ${load.warmup} warm-up + ${load.latencyN} sequential comments on each api, taking turns …`,
    );
    const mark = await meter.start();
    for (let i = 0; i < load.latencyN; i += 1) {
      if (deadline.passed()) {
        stopped = `out of time after ${i} comments on each api (budget ${load.budgetMs / 2000} s per half)`;
        break;
      }
      for (const s of i % 2 === 0 ? sides : [...sides].reverse()) {
        await timeOne(s.cast, s.target, `limits ${i}`, load, deadline);
      }
    }
    const delivered = sides.reduce((sum, s) => sum + s.target.timed.e2e.length, 0);
    costs = await meter.stop(mark, delivered);
    for (const s of sides) {
      const count = await mutationCount(redis, deps.database, s.cast.a.id);
      if (count !== undefined) half.counted[s.config] = count;
    }
  } catch (err) {
    stopped = message(err);
  } finally {
    for (const s of sides) {
      await s.cast.socketB.close();
      s.cast.api.close();
    }
    // The next half's processes are fresh; these would only take their share of the machine.
    for (const api of apis) await api.proc.stop();
  }
  // A half that failed before its measured phase adds no costs.
  costs ??= await meter.stop(await meter.start(), 0);
  half.sides = sides.map((s) => side(s.config, s.target.timed, costs.cpuMs.get(`api, ${s.config}`)));
  return { result: half, timed: new Map(sides.map((s) => [s.config, s.target.timed])), costs, stopped };
}

function side(config: Config, timed: Timed, cpuMs: number | undefined): LimiterSide {
  const { e2e, http } = summarizeTimed(timed);
  return {
    config,
    sent: timed.sent,
    lost: timed.lost,
    httpErrors: timed.httpErrors,
    e2e,
    http,
    apiCpuMsPerComment: cpuMs === undefined || timed.sent === 0 ? undefined : cpuMs / timed.sent,
  };
}

function joinTimed(all: readonly Timed[]): Timed {
  const joined = newTimed();
  for (const t of all) {
    joined.e2e.push(...t.e2e);
    joined.http.push(...t.http);
    joined.sent += t.sent;
    joined.lost += t.lost;
    joined.httpErrors += t.httpErrors;
  }
  return joined;
}

/** The user's mutations in the current minute, as the limiter counts them (its key, as limits.ts names it). */
async function mutationCount(redis: Redis, database: string, userId: string): Promise<number | undefined> {
  const value = await redis.get(`herald:limit:${database}:mutation:${userId}`).catch(() => null);
  return value === null ? undefined : Number(value);
}

export function reportLimiterLatency(r: LimiterLatencyResult): string[] {
  const row = (name: string, s: LimiterSide) =>
    `  ${name.padEnd(28)}${cell(String(s.e2e?.count ?? 0), 5)}${cell(ms(s.e2e?.p50), 11)}${cell(ms(s.e2e?.p95), 11)}` +
    `${cell(ms(s.e2e?.p99), 11)}${cell(ms(s.e2e?.max), 11)}${cell(ms(s.http?.p50), 11)}${cell(ms(s.http?.p99), 11)}` +
    `${cell(ms(s.apiCpuMsPerComment), 17)}` +
    (s.lost > 0 || s.httpErrors > 0 ? `  lost=${s.lost} http errors=${s.httpErrors}` : "");
  const diff = (a: number, b: number) => `${a - b >= 0 ? "+" : ""}${(a - b).toFixed(2)} ms`;
  const lines = [
    "limiter cost on latency: the latency scenario's workload (user A comments on user B's post, one at a time;" +
      " POST -> B's NEW_COMMENT) on pairs of api processes sharing one worker and database, one with" +
      " RATE_LIMITS=on (limits out of reach: every mutation counted in Redis, none refused) and one with" +
      " RATE_LIMITS=off; comment by comment the two take turns, each going first every other time; two halves," +
      ` each with a fresh pair and ${r.perHalf} comments on each api, the second starting and setting up the other` +
      " configuration first (the first api of a pair is a little slower whatever its configuration)",
    `  ${"".padEnd(28)}${cell("n", 5)}${cell("e2e p50", 11)}${cell("e2e p95", 11)}${cell("e2e p99", 11)}` +
      `${cell("e2e max", 11)}${cell("HTTP p50", 11)}${cell("HTTP p99", 11)}${cell("api CPU/comment", 17)}`,
    ...r.pooled.map((s) => row(`${s.config}, both halves`, s)),
  ];
  const [on, off] = r.pooled;
  if (on?.e2e && off?.e2e && on.http && off.http) {
    lines.push(
      `  on / off: e2e p50 ${ratio(on.e2e.p50, off.e2e.p50)} (${diff(on.e2e.p50, off.e2e.p50)}),` +
        ` p99 ${ratio(on.e2e.p99, off.e2e.p99)} (${diff(on.e2e.p99, off.e2e.p99)});` +
        ` HTTP p50 ${ratio(on.http.p50, off.http.p50)} (${diff(on.http.p50, off.http.p50)}),` +
        ` p99 ${ratio(on.http.p99, off.http.p99)} (${diff(on.http.p99, off.http.p99)})` +
        (on.apiCpuMsPerComment !== undefined && off.apiCpuMsPerComment !== undefined
          ? `; api CPU per comment ${diff(on.apiCpuMsPerComment, off.apiCpuMsPerComment)}`
          : ""),
    );
  }
  for (const [i, half] of r.halves.entries()) {
    lines.push(
      ...half.sides.map((s) => row(`half ${i + 1}, ${s.config}${s.config === half.first ? " (1st)" : ""}`, s)),
    );
  }
  lines.push(
    "  A's mutations in the limiter's Redis counter after each half (current minute): " +
      r.halves.map((h, i) => CONFIGS.map((c) => `half ${i + 1} ${c} ${h.counted[c] ?? "none"}`).join(", ")).join("; "),
  );
  if (r.stopped) lines.push(`  stopped early: ${r.stopped}`);
  lines.push(...reportCosts(r.costs, "comment"));
  return lines;
}

// --- The login flood --------------------------------------------------------------------------

export interface FloodOptions {
  /** Wrong-password sign-ins in flight, one level after the other. */
  levels: readonly number[];
  /** The baselines and each level's refusing phase. */
  seconds: number;
  /** Accounts attacked per level. */
  accounts: number;
  /** Client addresses the attack comes from, per level. */
  addresses: number;
  /** The legitimate client's requests per second. */
  legitRate: number;
  /** The longest a level's hashing phase, then its draining phase, may go on before the next starts anyway. */
  hashingBudgetMs: number;
  drainingBudgetMs: number;
  httpTimeoutMs: number;
}

/** RFC 2544's block for benchmarks: public-looking addresses no one else uses, 131,072 of them. */
export const FLOOD_ADDRESS_SPACE = 2 ** 17;

function benchAddress(index: number): string {
  return `198.${18 + (index >> 16)}.${(index >> 8) & 255}.${index & 255}`;
}

type PhaseKind = "baseline" | FloodPhaseName;

export interface FloodPhase {
  kind: PhaseKind;
  /** Attempts in flight; undefined for a baseline. */
  level: number | undefined;
  /** A hashing or draining phase cut short by its budget rather than ended on its own. */
  forced: boolean;
  wallMs: number;
  tally: FloodTally | undefined;
  costs: Costs;
  legit: Summary | undefined;
  legitFailures: number;
  /** How late the legitimate client sent, at p99: its own event loop's share of its latency. */
  legitLagP99: number | undefined;
}

export interface FloodResult {
  options: FloodOptions;
  phases: FloodPhase[];
  stopped: string | undefined;
}

interface LegitSample {
  sentAt: number;
  ms: number;
  lag: number;
}

/**
 * The legitimate user: `me` at a fixed rate whatever the answers do (an open loop, so that a slow
 * answer does not also delay the next request's start), each timed from its sending.
 */
class LegitClient {
  readonly samples: LegitSample[] = [];
  readonly failures: number[] = [];
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64, timeout: 4_000 });
  private readonly inFlight = new Set<Promise<void>>();
  private readonly body = JSON.stringify({ query: queryText(MeDocument) });
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly rate: number,
    private readonly timeoutMs: number,
  ) {}

  start(): void {
    const interval = 1000 / this.rate;
    const start = performance.now();
    let k = 0;
    const tick = () => {
      if (this.stopped) return;
      this.send(performance.now() - (start + k * interval));
      k += 1;
      this.timer = setTimeout(tick, Math.max(0, start + k * interval - performance.now()));
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.all(this.inFlight);
    this.agent.destroy();
  }

  between(from: number, to: number): Pick<FloodPhase, "legit" | "legitFailures" | "legitLagP99"> {
    const inside = this.samples.filter((s) => s.sentAt >= from && s.sentAt < to);
    return {
      legit: inside.length > 0 ? summarize(inside.map((s) => s.ms)) : undefined,
      legitFailures: this.failures.filter((at) => at >= from && at < to).length,
      legitLagP99: inside.length > 0 ? summarize(inside.map((s) => s.lag)).p99 : undefined,
    };
  }

  private send(lag: number): void {
    const sentAt = now();
    const request = within(
      postGraphql(`${this.url}/graphql`, this.agent, this.body, bearer(this.token)),
      this.timeoutMs,
      "me",
    ).then(
      ({ result }) => {
        const me = (result.data as { me?: { id?: string } | null } | null | undefined)?.me;
        if (me?.id) this.samples.push({ sentAt, ms: now() - sentAt, lag });
        else this.failures.push(sentAt);
      },
      () => void this.failures.push(sentAt),
    );
    this.inFlight.add(request);
    void request.finally(() => this.inFlight.delete(request));
  }
}

export async function measureLoginFlood(options: FloodOptions, deps: LimitsDeps, tag: string): Promise<FloodResult> {
  const { log } = deps;
  // Herald's own defaults for every sign-in limit, whatever baseEnv sets to keep the tests clear of
  // them; the others stay out of reach, so that setting up is not refused. The attacker's addresses
  // arrive as X-Forwarded-For from a proxy on this machine, which only a trusted loopback admits.
  const env: Record<string, string> = {
    ...Object.fromEntries(Object.entries(baseEnv(deps.database)).filter(([name]) => !name.startsWith("LIMIT_LOGIN"))),
    TRUST_PROXY: "loopback",
  };
  const worker = await deps.startHerald({ ...env, ROLES: "worker" });
  const api = await deps.startHerald({ ...env, ROLES: "api" });
  const redis = new Redis(testRedisUrl());
  deps.onCleanup("bench Redis connection", () => redis.quit());
  await redis.ping();
  const apiPid = api.child.pid;
  const meter = new CostMeter(undefined, new RedisStats(redis), [
    { name: "api", pid: apiPid },
    { name: "api main thread", pid: apiPid, tid: apiPid },
    { name: "worker", pid: worker.child.pid },
    { name: deps.servers.ferretdb === undefined ? "MongoDB" : "FerretDB", pid: deps.servers.ferretdb },
    { name: "Redis", pid: deps.servers.redis },
    // The legitimate client and the attacker's thread: they share the cores with Herald.
    { name: "bench", pid: process.pid },
  ]);

  const password = "correct horse battery";
  const register = async (email: string) =>
    (await gqlOk(api.url, RegisterDocument, { input: { email, password, displayName: "Bench" } })).register;
  const legitUser = await register(`legit.${tag}@bench.example`);
  const victims: string[][] = [];
  for (const [li] of options.levels.entries()) {
    const emails = Array.from({ length: options.accounts }, (_, k) => `victim${li}.${k}.${tag}@bench.example`);
    for (const email of emails) await register(email);
    victims.push(emails);
  }

  const legit = new LegitClient(api.url, legitUser.token, options.legitRate, options.httpTimeoutMs);
  const result: FloodResult = { options, phases: [], stopped: undefined };
  const phase = (
    kind: PhaseKind,
    level: number | undefined,
    from: number,
    to: number,
    costs: Costs,
    tally?: FloodTally,
    forced = false,
  ): FloodPhase => ({ kind, level, forced, wallMs: to - from, tally, costs, ...legit.between(from, to) });
  const baseline = async () => {
    const mark = await meter.start();
    const from = now();
    await delay(options.seconds * 1000);
    const to = now();
    result.phases.push(phase("baseline", undefined, from, to, await meter.stop(mark, 0)));
  };

  legit.start();
  try {
    // The first requests pay for JIT and the token's first lookup: not the baseline's.
    await delay(2000);
    log(`login flood: baseline, ${options.seconds} s of \`me\` at ${options.legitRate}/s …`);
    await baseline();
    for (const [li, level] of options.levels.entries()) {
      const addresses = Array.from({ length: options.addresses }, (_, k) => benchAddress(li * options.addresses + k));
      log(`login flood: ${level} wrong-password sign-ins in flight against ${options.accounts} accounts …`);
      const data: FloodThreadData = {
        url: api.url,
        query: queryText(LoginDocument),
        concurrency: level,
        accounts: victims[li] ?? [],
        addresses,
        password: "not the password",
        timeoutMs: options.httpTimeoutMs,
      };
      result.phases.push(...(await flood(data, options, meter, phase, log)));
      // The next level starts from a quiet machine: what this one left queued is done by then.
      await delay(1000);
    }
    log(`login flood: baseline again, ${options.seconds} s …`);
    await baseline();
  } catch (err) {
    result.stopped = message(err);
  } finally {
    await legit.stop();
  }
  return result;
}

type PhaseOf = (
  kind: PhaseKind,
  level: number,
  from: number,
  to: number,
  costs: Costs,
  tally?: FloodTally,
  forced?: boolean,
) => FloodPhase;

/** One level: the attacker's thread, through its three phases. */
async function flood(
  data: FloodThreadData,
  options: FloodOptions,
  meter: CostMeter,
  phase: PhaseOf,
  log: (message: string) => void,
): Promise<FloodPhase[]> {
  let mark = await meter.start();
  const from = now();
  const thread = new Worker(new URL("./login-flood-thread.js", import.meta.url), { workerData: data });
  const post = (m: FloodFromMain) => thread.postMessage(m);
  const failed = new Promise<never>((_, reject) => {
    thread.once("error", reject);
    thread.once("exit", (code) => reject(new Error(`the attacker's thread exited with ${code}`)));
  });
  const started = new Map<FloodPhaseName, Promise<{ at: number; forced: boolean }>>();
  const done = new Promise<Partial<Record<FloodPhaseName, FloodTally>>>((resolve) => {
    const waiters = new Map<FloodPhaseName, (m: { at: number; forced: boolean }) => void>();
    for (const name of ["draining", "refusing"] as const) {
      started.set(name, new Promise((started) => waiters.set(name, started)));
    }
    thread.on("message", (m: FloodToMain) => {
      if (m.type === "phase") waiters.get(m.phase)?.(m);
      else resolve(m.tallies);
    });
  });
  /** The costs since the previous call: each phase's, as the next one starts. */
  const costsSoFar = async () => {
    const costs = await meter.stop(mark, 0);
    mark = await meter.start();
    return costs;
  };
  /** The phase's start, or after `ms` the thread told to move on to it. */
  const until = async (name: FloodPhaseName, ms: number) => {
    const timer = new AbortController();
    delay(ms, undefined, { signal: timer.signal }).then(
      () => post({ type: "next phase" }),
      () => undefined,
    );
    try {
      const begun = await Promise.race([started.get(name) as Promise<{ at: number; forced: boolean }>, failed]);
      if (begun.forced) log(`login flood: ${name} after ${ms / 1000} s, cut short`);
      return begun;
    } finally {
      timer.abort();
    }
  };
  try {
    const draining = await until("draining", options.hashingBudgetMs);
    const hashingCosts = await costsSoFar();
    const refusing = await until("refusing", options.drainingBudgetMs);
    const drainingCosts = await costsSoFar();
    await delay(options.seconds * 1000);
    const to = now();
    post({ type: "stop" });
    const refusingCosts = await costsSoFar();
    const tallies = await Promise.race([done, failed]);
    const level = data.concurrency;
    return [
      phase("hashing", level, from, draining.at, hashingCosts, tallies.hashing, draining.forced),
      phase("draining", level, draining.at, refusing.at, drainingCosts, tallies.draining, refusing.forced),
      phase("refusing", level, refusing.at, to, refusingCosts, tallies.refusing),
    ];
  } finally {
    void failed.catch(() => undefined);
    await thread.terminate();
  }
}

const KNOWN_ANSWERS = new Set(["checked", "waiting", "address"]);

function answered(tally: FloodTally | undefined): number {
  return tally ? Object.values(tally.answers).reduce((a, b) => a + b, 0) : 0;
}

function attemptsPerS(tally: FloodTally | undefined): number | undefined {
  if (!tally || tally.endedAt <= tally.startedAt) return undefined;
  return answered(tally) / ((tally.endedAt - tally.startedAt) / 1000);
}

function phaseName(p: FloodPhase): string {
  return p.level === undefined ? "baseline" : `${p.level} in flight, ${p.kind}${p.forced ? " (cut)" : ""}`;
}

export function reportLoginFlood(r: FloodResult): string[] {
  const o = r.options;
  const baselines = r.phases.filter((p) => p.kind === "baseline");
  const base = baselines[0]?.legit;
  const limit = base ? 2 * base.p99 : undefined;
  const lines = [
    "login flood: one api + one worker with Herald's default sign-in limits (a doubling wait after 5 wrong passwords" +
      " per account and address, and after 50 per account from every address; 100 sign-ins per address per 15" +
      " minutes); TRUST_PROXY=loopback",
    `  legitimate client: \`me\` ${o.legitRate} times a second from 127.0.0.1, an open loop, each timed from sending` +
      ` to the answer; attacker: a thread of the bench keeping N wrong-password \`login\`s in flight, against` +
      ` ${o.accounts} accounts from ${o.addresses} addresses (X-Forwarded-For) per level, fresh ones each level`,
    `  each level is "hashing" until every account has been refused for its wait (cut after` +
      ` ${o.hashingBudgetMs / 1000} s), "draining" until the attempts let through before then have been answered` +
      ` (cut after ${o.drainingBudgetMs / 1000} s), then "refusing" for ${o.seconds} s; checked = UNAUTHENTICATED (the password was hashed); waiting / address` +
      " = RATE_LIMITED by the wrong-password wait / by the address's sign-in count; attempt p50 = the attacker's" +
      " wait for an answer; lag p99 = how late the legitimate client sent (its own share of the machine)",
    `  ${"phase".padEnd(26)}${cell("s", 6)}${cell("attempts/s", 11)}${cell("checked", 8)}${cell("waiting", 8)}` +
      `${cell("address", 8)}${cell("other", 6)}${cell("hashes/s", 9)}${cell("attempt p50", 12)}  |` +
      `${cell("legit p50", 10)}${cell("legit p95", 10)}${cell("legit p99", 10)}${cell("× base", 8)}` +
      `${cell("errors", 7)}${cell("lag p99", 9)}`,
  ];
  for (const p of r.phases) {
    const t = p.tally;
    const other = t ? answered(t) - [...KNOWN_ANSWERS].reduce((sum, k) => sum + (t.answers[k] ?? 0), 0) : undefined;
    const all = t ? Object.values(t.ms).flat() : [];
    const rate = attemptsPerS(t);
    const seconds = t ? (t.endedAt - t.startedAt) / 1000 : 0;
    const hashes = seconds > 0 ? ((t?.answers["checked"] ?? 0) / seconds).toFixed(1) : "-";
    lines.push(
      `  ${phaseName(p).padEnd(26)}${cell((p.wallMs / 1000).toFixed(1), 6)}` +
        `${cell(rate === undefined ? "-" : rate.toFixed(0), 11)}` +
        `${cell(t ? String(t.answers["checked"] ?? 0) : "-", 8)}${cell(t ? String(t.answers["waiting"] ?? 0) : "-", 8)}` +
        `${cell(t ? String(t.answers["address"] ?? 0) : "-", 8)}${cell(other === undefined ? "-" : String(other), 6)}` +
        `${cell(hashes, 9)}${cell(all.length > 0 ? ms(summarize(all).p50) : "-", 12)}  |` +
        `${cell(ms(p.legit?.p50), 10)}${cell(ms(p.legit?.p95), 10)}${cell(ms(p.legit?.p99), 10)}` +
        `${cell(p.legit && base ? ratio(p.legit.p99, base.p99) : "-", 8)}${cell(String(p.legitFailures), 7)}` +
        `${cell(ms(p.legitLagP99), 9)}`,
    );
  }
  const others = new Map<string, number>();
  for (const p of r.phases) {
    for (const [kind, n] of Object.entries(p.tally?.answers ?? {})) {
      if (!KNOWN_ANSWERS.has(kind)) others.set(kind, (others.get(kind) ?? 0) + n);
    }
  }
  if (others.size > 0) lines.push(`  other answers: ${[...others].map(([k, n]) => `${k} ${n}`).join(", ")}`);

  const cpuNames = ["api", "api main thread", "worker", "FerretDB", "MongoDB", "Redis", "bench"];
  const shown = cpuNames.filter((name) => r.phases.some((p) => p.costs.cpuMs.has(name)));
  lines.push(
    "  CPU in cores (CPU time / wall time; the api's other threads are its password hashing, GC and I/O)," +
      " and Redis commands per attempt answered:",
    `  ${"phase".padEnd(26)}${shown.map((name) => cell(name === "api main thread" ? "api main" : name, 10)).join("")}` +
      `${cell("api other", 10)}  Redis per attempt`,
  );
  for (const p of r.phases) {
    const cores = (name: string) => {
      const cpu = p.costs.cpuMs.get(name);
      return cpu === undefined ? undefined : cpu / p.costs.wallMs;
    };
    const api = cores("api");
    const main = cores("api main thread");
    const attempts = answered(p.tally);
    const redis = [...p.costs.redis].sort((a, b) => b[1] - a[1]);
    const redisTotal = redis.reduce((sum, [, n]) => sum + n, 0);
    lines.push(
      `  ${phaseName(p).padEnd(26)}` +
        shown.map((name) => cell(cores(name)?.toFixed(2) ?? "n/a", 10)).join("") +
        cell(api === undefined || main === undefined ? "n/a" : (api - main).toFixed(2), 10) +
        (attempts > 0
          ? `  ${(redisTotal / attempts).toFixed(1)} (${redis
              .slice(0, 5)
              .map(([name, n]) => `${name} ${(n / attempts).toFixed(1)}`)
              .join(", ")})`
          : `  - (${redisTotal} in all)`),
    );
  }

  const levels = [...new Set(r.phases.flatMap((p) => (p.level === undefined ? [] : [p.level])))];
  const checkedAt = (level: number) =>
    r.phases.filter((p) => p.level === level).reduce((sum, p) => sum + (p.tally?.answers["checked"] ?? 0), 0);
  lines.push(
    "  attempts that reached the password hash, per level: " +
      levels
        .map((level) => {
          const n = checkedAt(level);
          return `${level} in flight ${n} (${(n / o.accounts).toFixed(1)} per account)`;
        })
        .join(", "),
  );
  if (limit !== undefined && base) {
    lines.push(
      `  criterion: the legitimate p99 at most 2× the first baseline's (2 × ${ms(base.p99)} = ${ms(limit)});` +
        ` the second baseline, after the attack, shows how far the machine drifted meanwhile`,
    );
    // Draining is a transient, often a fraction of a second: its rate says little.
    for (const kind of ["refusing", "hashing"] as const) {
      const within = r.phases.filter((p) => p.kind === kind && p.legit && p.legit.p99 <= limit);
      const best = within.reduce<FloodPhase | undefined>(
        (top, p) => ((attemptsPerS(p.tally) ?? 0) > (attemptsPerS(top?.tally) ?? -1) ? p : top),
        undefined,
      );
      const beyond = r.phases.filter((p) => p.kind === kind && p.legit && p.legit.p99 > limit).map((p) => p.level);
      lines.push(
        `  highest attack rate within it, ${kind}: ` +
          (best
            ? `${attemptsPerS(best.tally)?.toFixed(0)} attempts/s (${best.level} in flight)`
            : "none of the levels") +
          (beyond.length > 0 ? `; past it at ${beyond.join(", ")} in flight` : ""),
      );
    }
  }
  if (r.stopped) lines.push(`  stopped early: ${r.stopped}`);
  return lines;
}
