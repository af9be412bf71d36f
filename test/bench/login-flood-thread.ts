// The attacker of the login flood (limits.ts): wrong-password sign-ins, a fixed number in flight,
// from many client addresses. It runs in a thread of its own so that the legitimate client, on the
// bench's main thread, is not timed behind the attacker's own request handling: what its latency
// shows is Herald's, plus the machine the two share.
import http from "node:http";
import { parentPort, workerData } from "node:worker_threads";
import type { ExecutionResult } from "graphql";

export interface FloodThreadData {
  url: string;
  /** The login mutation's text; its variables are built here. */
  query: string;
  concurrency: number;
  accounts: string[];
  /** Sent as X-Forwarded-For, which Herald trusts from a loopback proxy. */
  addresses: string[];
  password: string;
  timeoutMs: number;
}

/**
 * How an attempt was answered: `checked` (UNAUTHENTICATED: the password was hashed and compared),
 * `waiting` (RATE_LIMITED by the doubling wait of wrong passwords), `address` (RATE_LIMITED by the
 * address's sign-in count), `accepted` (never, with a wrong password), or what else came back.
 */
export type AnswerKind = string;

export interface FloodTally {
  startedAt: number;
  endedAt: number;
  answers: Record<AnswerKind, number>;
  /** Milliseconds from sending to the answer, by kind. */
  ms: Record<AnswerKind, number[]>;
}

/**
 * `hashing` until every account has been refused for its wait (or the main thread says so);
 * `draining` until the attempts let through before then have been answered: they wait for the
 * hash still, and the hashing threads, lower in priority, now compete with the refusals; after
 * that the limiter answers everything (`refusing`). The phases cost Herald very different
 * amounts, so they are tallied apart.
 */
export type FloodPhaseName = "hashing" | "draining" | "refusing";

export type FloodToMain =
  | { type: "phase"; phase: FloodPhaseName; at: number; forced: boolean }
  | { type: "done"; tallies: Partial<Record<FloodPhaseName, FloodTally>> };

/** `next phase` ends the hashing or the draining when it has gone on too long. */
export type FloodFromMain = { type: "next phase" } | { type: "stop" };

/** Epoch milliseconds with sub-millisecond precision: comparable with the main thread's clock. */
const now = (): number => performance.timeOrigin + performance.now();

const data = workerData as FloodThreadData;
const agent = new http.Agent({ keepAlive: true, maxSockets: data.concurrency });
let next = 0;
let stopping = false;
const newTally = (): FloodTally => ({ startedAt: now(), endedAt: 0, answers: {}, ms: {} });
const tallies: Partial<Record<FloodPhaseName, FloodTally>> = { hashing: newTally() };
let phase: FloodPhaseName = "hashing";
/** Accounts refused for their wait at least once. */
const waitingAccounts = new Set<string>();
/** Attempts awaiting their answer, by number. */
const pending = new Set<number>();
/** While draining: the attempts sent before the hashing was over that still await their answer. */
let letThrough = new Set<number>();

function enter(to: FloodPhaseName, forced = false): void {
  const tally = newTally();
  const current = tallies[phase];
  if (current) current.endedAt = tally.startedAt;
  tallies[to] = tally;
  phase = to;
  parentPort?.postMessage({ type: "phase", phase: to, at: tally.startedAt, forced } satisfies FloodToMain);
}

function hashingOver(forced: boolean): void {
  if (phase !== "hashing") return;
  letThrough = new Set(pending);
  enter("draining", forced);
  if (letThrough.size === 0) enter("refusing");
}

function classify(status: number, result: ExecutionResult | undefined): AnswerKind {
  if (!result) return `HTTP ${status}`;
  if (result.data && (result.data as { login?: unknown }).login) return "accepted";
  const error = result.errors?.[0];
  const code = error?.extensions?.["code"];
  if (code === "UNAUTHENTICATED") return "checked";
  if (code === "RATE_LIMITED") return /wrong passwords/i.test(error?.message ?? "") ? "waiting" : "address";
  return typeof code === "string" ? code : `HTTP ${status}`;
}

function attempt(account: string, address: string): Promise<AnswerKind> {
  const body = JSON.stringify({ query: data.query, variables: { input: { email: account, password: data.password } } });
  return new Promise((resolve) => {
    const req = http.request(
      `${data.url}/graphql`,
      {
        method: "POST",
        agent,
        timeout: data.timeoutMs,
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          "content-length": Buffer.byteLength(body),
          "x-forwarded-for": address,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", () => resolve("failed"));
        res.on("end", () => {
          let result: ExecutionResult | undefined;
          try {
            result = JSON.parse(Buffer.concat(chunks).toString("utf8")) as ExecutionResult;
          } catch {
            result = undefined;
          }
          resolve(classify(res.statusCode ?? 0, result));
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve("failed"));
    req.end(body);
  });
}

async function attacker(): Promise<void> {
  const { accounts, addresses } = data;
  while (!stopping) {
    const i = next;
    next += 1;
    const account = accounts[i % accounts.length] as string;
    const sentAt = now();
    pending.add(i);
    const kind = await attempt(account, addresses[i % addresses.length] as string);
    const answeredAt = now();
    pending.delete(i);
    // By the moment of the answer: that is when Herald did the work the phase is charged with.
    const tally = tallies[phase] as FloodTally;
    tally.answers[kind] = (tally.answers[kind] ?? 0) + 1;
    (tally.ms[kind] ??= []).push(answeredAt - sentAt);
    if (kind === "waiting") {
      waitingAccounts.add(account);
      if (waitingAccounts.size === accounts.length) hashingOver(false);
    }
    if (phase === "draining" && letThrough.delete(i) && letThrough.size === 0) enter("refusing");
  }
}

parentPort?.on("message", (message: FloodFromMain) => {
  if (message.type === "stop") stopping = true;
  else if (phase === "hashing") hashingOver(true);
  else if (phase === "draining") enter("refusing", true);
});

void Promise.all(Array.from({ length: data.concurrency }, attacker)).then(() => {
  (tallies[phase] as FloodTally).endedAt = now();
  agent.destroy();
  parentPort?.postMessage({ type: "done", tallies } satisfies FloodToMain);
  parentPort?.close();
});
