// Figures of the Django-workload scenarios, laid out like the reference benchmark's table so the
// two can be read side by side, each followed by what its measured phase cost per event.
import type { Costs } from "./costs.js";
import type { Backlog } from "./job-backlog.js";
import type { Tally } from "./wire-counter.js";
import type { LoadFanoutResult } from "./load-fanout.js";
import {
  describeBacklog,
  type BarrierResult,
  type LatencyResult,
  type StreamLatencyResult,
  type ThroughputResult,
} from "./load.js";
import type { Summary } from "./stats.js";

/** Collections shown per command: the few that explain where the commands go. */
const TOP_COLLECTIONS = 12;

const ms = (value: number | undefined) => (value === undefined ? "n/a" : `${value.toFixed(1)} ms`);
const seconds = (value: number | undefined) => (value === undefined ? "n/a" : `${(value / 1000).toFixed(2)} s`);

function percentiles(name: string, s: Summary | undefined, extra = ""): string {
  const cells = s
    ? [`p50 ${ms(s.p50)}`, `p95 ${ms(s.p95)}`, `p99 ${ms(s.p99)}`, `max ${ms(s.max)}`]
    : ["no samples", "", "", ""];
  return [name.padEnd(26), ...cells.map((c) => c.padEnd(14)), extra].join("").trimEnd();
}

function barrierLine(b: BarrierResult): string {
  return b.ok
    ? `barrier before it: through in ${ms(b.ms)}`
    : `barrier before it TIMED OUT after ${seconds(b.ms)} (${describeBacklog(b.backlog)})`;
}

export function reportLatency(r: LatencyResult): string[] {
  return [
    `latency: user A comments on user B's post, one at a time; B's socket gets NEW_COMMENT`,
    `  ${barrierLine(r.barrier)}`,
    "  " +
      percentiles("e2e (POST -> event)", r.e2e, `n=${r.e2e?.count ?? 0} lost=${r.lost} http errors=${r.httpErrors}`),
    "  " + percentiles("HTTP response", r.http),
    ...(r.trend ? [`  p50 of the first / last 10 % of comments: ${ms(r.trend[0])} / ${ms(r.trend[1])}`] : []),
    ...(r.sent < r.asked ? [`  sent ${r.sent} of ${r.asked} counted comments`] : []),
    ...backlogAtEnd(r.backlogAtEnd),
    ...stopped(r.stopped),
    ...reportCosts(r.costs),
    ...(r.stream ? reportStreamLatency(r, r.stream) : []),
  ];
}

/** The latency scenario's second half, and both halves side by side. */
function reportStreamLatency(first: LatencyResult, r: StreamLatencyResult): string[] {
  const c = r.control;
  const lines = [
    `latency, inboxEvents (stream logged): the same, on the same stack, after B took its position with` +
      ` notifications.streamCursor (answered in ${ms(r.positionMs)}), which starts B's stream: every change to B's` +
      ` inbox is then logged there too; B's new socket follows inboxEvents from that cursor and the time is taken at` +
      ` the ADDED event (own budget of the same size); B's comments take turns with as many on user C's post, whose` +
      ` socket follows notificationAdded and whose stream was never started (the control)`,
    `  ${barrierLine(r.barrier)}`,
    "  " +
      percentiles(
        "e2e (POST -> ADDED event)",
        r.e2e,
        `n=${r.e2e?.count ?? 0} lost=${r.lost} duplicated=${r.duplicated} resets=${r.resets} http errors=${r.httpErrors}`,
      ),
    "  " + percentiles("HTTP response", r.http),
    ...(r.trend ? [`  p50 of the first / last 10 % of comments: ${ms(r.trend[0])} / ${ms(r.trend[1])}`] : []),
    ...(c
      ? [
          "  " +
            percentiles("e2e, C (control)", c.e2e, `n=${c.e2e?.count ?? 0} lost=${c.lost} http errors=${c.httpErrors}`),
        ]
      : []),
    ...(r.sent < r.asked ? [`  sent ${r.sent} of ${r.asked} counted comments`] : []),
    ...backlogAtEnd(r.backlogAtEnd),
    ...stopped(r.stopped),
  ];
  const diff = (x: number, y: number) => `${y - x >= 0 ? "+" : ""}${(y - x).toFixed(1)} ms`;
  const a = first.e2e;
  const b = r.e2e;
  if (a && b) {
    lines.push(
      `  side by side, "notificationAdded" vs "inboxEvents (stream logged)": p50 ${ms(a.p50)} vs ${ms(b.p50)}` +
        ` (difference ${diff(a.p50, b.p50)}), p99 ${ms(a.p99)} vs ${ms(b.p99)} (difference ${diff(a.p99, b.p99)})`,
    );
  }
  if (b && c?.e2e) {
    lines.push(
      `  taking turns, "notificationAdded" (control) vs "inboxEvents (stream logged)": p50 ${ms(c.e2e.p50)} vs` +
        ` ${ms(b.p50)} (difference ${diff(c.e2e.p50, b.p50)}), p99 ${ms(c.e2e.p99)} vs ${ms(b.p99)}` +
        ` (difference ${diff(c.e2e.p99, b.p99)}): the same moments, so the machine's drift between the halves is out`,
    );
  }
  return lines;
}

export function reportThroughput(r: ThroughputResult): string[] {
  const rate = (v: number | undefined, unit: string) => (v === undefined ? `n/a ${unit}` : `${v.toFixed(1)} ${unit}`);
  return [
    `throughput: ${r.comments} comments, ${r.concurrency} in flight; first POST -> last event at B's socket`,
    `  ${barrierLine(r.barrier)}`,
    `  ${rate(r.eventsPerS, "events/s")}, ${r.received} of ${r.comments} events in ${seconds(r.allEventsMs)}` +
      ` | HTTP ${rate(r.httpReqPerS, "req/s")} (posting took ${seconds(r.httpPhaseMs)})` +
      ` | lost=${r.lost} http errors=${r.httpErrors}${r.notSent > 0 ? ` not sent=${r.notSent}` : ""}`,
    ...backlogAtEnd(r.backlogAtEnd),
    ...stopped(r.stopped),
    ...reportCosts(r.costs),
  ];
}

export function reportLoadFanout(r: LoadFanoutResult): string[] {
  const lines = [
    `fan-out: ${r.followers} users signed up through register, each follows one author and holds its own socket;` +
      ` the author posts; POST -> each follower's NEW_POST`,
    `  setup: ${r.registered} signed up, ${r.followed} followed, ${r.connected} subscribed` +
      (r.setupMs === undefined ? "" : ` in ${seconds(r.setupMs)}`) +
      ` (sign-ups ${seconds(r.registerMs)}, follows ${seconds(r.followMs)}, sockets ${seconds(r.connectMs)})`,
    ...(r.connected < r.followers
      ? [`  the posts go to ${r.connected} of ${r.followers} followers: the others were not ready in time or failed`]
      : []),
  ];
  r.rounds.forEach((round, i) => {
    lines.push(
      `  post ${i + 1}: first ${ms(round.firstMs)}, p50 ${ms(round.p50Ms)}, p99 ${ms(round.p99Ms)}, all ${ms(round.allMs)}` +
        ` | received ${round.received} lost ${round.lost} | createPost answered in ${ms(round.httpMs)}` +
        ` | ${barrierLine(round.barrier)}`,
      ...backlogAtEnd(round.backlogAtEnd).map((line) => `  ${line}`),
    );
  });
  if (r.failedBarrier) {
    lines.push(`  before post ${r.rounds.length + 1}: ${barrierLine(r.failedBarrier)}`);
    lines.push(...reportCosts(r.drainCosts, "job").map((line) => line.replace("the measured phase", "that wait")));
  }
  if (r.rounds.length === 0) lines.push("  no post was measured");
  const median = r.medianAllMs;
  lines.push(
    `  median of "all" over ${r.rounds.length} post(s): ${ms(median)}` +
      (median === undefined ? "" : ` (${(r.connected / (median / 1000)).toFixed(0)} deliveries/s)`),
  );
  return [...lines, ...stopped(r.stopped), ...reportCosts(r.costs)];
}

function stopped(reason: string | undefined): string[] {
  return reason ? [`  stopped early: ${reason}`] : [];
}

function backlogAtEnd(backlog: Backlog | undefined): string[] {
  return backlog ? [`  when it stopped waiting for the missing events: ${describeBacklog(backlog)}`] : [];
}

/** `unit` is what the phase's count counts: delivered events, or jobs a backlog lost meanwhile. */
export function reportCosts(c: Costs | undefined, unit = "event"): string[] {
  if (!c) return ["  costs: not measured (no measured phase)"];
  const per = (n: number) => (c.events > 0 ? (n / c.events).toFixed(2) : "-");
  const lines = [
    `  cost of the measured phase: ${c.events} ${unit}s in ${(c.wallMs / 1000).toFixed(2)} s` +
      (c.events === 0 ? ` (no ${unit}s: totals only)` : ""),
  ];
  if (c.mongo) {
    const serverMs = [...c.mongo.byCommand.values()].reduce((sum, t) => sum + t.ms, 0);
    lines.push(
      `    MongoDB commands: ${c.mongo.messages} (${per(c.mongo.messages)}/${unit}); ` +
        `server time from request to reply: ${serverMs.toFixed(0)} ms (${per(serverMs)} ms/${unit})`,
      `      ${"".padEnd(34)}${"calls".padStart(8)}${`per ${unit}`.padStart(16)}${"server ms".padStart(11)}${"ms/call".padStart(9)}`,
      ...tallies(c.mongo.byCommand, per, unit),
      `    by command and collection, the ${TOP_COLLECTIONS} with the most server time:`,
      ...tallies(c.mongo.byCollection, per, unit, TOP_COLLECTIONS),
    );
  } else {
    lines.push("    MongoDB commands: n/a (MONGO_URL names several hosts or an SRV record)");
  }
  const redisTotal = [...c.redis.values()].reduce((a, b) => a + b, 0);
  lines.push(`    Redis commands: ${redisTotal} (${per(redisTotal)}/${unit})`, ...table(c.redis, per, unit));
  const cpu = [...c.cpuMs].map(([name, value]) =>
    value === undefined ? `${name} n/a` : `${name} ${value.toFixed(0)} (${per(value)})`,
  );
  lines.push(`    CPU ms in total (per ${unit}): ${cpu.join(", ")}`);
  return lines;
}

function tallies(counts: Map<string, Tally>, per: (n: number) => string, unit: string, top = Infinity): string[] {
  return [...counts]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, top)
    .map(
      ([name, t]) =>
        `      ${name.padEnd(34)}${String(t.calls).padStart(8)}${per(t.calls).padStart(10)}/${unit}` +
        `${t.ms.toFixed(0).padStart(11)}${(t.ms / t.calls).toFixed(2).padStart(9)}`,
    );
}

function table(counts: Map<string, number>, per: (n: number) => string, unit: string): string[] {
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `      ${name.padEnd(34)}${String(n).padStart(8)}${per(n).padStart(10)}/${unit}`);
}
