// The Django-workload scenarios of `npm run bench`: the workload of the benchmark that comes with
// the Django + Channels + Celery reference implementation, through Herald's public GraphQL API.
// User A comments on user B's post while B holds a notificationAdded subscription:
//   latency     one comment at a time, 20 warm-up then N counted; POST sent -> B's NEW_COMMENT event;
//               then again on the same stack with B following the inbox through inboxEvents, so
//               that every change to it is also logged in B's stream: POST sent -> the ADDED event
//   throughput  N comments, `concurrency` in flight; first POST -> the Nth event at B's socket
//   fan-out     (load-fanout.ts) M new users follow one author, each on its own socket; the author
//               posts, `rounds` times; POST -> each follower's NEW_POST event
// Before each measurement a barrier comment goes through the whole pipeline, so one phase's
// backlog (WELCOME jobs, NEW_FOLLOWER jobs) is not measured as the next phase's latency. Every wait
// has a deadline: a scenario that stalls reports what it measured and why it stopped.
import type { Redis } from "ioredis";
import type { Costs, CostMeter } from "./costs.js";
import type { Backlog } from "./job-backlog.js";
import {
  allListening,
  EventSocket,
  InboxEventSocket,
  LoadApi,
  type EventSource,
  type LoadUser,
} from "./load-client.js";
import { summarize, type Summary } from "./stats.js";

export interface LoadOptions {
  latencyN: number;
  warmup: number;
  throughputN: number;
  concurrency: number;
  fanoutN: number;
  fanoutRounds: number;
  /** Sign-ups and follows in flight while setting up the fan-out. */
  setupConcurrency: number;
  /** Sockets opening at a time. */
  connectConcurrency: number;
  /** The longest wait for one expected event. */
  eventTimeoutMs: number;
  /** The longest wait for a round's fan-out to reach every follower. */
  fanoutTimeoutMs: number;
  barrierTimeoutMs: number;
  /** The longest wait for one HTTP answer. */
  httpTimeoutMs: number;
  /**
   * Latency: everything each half of the scenario may take, setup included. Throughput: the posting (the wait
   * for the last events comes on top). Fan-out: no post starts after it (each post's own waits
   * are bounded). Past it, a scenario reports what it has.
   */
  budgetMs: number;
  /** Fan-out only: sign-ups, follows and sockets stop being started after this. */
  setupBudgetMs: number;
}

/** What a scenario runs against: one api and one worker process on a fresh database. */
export interface LoadContext {
  apiUrl: string;
  /** The bench's own Redis connection, to see subscriptions arrive; not counted as Herald's. */
  redis: Redis;
  meter: CostMeter;
  backlog(): Promise<Backlog | undefined>;
  log(message: string): void;
}

export interface BarrierResult {
  ok: boolean;
  ms: number;
  /** Read when the barrier timed out: what it was stuck behind. */
  backlog?: Backlog | undefined;
}

/** A and B, B's post and B's socket: the cast of every scenario. */
export interface Cast {
  api: LoadApi;
  a: LoadUser;
  b: LoadUser;
  postId: string;
  /** B's socket: notificationAdded, or inboxEvents in the latency scenario's second half. */
  socketB: EventSource;
  barriers: number;
}

export class Deadline {
  private readonly end: number;

  constructor(ms: number) {
    this.end = performance.now() + ms;
  }

  left(): number {
    return Math.max(0, this.end - performance.now());
  }

  passed(): boolean {
    return this.left() === 0;
  }

  /** `ms`, or less when the deadline comes first. */
  clip(ms: number): number {
    return Math.min(ms, this.left());
  }
}

export async function setUpCast(ctx: LoadContext, options: LoadOptions, tag: string): Promise<Cast> {
  const api = new LoadApi(ctx.apiUrl, tag, options.httpTimeoutMs);
  const a = await api.register(`${tag}_A`);
  const b = await api.register(`${tag}_B`);
  const postId = await api.createPost(b, "B's post", "...");
  const socketB = await EventSocket.open(ctx.apiUrl, b, options.httpTimeoutMs);
  await allListening(ctx.redis, [b.id], options.httpTimeoutMs);
  return { api, a, b, postId, socketB, barriers: 0 };
}

/** One comment through the whole pipeline, and its event awaited: what was queued before is done. */
export async function barrier(ctx: LoadContext, cast: Cast, timeoutMs: number): Promise<BarrierResult> {
  cast.barriers += 1;
  const body = `barrier ${cast.barriers}`;
  const started = performance.now();
  cast.socketB.drain();
  const deadline = new Deadline(timeoutMs);
  try {
    await cast.api.comment(cast.a, cast.postId, body);
  } catch (err) {
    ctx.log(`barrier: ${message(err)}`);
  }
  const event = await cast.socketB.next("NEW_COMMENT", deadline.left(), body);
  const ms = performance.now() - started;
  if (!event) {
    const backlog = await ctx.backlog();
    ctx.log(`barrier: no event within ${(timeoutMs / 1000).toFixed(0)} s (${describeBacklog(backlog)})`);
    return { ok: false, ms, backlog };
  }
  // As the reference benchmark does: a moment for stragglers, which are then thrown away.
  await new Promise((resolve) => setTimeout(resolve, 500));
  cast.socketB.drain();
  return { ok: true, ms };
}

export function describeBacklog(backlog: Backlog | undefined): string {
  return backlog ? `jobs: ${backlog.queued} queued, ${backlog.running} locked by a worker` : "job backlog unknown";
}

export interface LatencyResult {
  barrier: BarrierResult;
  /** Comments sent in the counted phase; fewer than asked when the scenario stopped early. */
  sent: number;
  asked: number;
  lost: number;
  httpErrors: number;
  e2e: Summary | undefined;
  http: Summary | undefined;
  /** p50 of the first and last tenth of the samples: a trend says cost grows with the data. */
  trend: [number, number] | undefined;
  costs: Costs | undefined;
  /** Read when events went missing: what they were stuck behind. */
  backlogAtEnd: Backlog | undefined;
  stopped: string | undefined;
  /** The second half: B follows the inbox through inboxEvents; undefined when the first half did not get that far. */
  stream?: StreamLatencyResult | undefined;
}

/** The same measurement with B's stream started and followed: each comment is also logged there. */
export interface StreamLatencyResult extends Omit<LatencyResult, "stream"> {
  /** How long notifications.streamCursor took to answer: the request that starts B's stream. */
  positionMs: number | undefined;
  /** Notifications whose ADDED event came twice, and RESET events: a client following the stream sees neither. */
  duplicated: number;
  resets: number;
  /**
   * Comments on C's post, taking turns with those on B's: C follows notificationAdded and never
   * asked for a position, so nothing of C's is logged. The same moments as B's samples, so a
   * difference between the two is not the machine's drift between the halves.
   */
  control: Pick<LatencyResult, "e2e" | "http" | "trend" | "lost" | "httpErrors" | "sent"> | undefined;
}

/** The samples of one run of sequential comments, each timed from its POST to its event at the author's socket. */
export interface Timed {
  e2e: number[];
  http: number[];
  sent: number;
  lost: number;
  httpErrors: number;
  stopped: string | undefined;
}

/** Where a timed comment goes: the post, and the socket on which its author's event arrives. */
export interface Target {
  postId: string;
  socket: EventSource;
  timed: Timed;
}

export function newTimed(): Timed {
  return { e2e: [], http: [], sent: 0, lost: 0, httpErrors: 0, stopped: undefined };
}

/** One comment by A on the target's post, timed from its POST to its author's event. */
export async function timeOne(
  cast: Cast,
  target: Target,
  body: string,
  options: LoadOptions,
  deadline: Deadline,
): Promise<void> {
  const { timed } = target;
  const sentAt = performance.now();
  timed.sent += 1;
  try {
    await cast.api.comment(cast.a, target.postId, body);
  } catch {
    timed.httpErrors += 1;
  }
  const answeredAt = performance.now();
  const event = await target.socket.next("NEW_COMMENT", deadline.clip(options.eventTimeoutMs), body);
  if (!event) {
    timed.lost += 1;
    return;
  }
  timed.e2e.push(event.at - sentAt);
  timed.http.push(answeredAt - sentAt);
}

async function timeComments(cast: Cast, options: LoadOptions, deadline: Deadline, label: string): Promise<Timed> {
  const target: Target = { postId: cast.postId, socket: cast.socketB, timed: newTimed() };
  for (let i = 0; i < options.latencyN; i += 1) {
    if (deadline.passed()) {
      target.timed.stopped = outOfTime(target.timed.sent, options);
      break;
    }
    await timeOne(cast, target, `${label} ${i}`, options, deadline);
  }
  return target.timed;
}

function outOfTime(sent: number, options: LoadOptions): string {
  return `out of time after ${sent} comments (budget ${options.budgetMs / 1000} s)`;
}

export async function warmUp(cast: Cast, options: LoadOptions, deadline: Deadline, label: string): Promise<void> {
  for (let i = 0; i < options.warmup && !deadline.passed(); i += 1) {
    await cast.api.comment(cast.a, cast.postId, `${label} ${i}`).catch(() => undefined);
    await cast.socketB.next("NEW_COMMENT", deadline.clip(options.eventTimeoutMs), `${label} ${i}`);
  }
  cast.socketB.drain();
}

export function summarizeTimed(timed: Timed): Pick<LatencyResult, "e2e" | "http" | "trend"> {
  if (timed.e2e.length === 0) return { e2e: undefined, http: undefined, trend: undefined };
  const tenth = Math.max(1, Math.floor(timed.e2e.length / 10));
  return {
    e2e: summarize(timed.e2e),
    http: summarize(timed.http),
    trend: [summarize(timed.e2e.slice(0, tenth)).p50, summarize(timed.e2e.slice(-tenth)).p50],
  };
}

/** A latency result before anything was measured. */
function noLatencyYet(asked: number): LatencyResult {
  return {
    barrier: { ok: false, ms: 0 },
    sent: 0,
    asked,
    lost: 0,
    httpErrors: 0,
    e2e: undefined,
    http: undefined,
    trend: undefined,
    costs: undefined,
    backlogAtEnd: undefined,
    stopped: undefined,
  };
}

export async function measureLatency(ctx: LoadContext, options: LoadOptions, tag: string): Promise<LatencyResult> {
  const deadline = new Deadline(options.budgetMs);
  let timed: Timed | undefined;
  const result: LatencyResult = noLatencyYet(options.latencyN);
  const cast = await setUpCast(ctx, options, tag);
  try {
    result.barrier = await barrier(ctx, cast, deadline.clip(options.barrierTimeoutMs));
    if (!result.barrier.ok) return { ...result, stopped: "the barrier before it did not get through" };
    ctx.log(`latency: ${options.warmup} warm-up + ${options.latencyN} sequential comments …`);
    await warmUp(cast, options, deadline, "warmup");
    const mark = await ctx.meter.start();
    timed = await timeComments(cast, options, deadline, "latency");
    Object.assign(result, { sent: timed.sent, lost: timed.lost, httpErrors: timed.httpErrors, stopped: timed.stopped });
    result.costs = await ctx.meter.stop(mark, timed.e2e.length);
    if (result.lost > 0) result.backlogAtEnd = await ctx.backlog();
    result.stream = await measureStreamLatency(ctx, cast, options, tag);
  } catch (err) {
    result.stopped = message(err);
  } finally {
    await cast.socketB.close();
    cast.api.close();
  }
  return timed ? { ...result, ...summarizeTimed(timed) } : result;
}

/**
 * The second half of the latency scenario, on the same stack: B's client takes its position with
 * notifications.streamCursor, which starts B's stream, and follows the inbox through inboxEvents
 * on a new socket instead of notificationAdded; from then on every change to B's inbox is also
 * logged in the stream. Same warm-up and count as the first half, with a budget of its own. A
 * third user, C, with a post of their own and a notificationAdded socket, takes turns with B (A
 * comments on B's post, then on C's, then on C's, then on B's, …): C's samples are the control.
 */
async function measureStreamLatency(
  ctx: LoadContext,
  cast: Cast,
  options: LoadOptions,
  tag: string,
): Promise<StreamLatencyResult> {
  const deadline = new Deadline(options.budgetMs);
  const stream: Target = { postId: cast.postId, socket: cast.socketB, timed: newTimed() };
  let control: Target | undefined;
  const result: StreamLatencyResult = {
    ...noLatencyYet(options.latencyN),
    positionMs: undefined,
    duplicated: 0,
    resets: 0,
    control: undefined,
  };
  let socket: InboxEventSocket | undefined;
  try {
    await cast.socketB.close();
    const asked = performance.now();
    const cursor = await cast.api.streamCursor(cast.b);
    result.positionMs = performance.now() - asked;
    socket = await InboxEventSocket.open(ctx.apiUrl, cast.b, options.httpTimeoutMs, cursor);
    cast.socketB = socket;
    stream.socket = socket;
    const c = await cast.api.register(`${tag}_C`);
    const postC = await cast.api.createPost(c, "C's post", "...");
    control = {
      postId: postC,
      socket: await EventSocket.open(ctx.apiUrl, c, options.httpTimeoutMs),
      timed: newTimed(),
    };
    await allListening(ctx.redis, [cast.b.id, c.id], options.httpTimeoutMs);
    result.barrier = await barrier(ctx, cast, deadline.clip(options.barrierTimeoutMs));
    if (!result.barrier.ok) return { ...result, stopped: "the barrier before it did not get through" };
    ctx.log(
      `latency, inboxEvents: ${options.warmup} warm-up + ${options.latencyN} sequential comments, ` +
        "taking turns with as many to a notificationAdded control …",
    );
    for (let i = 0; i < options.warmup && !deadline.passed(); i += 1) {
      for (const target of [stream, control]) {
        await cast.api.comment(cast.a, target.postId, `stream warmup ${i}`).catch(() => undefined);
        await target.socket.next("NEW_COMMENT", deadline.clip(options.eventTimeoutMs), `stream warmup ${i}`);
        target.socket.drain();
      }
    }
    for (let i = 0; i < options.latencyN; i += 1) {
      if (deadline.passed()) {
        stream.timed.stopped = outOfTime(stream.timed.sent, options);
        break;
      }
      // Each goes first every other time: neither always follows the other's work.
      for (const target of i % 2 === 0 ? [stream, control] : [control, stream]) {
        await timeOne(cast, target, `stream ${i}`, options, deadline);
      }
    }
    const { timed } = stream;
    Object.assign(result, { sent: timed.sent, lost: timed.lost, httpErrors: timed.httpErrors, stopped: timed.stopped });
    if (result.lost > 0 || control.timed.lost > 0) result.backlogAtEnd = await ctx.backlog();
  } catch (err) {
    result.stopped = message(err);
  } finally {
    await control?.socket.close();
  }
  if (socket) {
    result.duplicated = socket.duplicates;
    result.resets = socket.resets;
    if (socket.failed !== undefined) result.stopped ??= socket.failed;
  }
  if (control) {
    const t = control.timed;
    result.control = { sent: t.sent, lost: t.lost, httpErrors: t.httpErrors, ...summarizeTimed(t) };
  }
  return { ...result, ...summarizeTimed(stream.timed) };
}

export interface ThroughputResult {
  barrier: BarrierResult;
  comments: number;
  concurrency: number;
  /** Comments never sent because the scenario ran out of time while posting; not counted as lost. */
  notSent: number;
  httpErrors: number;
  received: number;
  lost: number;
  httpPhaseMs: number | undefined;
  httpReqPerS: number | undefined;
  /** From the first POST to the last event that arrived. */
  allEventsMs: number | undefined;
  eventsPerS: number | undefined;
  costs: Costs | undefined;
  /** Read when events went missing: what they were stuck behind. */
  backlogAtEnd: Backlog | undefined;
  stopped: string | undefined;
}

export async function measureThroughput(
  ctx: LoadContext,
  options: LoadOptions,
  tag: string,
): Promise<ThroughputResult> {
  const n = options.throughputN;
  const result: ThroughputResult = {
    barrier: { ok: false, ms: 0 },
    comments: n,
    concurrency: options.concurrency,
    notSent: 0,
    httpErrors: 0,
    received: 0,
    lost: n,
    httpPhaseMs: undefined,
    httpReqPerS: undefined,
    allEventsMs: undefined,
    eventsPerS: undefined,
    costs: undefined,
    backlogAtEnd: undefined,
    stopped: undefined,
  };
  const cast = await setUpCast(ctx, options, tag);
  try {
    result.barrier = await barrier(ctx, cast, options.barrierTimeoutMs);
    if (!result.barrier.ok) return { ...result, stopped: "the barrier before it did not get through" };
    ctx.log(`throughput: ${n} comments, ${options.concurrency} in flight …`);
    // For the posting; the events then get one more wait for an event, as every wait does.
    const deadline = new Deadline(options.budgetMs);
    cast.socketB.drain();
    const mark = await ctx.meter.start();
    const arrivals: number[] = [];
    const seen = new Set<string>();
    let posting = true;
    const collector = (async () => {
      while (arrivals.length < n) {
        const event = await cast.socketB.next("NEW_COMMENT", options.eventTimeoutMs, (body) => body.startsWith("tp "));
        if (event) {
          // Herald may deliver an event twice (at least once); each comment counts once.
          if (!seen.has(event.body)) arrivals.push(event.at);
          seen.add(event.body);
          continue;
        }
        // A pause while comments are still being posted is Herald being slow, not the end.
        if (!posting || cast.socketB.failed !== undefined) break;
      }
    })();
    let next = 0;
    const started = performance.now();
    const poster = async () => {
      while (next < n) {
        const i = next;
        next += 1;
        if (deadline.passed()) {
          result.notSent += 1;
          continue;
        }
        try {
          await cast.api.comment(cast.a, cast.postId, `tp ${i}`);
        } catch {
          result.httpErrors += 1;
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, poster));
    posting = false;
    const httpPhaseMs = performance.now() - started;
    ctx.log(`throughput: posting done in ${(httpPhaseMs / 1000).toFixed(1)} s; ${arrivals.length} events so far …`);
    await collector;
    result.costs = await ctx.meter.stop(mark, arrivals.length);
    const sent = n - result.notSent;
    const last = arrivals.at(-1);
    Object.assign(result, {
      received: arrivals.length,
      lost: sent - arrivals.length,
      httpPhaseMs,
      httpReqPerS: sent / (httpPhaseMs / 1000),
      allEventsMs: last === undefined ? undefined : last - started,
      eventsPerS: last === undefined ? undefined : arrivals.length / ((last - started) / 1000),
    });
    if (result.lost > 0) result.backlogAtEnd = await ctx.backlog();
    if (result.notSent > 0) result.stopped = `out of time while posting (budget ${options.budgetMs / 1000} s)`;
    else if (arrivals.length < n) result.stopped = "gave up waiting for the missing events";
    if (cast.socketB.failed !== undefined) result.stopped = cast.socketB.failed;
  } catch (err) {
    result.stopped = message(err);
  } finally {
    await cast.socketB.close();
    cast.api.close();
  }
  return result;
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
