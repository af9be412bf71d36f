// The fan-out of the Django-workload scenarios (see load.ts): new users signed up through the API
// follow one author, each holds its own socket, and the author posts once per round. Unlike the
// fanout10k scenario (fanout.ts), nothing is written straight into the database: sign-up,
// WELCOME and NEW_FOLLOWER work is part of the setup, and the barrier keeps it out of the rounds.
import { addCosts, type Costs } from "./costs.js";
import type { Backlog } from "./job-backlog.js";
import { allListening, EventSocket, type LoadApi, type LoadUser } from "./load-client.js";
import {
  barrier,
  Deadline,
  message,
  setUpCast,
  type BarrierResult,
  type LoadContext,
  type LoadOptions,
} from "./load.js";
import { percentile } from "./stats.js";

export interface FanoutRound {
  barrier: BarrierResult;
  received: number;
  lost: number;
  httpMs: number | undefined;
  firstMs: number | undefined;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  /** When the last follower had its event. */
  allMs: number | undefined;
  costs: Costs | undefined;
  /** Read when followers went without their event: what it was stuck behind. */
  backlogAtEnd: Backlog | undefined;
}

export interface LoadFanoutResult {
  followers: number;
  registered: number;
  followed: number;
  connected: number;
  /** Sign-ups, follows and sockets, until every subscription listened; then each step alone. */
  setupMs: number | undefined;
  registerMs: number | undefined;
  followMs: number | undefined;
  connectMs: number | undefined;
  rounds: FanoutRound[];
  /** The barrier that timed out before a round, which ends the scenario as it ends the reference benchmark. */
  failedBarrier: BarrierResult | undefined;
  /** What Herald did while that barrier waited, per job of the backlog finished meanwhile. */
  drainCosts: Costs | undefined;
  medianAllMs: number | undefined;
  /** Every round's measured phase together. */
  costs: Costs | undefined;
  stopped: string | undefined;
}

/** Runs `task` on every item with at most `concurrency` at a time; failures become undefined. */
async function bounded<T, R>(items: readonly T[], concurrency: number, task: (item: T) => Promise<R>) {
  const results: (R | undefined)[] = new Array<R | undefined>(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next;
      next += 1;
      results[i] = await task(items[i] as T).catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, run));
  return results;
}

export async function measureLoadFanout(
  ctx: LoadContext,
  options: LoadOptions,
  tag: string,
): Promise<LoadFanoutResult> {
  const deadline = new Deadline(options.budgetMs);
  const setupDeadline = new Deadline(options.setupBudgetMs);
  // Sign-ups may not take the whole setup budget: a user who signed up but does not follow is no
  // follower, so the follows keep a third of it.
  const signUpDeadline = new Deadline((options.setupBudgetMs * 2) / 3);
  const result: LoadFanoutResult = {
    followers: options.fanoutN,
    registered: 0,
    followed: 0,
    connected: 0,
    setupMs: undefined,
    registerMs: undefined,
    followMs: undefined,
    connectMs: undefined,
    rounds: [],
    failedBarrier: undefined,
    drainCosts: undefined,
    medianAllMs: undefined,
    costs: undefined,
    stopped: undefined,
  };
  const cast = await setUpCast(ctx, options, tag);
  const sockets: EventSocket[] = [];
  try {
    const setupStarted = performance.now();
    ctx.log(`fan-out: signing up ${options.fanoutN} followers, ${options.setupConcurrency} at a time …`);
    const author = await cast.api.register(`${tag}_star`);
    const indexes = Array.from({ length: options.fanoutN }, (_, i) => i);
    // Past the setup's deadline, the sign-ups and follows not yet sent fail at once; the posts go
    // to the followers that are ready, and the report says how many that is.
    const guarded = <R>(deadline: Deadline, task: () => Promise<R>) =>
      deadline.passed() ? Promise.reject(new Error("out of time")) : task();
    const fans = (
      await bounded(indexes, options.setupConcurrency, (i) =>
        guarded(signUpDeadline, () => cast.api.register(`${tag}_fan${i}`)),
      )
    ).filter((u): u is LoadUser => u !== undefined);
    result.registered = fans.length;
    result.registerMs = performance.now() - setupStarted;
    ctx.log(`fan-out: ${fans.length} signed up; following …`);
    const followStarted = performance.now();
    const follows = await bounded(fans, options.setupConcurrency, (fan) =>
      guarded(setupDeadline, () => cast.api.follow(fan, author).then(() => fan)),
    );
    const followers = follows.filter((u): u is LoadUser => u !== undefined);
    result.followed = followers.length;
    result.followMs = performance.now() - followStarted;
    ctx.log(`fan-out: ${followers.length} follow; opening their sockets …`);
    const connectStarted = performance.now();
    // Every follower gets its socket, budget or not: it takes seconds, and without them nothing is measured.
    const opened = await bounded(followers, options.connectConcurrency, (fan) =>
      EventSocket.open(ctx.apiUrl, fan, options.httpTimeoutMs),
    );
    sockets.push(...opened.filter((s): s is EventSocket => s !== undefined));
    result.connected = sockets.length;
    await allListening(
      ctx.redis,
      sockets.map((s) => s.user.id),
      options.httpTimeoutMs,
    );
    result.connectMs = performance.now() - connectStarted;
    result.setupMs = performance.now() - setupStarted;
    if (sockets.length === 0) throw new Error("no follower was signed up, following and connected");

    if (result.followed < options.fanoutN) {
      ctx.log(
        `fan-out: setup out of time after ${(result.setupMs / 1000).toFixed(0)} s; going on with ${sockets.length}`,
      );
    }
    for (let r = 0; r < options.fanoutRounds; r += 1) {
      if (deadline.passed()) {
        result.stopped = `out of time before post ${r + 1} (budget ${options.budgetMs / 1000} s)`;
        break;
      }
      // Read first: under a stuck backlog the count itself takes seconds, which are not the wait's.
      const backlog = await ctx.backlog();
      const drainMark = await ctx.meter.start();
      const roundBarrier = await barrier(ctx, cast, options.barrierTimeoutMs);
      if (!roundBarrier.ok) {
        // Past a stuck barrier a round would time the backlog ahead of it, not the fan-out.
        result.failedBarrier = roundBarrier;
        const left = roundBarrier.backlog;
        const finished = backlog && left ? backlog.queued + backlog.running - (left.queued + left.running) : 0;
        result.drainCosts = await ctx.meter.stop(drainMark, Math.max(0, finished));
        result.stopped = `the barrier before post ${r + 1} did not get through; no more posts`;
        break;
      }
      ctx.log(`fan-out: post ${r + 1} of ${options.fanoutRounds} …`);
      for (const s of sockets) s.drain();
      const round = await measureRound(ctx, options, cast.api, sockets, author, r);
      result.rounds.push({ ...round, barrier: roundBarrier });
      if (round.lost > 0) {
        result.stopped = `post ${r + 1} did not reach every follower within ${options.fanoutTimeoutMs / 1000} s; no more posts`;
        break;
      }
    }
  } catch (err) {
    result.stopped = message(err);
  } finally {
    await Promise.all(sockets.map((s) => s.close().catch(() => undefined)));
    await cast.socketB.close();
    cast.api.close();
  }
  const alls = result.rounds.map((r) => r.allMs).filter((ms): ms is number => ms !== undefined);
  if (alls.length > 0)
    result.medianAllMs = percentile(
      [...alls].sort((a, b) => a - b),
      50,
    );
  for (const round of result.rounds) {
    if (round.costs) result.costs = result.costs ? addCosts(result.costs, round.costs) : round.costs;
  }
  return result;
}

async function measureRound(
  ctx: LoadContext,
  options: LoadOptions,
  api: LoadApi,
  sockets: readonly EventSocket[],
  author: LoadUser,
  round: number,
): Promise<Omit<FanoutRound, "barrier">> {
  const title = `fan-out round ${round}`;
  const mark = await ctx.meter.start();
  const started = performance.now();
  // Every socket waits from the moment the post is sent: an event may beat the HTTP answer.
  const arrivals = Promise.all(sockets.map((s) => s.next("NEW_POST", options.fanoutTimeoutMs, title)));
  let httpMs: number | undefined;
  try {
    // The body is the reference benchmark's; the NEW_POST event carries the title as its body.
    await api.createPost(author, title, "hello");
    httpMs = performance.now() - started;
  } catch (err) {
    ctx.log(`fan-out: createPost failed: ${message(err)}`);
  }
  const got = (await arrivals).filter((a) => a !== undefined).map((a) => a.at - started);
  const costs = await ctx.meter.stop(mark, got.length);
  const backlogAtEnd = got.length < sockets.length ? await ctx.backlog() : undefined;
  const sorted = got.sort((a, b) => a - b);
  return {
    received: sorted.length,
    lost: sockets.length - sorted.length,
    httpMs,
    firstMs: sorted[0],
    p50Ms: sorted.length > 0 ? percentile(sorted, 50) : undefined,
    p99Ms: sorted.length > 0 ? percentile(sorted, 99) : undefined,
    allMs: sorted.at(-1),
    costs,
    backlogAtEnd,
  };
}
