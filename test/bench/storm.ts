// The reconnect-storm scenario of `npm run bench`: N clients that follow their inbox took their
// position (notifications.streamCursor) and went away; each user got 5 notifications meanwhile;
// then all N come back at the same moment and resume with inboxEvents(after: cursor), one
// graphql-ws socket each. The same N clients then go away again, get 5 more each, and come back
// at once refetching their first page over HTTP instead, on the same stack. Before each storm, one
// client goes through it alone, then a few more together as a warm-up (neither path is measured
// cold), none of them counted. Also what the streams hold in Redis, per user and per event.
import { readFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import { createClient, type Client } from "graphql-ws";
import { Redis } from "ioredis";
import { MongoClient } from "mongodb";
import WebSocket from "ws";
import { BenchInboxPageDocument, BenchInboxStartDocument, SendNotificationDocument } from "../generated/graphql.js";
import { testMongoUrl, testRedisUrl } from "../helpers/env.js";
import { bearer, eventually, gqlOk, queryText } from "../helpers/graphql-client.js";
import { baseEnv, seedLogins, TEST_SERVICE_KEY, type HeraldProcess } from "../helpers/herald.js";
import { subscribeInbox } from "../helpers/inbox-stream.js";
import { CostMeter, type Costs } from "./costs.js";
import { seededUser } from "./fanout.js";
import { jobBacklog } from "./job-backlog.js";
import { postGraphql, within } from "./load-client.js";
import type { ServerPids } from "./load-stack.js";
import { RedisStats } from "./redis-stats.js";
import { summarize, type Summary } from "./stats.js";

export interface StormOptions {
  /** Clients measured, each its own user. */
  clients: number;
  /** Api processes; client i talks to api i mod apis, in every phase. */
  apis: number;
  /** Notifications each user gets while away, per storm. */
  events: number;
  /** The page a refetching client asks for. */
  pageSize: number;
  /**
   * Clients that go through each storm first, not counted: the first of them alone (what one
   * reconnect costs without a crowd), then the others together, so that neither path is measured cold.
   */
  warmup: number;
  /** Positions taken at a time while setting up. */
  setupConcurrency: number;
  /** The longest wait for every client of a storm to catch up. */
  stormTimeoutMs: number;
  /** The longest wait for a round's notifications to be stored and logged. */
  deliveryTimeoutMs: number;
  /** Users whose Redis keys are measured with MEMORY USAGE. */
  memorySample: number;
}

export interface ResumeResult {
  /** From the start of the storm until each client had its events, for those that did. */
  caughtUp: Summary | undefined;
  times: number[];
  caught: number;
  /** From the start of the storm until each client's socket was acknowledged (its first connection). */
  acknowledged: Summary | undefined;
  /** Expected events that had not arrived when the storm's wait ended, over all clients. */
  lost: number;
  /** Events of a notification a client already had. */
  duplicated: number;
  /** Events that were not one of the expected ADDED ones (a RESET, or one of another round). */
  unexpected: number;
  clientsWithLoss: number;
  clientsWithDuplicates: number;
  /** Subscriptions that ended in an error (or completed). */
  errors: number;
  firstErrors: string[];
  /** Socket connections beyond each client's first: the recipe's client reconnects when one drops. */
  reconnects: number;
  /** How long creating every client took the bench's own event loop. */
  startedMs: number;
  costs: Costs;
  listenOverflows: number | undefined;
}

export interface RefetchResult {
  /** From the start of the storm until each client had a page holding its new notifications. */
  complete: Summary | undefined;
  times: number[];
  completed: number;
  /** Clients still waiting for their page when the storm's wait ended. */
  unanswered: number;
  /** Pages that came back without every new notification. */
  incomplete: number;
  /** Clients that got no page, after their retries. */
  errors: number;
  firstErrors: string[];
  retries: number;
  startedMs: number;
  costs: Costs;
  listenOverflows: number | undefined;
}

export interface StormMemory {
  sampled: number;
  /** Mean bytes of inbox + inbox-meta per sampled user, after each storm's round of events. */
  streamBytes: number[];
  /** Mean bytes of the unread counter's two keys per sampled user. */
  counterBytes: number | undefined;
  /** Mean length of what each stream entry holds (its fields and values), of the sampled users' entries. */
  entryBytes: number | undefined;
  /** INFO used_memory before positions were taken, after, and after each round of events. */
  usedBefore: number | undefined;
  usedAfterPositions: number | undefined;
  usedAfterRounds: (number | undefined)[];
}

export interface StormResult {
  options: StormOptions;
  users: number;
  seedMs: number;
  positionsMs: number;
  /** Per round: the sendNotification requests and how long until every event was stored and logged. */
  deliveries: Delivery[];
  /** The bench process's limit on open files (each client holds a socket), from /proc; undefined elsewhere. */
  openFilesLimit: number | undefined;
  /** One client alone, before each storm's warm-up: what a reconnect costs without a crowd. */
  aloneResumeMs: number | undefined;
  aloneRefetchMs: number | undefined;
  resume: ResumeResult | undefined;
  refetch: RefetchResult | undefined;
  memory: StormMemory;
  stopped: string | undefined;
}

interface StormClient {
  userId: string;
  token: string;
  apiUrl: string;
  /** Its position in the stream, from notifications.streamCursor. */
  cursor: string;
}

const SEED_BATCH = 1000;
const SEND_BATCH = 1000;
const RETRIES = 5;
/** After the last client caught up: time for duplicates, which would come late, to arrive. */
const DUPLICATE_GRACE_MS = 1000;
/** How often a round still being delivered says where it stands. */
const PROGRESS_EVERY_MS = 10_000;

export async function measureStorm(
  options: StormOptions,
  deps: {
    database: string;
    servers: ServerPids;
    startHerald: (env: Record<string, string>) => Promise<HeraldProcess>;
    onCleanup: (name: string, stop: () => Promise<unknown>) => void;
    log: (message: string) => void;
  },
): Promise<StormResult> {
  const { log } = deps;
  const env = baseEnv(deps.database);
  const worker = await deps.startHerald({ ...env, ROLES: "worker" });
  const apis: HeraldProcess[] = [];
  for (let i = 0; i < options.apis; i += 1) apis.push(await deps.startHerald({ ...env, ROLES: "api" }));
  const redis = new Redis(testRedisUrl());
  deps.onCleanup("bench Redis connection", () => redis.quit());
  await redis.ping();
  const stats = new RedisStats(redis);
  const meter = new CostMeter(undefined, stats, [
    ...apis.map((api, i) => ({ name: `api ${i + 1}`, pid: api.child.pid })),
    { name: "worker", pid: worker.child.pid },
    { name: deps.servers.ferretdb === undefined ? "MongoDB" : "FerretDB", pid: deps.servers.ferretdb },
    { name: "Redis", pid: deps.servers.redis },
    { name: "bench client", pid: process.pid },
  ]);
  const mongo = new MongoClient(testMongoUrl(deps.database));
  deps.onCleanup("seed connection", () => mongo.close());

  const users = options.clients + options.warmup;
  const result: StormResult = {
    options,
    users,
    seedMs: 0,
    positionsMs: 0,
    deliveries: [],
    openFilesLimit: undefined,
    aloneResumeMs: undefined,
    aloneRefetchMs: undefined,
    resume: undefined,
    refetch: undefined,
    memory: {
      sampled: 0,
      streamBytes: [],
      counterBytes: undefined,
      entryBytes: undefined,
      usedBefore: undefined,
      usedAfterPositions: undefined,
      usedAfterRounds: [],
    },
    stopped: undefined,
  };
  try {
    result.openFilesLimit = await openFilesLimit();
    if (result.openFilesLimit !== undefined && result.openFilesLimit < users + 200) {
      log(
        `storm: the open files limit (${result.openFilesLimit}) is below one socket per client; ` +
          "raise it (ulimit -n) or pass a smaller --storm-clients",
      );
    }
    let started = performance.now();
    const userIds = await seed(mongo, users);
    result.seedMs = performance.now() - started;
    const clients: StormClient[] = [];
    const tokens = await seedLogins(mongo.db(), userIds);
    for (const [i, userId] of userIds.entries()) {
      const apiUrl = apis[i % apis.length]?.url ?? "";
      clients.push({ userId, token: tokens[i] ?? "", apiUrl, cursor: "" });
    }
    log(`storm: ${users} users seeded; taking their positions …`);

    result.memory.usedBefore = await stats.usedMemory();
    started = performance.now();
    await takePositions(clients, options);
    result.positionsMs = performance.now() - started;
    result.memory.usedAfterPositions = await stats.usedMemory();
    const sample = evenly(userIds, options.memorySample);
    result.memory.sampled = sample.length;

    const warm = clients.slice(0, options.warmup);
    const measured = clients.slice(options.warmup);
    const apiUrl = apis[0]?.url ?? "";

    // Round 1, while every client is away; then all of them resume from their cursors.
    result.deliveries.push(await deliver(apiUrl, redis, userIds, 1, options, deps.database, meter, mongo, log));
    logSlowDelivery(result.deliveries.at(-1), worker, log);
    result.memory.usedAfterRounds.push(await stats.usedMemory());
    result.memory.streamBytes.push(await streamBytes(redis, sample));
    result.memory.counterBytes = await counterBytes(redis, sample);
    result.memory.entryBytes = await entryBytes(redis, sample);
    const [first, ...rest] = warm;
    if (first) {
      const alone = await resumeStorm([first], 1, options, meter);
      result.aloneResumeMs = alone.times[0];
      await untilUnsubscribed(redis, [first]);
    }
    if (rest.length > 0) {
      log(`storm: warm-up, ${rest.length} clients resume …`);
      const w = await resumeStorm(rest, 1, options, meter);
      log(`storm: warm-up resume: ${w.caught} of ${rest.length} caught up, all in ${describeTimes(w.times)}`);
      await untilUnsubscribed(redis, rest);
    }
    log(`storm: ${measured.length} clients resume with inboxEvents at once …`);
    result.resume = await resumeStorm(measured, 1, options, meter);
    if (result.resume.errors > 0) logOutputs(apis, log);
    await untilUnsubscribed(redis, measured);

    // Round 2, while every client is away again; then all of them refetch their first page.
    result.deliveries.push(await deliver(apiUrl, redis, userIds, 2, options, deps.database, meter, mongo, log));
    logSlowDelivery(result.deliveries.at(-1), worker, log);
    result.memory.usedAfterRounds.push(await stats.usedMemory());
    result.memory.streamBytes.push(await streamBytes(redis, sample));
    if (first) {
      const alone = await refetchStorm([first], 2, options, meter);
      result.aloneRefetchMs = alone.times[0];
      if (alone.errors > 0) log(`storm: one client alone could not refetch: ${alone.firstErrors.join("; ")}`);
    }
    if (rest.length > 0) {
      log(`storm: warm-up, ${rest.length} clients refetch …`);
      const w = await refetchStorm(rest, 2, options, meter);
      log(
        `storm: warm-up refetch: ${w.completed} of ${rest.length} complete, in ${describeTimes(w.times)}` +
          (w.firstErrors.length > 0 ? `; ${w.errors} errors: ${w.firstErrors.join("; ")}` : ""),
      );
    }
    log(`storm: ${measured.length} clients refetch their first page at once …`);
    result.refetch = await refetchStorm(measured, 2, options, meter);
    if (result.refetch.errors > 0) logOutputs(apis, log);
  } catch (err) {
    result.stopped = err instanceof Error ? err.message : String(err);
  }
  return result;
}

function describeTimes(times: readonly number[]): string {
  if (times.length === 0) return "-";
  const s = summarize(times);
  return `p50 ${s.p50.toFixed(0)} ms, max ${s.max.toFixed(0)} ms`;
}

/** What the api processes printed last: why requests failed. */
function logOutputs(apis: readonly HeraldProcess[], log: (message: string) => void): void {
  apis.forEach((api, i) => log(`storm: api ${i + 1} output (tail):\n${api.output().slice(-4000)}`));
}

async function seed(mongo: MongoClient, count: number): Promise<string[]> {
  const now = new Date();
  const ids: string[] = [];
  for (let i = 0; i < count; i += SEED_BATCH) {
    const batch = Array.from({ length: Math.min(SEED_BATCH, count - i) }, (_, j) => seededUser(`Storm ${i + j}`, now));
    await mongo.db().collection("users").insertMany(batch);
    ids.push(...batch.map((u) => u._id.toHexString()));
  }
  return ids;
}

/** Each client opens its inbox: the first page and its position, which starts the user's stream. */
async function takePositions(clients: readonly StormClient[], options: StormOptions): Promise<void> {
  const body = JSON.stringify({ query: queryText(BenchInboxStartDocument), variables: { first: options.pageSize } });
  let next = 0;
  const taker = async () => {
    while (next < clients.length) {
      const client = clients[next] as StormClient;
      next += 1;
      const { status, result } = await within(
        postGraphql(`${client.apiUrl}/graphql`, false, body, bearer(client.token)),
        60_000,
        "notifications.streamCursor",
      );
      const data = result.data as { notifications?: { streamCursor?: string } } | undefined;
      const cursor = data?.notifications?.streamCursor;
      if (!cursor) throw new Error(`no streamCursor (${status}): ${JSON.stringify(result.errors)}`);
      client.cursor = cursor;
    }
  };
  await Promise.all(Array.from({ length: options.setupConcurrency }, taker));
}

function title(round: number, k: number): string {
  return `storm ${round}.${k}`;
}

/**
 * `options.events` notifications to every user, by sendNotification to batches of recipients as
 * another backend would send them, all requests at once; then until every user's stream holds them.
 */
async function deliver(
  apiUrl: string,
  redis: Redis,
  userIds: readonly string[],
  round: number,
  options: StormOptions,
  database: string,
  meter: CostMeter,
  mongo: MongoClient,
  log: (message: string) => void,
): Promise<Delivery> {
  log(`storm: round ${round}, ${options.events} notifications to each of ${userIds.length} users …`);
  const mark = await meter.start();
  const started = performance.now();
  const requests: Promise<unknown>[] = [];
  for (let k = 0; k < options.events; k += 1) {
    for (let i = 0; i < userIds.length; i += SEND_BATCH) {
      const input = {
        recipientIds: userIds.slice(i, i + SEND_BATCH),
        title: title(round, k),
        body: `Notification ${k + 1} of ${options.events} of round ${round}, sent while the client was away.`,
        idempotencyKey: `${database}:${round}:${k}:${i}`,
      };
      requests.push(gqlOk(apiUrl, SendNotificationDocument, { input }, { "x-api-key": TEST_SERVICE_KEY }));
    }
  }
  await Promise.all(requests);
  const want = round * options.events;
  let reported = performance.now();
  await eventually(
    async () => {
      const pipeline = redis.pipeline();
      for (const id of userIds) pipeline.xlen(inboxKey(id));
      const replies = (await pipeline.exec()) ?? [];
      const behind = replies.filter(([err, len]) => err || Number(len) < want).length;
      if (behind > 0 && performance.now() - reported > PROGRESS_EVERY_MS) {
        reported = performance.now();
        log(`storm: round ${round}: ${await deliveryProgress(mongo, redis, database, behind)}`);
      }
      return behind === 0 ? true : undefined;
    },
    {
      timeoutMs: options.deliveryTimeoutMs,
      what: `${want} events in each of ${userIds.length} users' streams`,
      intervalMs: 250,
    },
  );
  const ms = performance.now() - started;
  return { requests: requests.length, ms, costs: await meter.stop(mark, want * userIds.length) };
}

/** Where a slow round stands: users still missing events, requests done, announcements pending, jobs. */
async function deliveryProgress(mongo: MongoClient, redis: Redis, database: string, behind: number): Promise<string> {
  const db = mongo.db();
  const [requests, done, pending, backlog] = await Promise.all([
    db.collection("notification_requests").countDocuments({}),
    db.collection("notification_requests").countDocuments({ completedAt: { $ne: null } }),
    db.collection("pending_announcements").countDocuments({}),
    jobBacklog(redis, database).catch(() => undefined),
  ]);
  return (
    `${behind} users still missing events; requests completed ${done} of ${requests}; pending announcements ${pending}; ` +
    (backlog ? `jobs ${backlog.queued} queued, ${backlog.running} locked` : "jobs unknown") +
    (await failedJobs(redis, database))
  );
}

/** Why the jobs that failed at least once failed (Agenda keeps the last reason in the job). */
async function failedJobs(redis: Redis, database: string): Promise<string> {
  const prefix = `herald:{jobs:${database}}:`;
  const ids = await redis.smembers(`${prefix}jobs:all`);
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hmget(`${prefix}job:${id}`, "name", "failCount", "failReason", "nextRunAt");
  const failed = ((await pipeline.exec()) ?? [])
    .map(([, fields]) => fields as (string | null)[])
    .filter((f) => Number(f[1] ?? 0) > 0);
  if (failed.length === 0) return "";
  const reasons = failed.map((f) => `${f[0]} failed ${f[1]} times (${f[2] ?? "?"}), next run ${f[3] ?? "none"}`);
  return `; ${failed.length} jobs failed before: ${[...new Set(reasons)].slice(0, 3).join("; ")}`;
}

/** A round's sendNotification requests, how long until every event was stored and logged, and what that cost. */
interface Delivery {
  requests: number;
  ms: number;
  costs: Costs;
}

/** A round that took long: what the worker had to say about it. */
function logSlowDelivery(d: Delivery | undefined, worker: HeraldProcess, log: (message: string) => void): void {
  if (d && d.ms > 20_000)
    log(`storm: the round took ${(d.ms / 1000).toFixed(1)} s; worker output (tail):\n${worker.output().slice(-4000)}`);
}

function inboxKey(userId: string, part: "inbox" | "inbox-meta" | "unread-count" | "unread-version" = "inbox"): string {
  return `herald:{u:${userId}}:${part}`;
}

/** What a client of the resume storm received. */
interface Catcher {
  ids: Set<string>;
  duplicates: number;
  unexpected: number;
  caughtMs: number | undefined;
  acknowledgedMs: number | undefined;
  connections: number;
  error: string | undefined;
}

/**
 * Every client at once: a graphql-ws socket of its own, inboxEvents from its cursor through the
 * recipe (test/helpers/inbox-stream.ts), until it has the round's events. The client reconnects
 * (resuming after the last event it got) if its socket drops, as the recipe's client does.
 */
async function resumeStorm(
  clients: readonly StormClient[],
  round: number,
  options: StormOptions,
  meter: CostMeter,
): Promise<ResumeResult> {
  const expected = new Set(Array.from({ length: options.events }, (_, k) => title(round, k)));
  const catchers: Catcher[] = [];
  const sockets: Client[] = [];
  let caught = 0;
  let allCaught: () => void = () => {};
  const done = new Promise<void>((resolve) => (allCaught = resolve));
  const overflowsBefore = await listenOverflows();
  const mark = await meter.start();
  const started = performance.now();
  for (const c of clients) {
    const catcher: Catcher = {
      ids: new Set(),
      duplicates: 0,
      unexpected: 0,
      caughtMs: undefined,
      acknowledgedMs: undefined,
      connections: 0,
      error: undefined,
    };
    catchers.push(catcher);
    const socket = createClient({
      url: `${c.apiUrl.replace(/^http/, "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${c.token}` },
      retryAttempts: RETRIES,
      shouldRetry: () => true,
      retryWait: (retries) => delay(Math.min(1000, 25 * 2 ** retries) * (0.5 + Math.random())),
      on: {
        connected: () => {
          catcher.connections += 1;
          catcher.acknowledgedMs ??= performance.now() - started;
        },
      },
    });
    sockets.push(socket);
    subscribeInbox(socket, c.cursor, {
      next: (event) => {
        const at = performance.now();
        const id = event.notificationId ?? "";
        if (event.type !== "ADDED" || !expected.has(event.notification?.title ?? "")) {
          catcher.unexpected += 1;
          return;
        }
        if (catcher.ids.has(id)) {
          catcher.duplicates += 1;
          return;
        }
        catcher.ids.add(id);
        if (catcher.ids.size === expected.size) {
          catcher.caughtMs = at - started;
          caught += 1;
          if (caught === clients.length) allCaught();
        }
      },
      error: (error) => (catcher.error ??= describe(error)),
      complete: () => (catcher.error ??= "the server ended the subscription"),
    });
  }
  const startedMs = performance.now() - started;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise((resolve) => (timer = setTimeout(resolve, options.stormTimeoutMs)))]);
  clearTimeout(timer);
  const costs = await meter.stop(mark, caught * options.events);
  const overflowsAfter = await listenOverflows();
  await delay(DUPLICATE_GRACE_MS);
  await Promise.all(sockets.map(async (s) => s.dispose()));

  const times = catchers.flatMap((c) => (c.caughtMs === undefined ? [] : [c.caughtMs]));
  const acks = catchers.flatMap((c) => (c.acknowledgedMs === undefined ? [] : [c.acknowledgedMs]));
  const errors = catchers.filter((c) => c.error !== undefined);
  return {
    caughtUp: times.length > 0 ? summarize(times) : undefined,
    times,
    caught,
    acknowledged: acks.length > 0 ? summarize(acks) : undefined,
    lost: catchers.reduce((sum, c) => sum + (expected.size - c.ids.size), 0),
    duplicated: catchers.reduce((sum, c) => sum + c.duplicates, 0),
    unexpected: catchers.reduce((sum, c) => sum + c.unexpected, 0),
    clientsWithLoss: catchers.filter((c) => c.ids.size < expected.size).length,
    clientsWithDuplicates: catchers.filter((c) => c.duplicates > 0).length,
    errors: errors.length,
    firstErrors: [...new Set(errors.map((c) => c.error ?? ""))].slice(0, 3),
    reconnects: catchers.reduce((sum, c) => sum + Math.max(0, c.connections - 1), 0),
    startedMs,
    costs,
    listenOverflows:
      overflowsBefore === undefined || overflowsAfter === undefined ? undefined : overflowsAfter - overflowsBefore,
  };
}

/**
 * Every client at once: its first page over HTTP, on a connection of its own as a client that has
 * just come back opens one, until the page holds the round's notifications. A request whose
 * connection fails is sent again after a jittered wait, as the resume storm's sockets reconnect;
 * an answer with errors is counted, not retried, as a subscription's error is not.
 */
async function refetchStorm(
  clients: readonly StormClient[],
  round: number,
  options: StormOptions,
  meter: CostMeter,
): Promise<RefetchResult> {
  const expected = Array.from({ length: options.events }, (_, k) => title(round, k));
  const body = JSON.stringify({ query: queryText(BenchInboxPageDocument), variables: { first: options.pageSize } });
  const times: number[] = [];
  const failures: string[] = [];
  let incomplete = 0;
  let retries = 0;
  const overflowsBefore = await listenOverflows();
  const mark = await meter.start();
  const started = performance.now();
  let answered = 0;
  let allAnswered: () => void = () => {};
  const done = new Promise<void>((resolve) => (allAnswered = resolve));
  const refetch = async (c: StormClient): Promise<void> => {
    for (let attempt = 0; ; attempt += 1) {
      let answer: Awaited<ReturnType<typeof postGraphql>>;
      try {
        answer = await within(
          postGraphql(`${c.apiUrl}/graphql`, false, body, bearer(c.token)),
          options.stormTimeoutMs,
          "notifications",
        );
      } catch (err) {
        if (attempt < RETRIES && performance.now() - started < options.stormTimeoutMs) {
          retries += 1;
          await delay(Math.min(1000, 25 * 2 ** attempt) * (0.5 + Math.random()));
          continue;
        }
        failures.push(describe(err));
        return;
      }
      const data = answer.result.data as { notifications?: { edges: { node: { title: string } }[] } } | undefined;
      if (!data?.notifications) {
        const errors = answer.result.errors?.map((e) => `${e.message} (${String(e.extensions?.["code"])})`);
        failures.push(`HTTP ${answer.status}: ${errors?.join("; ") ?? "no data"}`);
        return;
      }
      const titles = new Set(data.notifications.edges.map((e) => e.node.title));
      if (expected.every((t) => titles.has(t))) times.push(performance.now() - started);
      else incomplete += 1;
      return;
    }
  };
  for (const c of clients) {
    void refetch(c).finally(() => {
      answered += 1;
      if (answered === clients.length) allAnswered();
    });
  }
  const startedMs = performance.now() - started;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise((resolve) => (timer = setTimeout(resolve, options.stormTimeoutMs)))]);
  clearTimeout(timer);
  const costs = await meter.stop(mark, times.length * options.events);
  const overflowsAfter = await listenOverflows();
  return {
    complete: times.length > 0 ? summarize(times) : undefined,
    times: [...times],
    completed: times.length,
    incomplete,
    unanswered: clients.length - answered,
    errors: failures.length,
    firstErrors: [...new Set(failures)].slice(0, 3),
    retries,
    startedMs,
    costs,
    listenOverflows:
      overflowsBefore === undefined || overflowsAfter === undefined ? undefined : overflowsAfter - overflowsBefore,
  };
}

/** Until no api process listens on these users' channels any more: the clients are really gone. */
async function untilUnsubscribed(redis: Redis, clients: readonly StormClient[]): Promise<void> {
  await eventually(
    async () => {
      for (let i = 0; i < clients.length; i += 1000) {
        const channels = clients.slice(i, i + 1000).map((c) => `INBOX:${c.userId}`);
        const reply = (await redis.pubsub("NUMSUB", ...channels)) as (string | number)[];
        if (channels.some((_, j) => Number(reply[2 * j + 1]) > 0)) return undefined;
      }
      return true;
    },
    { timeoutMs: 60_000, what: `${clients.length} clients' subscriptions to end`, intervalMs: 100 },
  );
}

/** Mean MEMORY USAGE of each sampled user's stream and its metadata, in bytes. */
async function streamBytes(redis: Redis, userIds: readonly string[]): Promise<number> {
  return meanMemory(redis, userIds, ["inbox", "inbox-meta"]);
}

/** Mean MEMORY USAGE of each sampled user's unread counter and its version, in bytes. */
async function counterBytes(redis: Redis, userIds: readonly string[]): Promise<number> {
  return meanMemory(redis, userIds, ["unread-count", "unread-version"]);
}

async function meanMemory(
  redis: Redis,
  userIds: readonly string[],
  parts: readonly ("inbox" | "inbox-meta" | "unread-count" | "unread-version")[],
): Promise<number> {
  const pipeline = redis.pipeline();
  for (const id of userIds)
    for (const part of parts) pipeline.call("MEMORY", "USAGE", inboxKey(id, part), "SAMPLES", "0");
  const replies = (await pipeline.exec()) ?? [];
  const total = replies.reduce((sum, [err, bytes]) => sum + (err ? 0 : Number(bytes ?? 0)), 0);
  return userIds.length > 0 ? total / userIds.length : 0;
}

/** Mean length of the fields and values of the sampled users' stream entries. */
async function entryBytes(redis: Redis, userIds: readonly string[]): Promise<number | undefined> {
  const pipeline = redis.pipeline();
  for (const id of userIds) pipeline.xrange(inboxKey(id), "-", "+");
  const replies = (await pipeline.exec()) ?? [];
  let entries = 0;
  let total = 0;
  for (const [err, reply] of replies) {
    if (err) continue;
    for (const [, fields] of reply as [string, string[]][]) {
      entries += 1;
      total += fields.reduce((sum, f) => sum + Buffer.byteLength(f), 0);
    }
  }
  return entries > 0 ? total / entries : undefined;
}

function evenly<T>(items: readonly T[], count: number): T[] {
  const n = Math.min(count, items.length);
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)] as T);
}

/** The kernel's count of connections dropped because a listen queue was full (Linux); undefined elsewhere. */
async function listenOverflows(): Promise<number | undefined> {
  const text = await readFile("/proc/net/netstat", "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  const lines = text.split("\n").filter((line) => line.startsWith("TcpExt:"));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  const at = names.indexOf("ListenOverflows");
  return at < 0 ? undefined : Number(values[at]);
}

async function openFilesLimit(): Promise<number | undefined> {
  const limits = await readFile("/proc/self/limits", "utf8").catch(() => "");
  const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
  return soft === undefined ? undefined : Number(soft);
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (error && typeof error === "object" && "code" in error && "reason" in error) {
    const { code, reason } = error;
    return `socket closed with ${String(code)} ${String(reason)}`.trim();
  }
  return JSON.stringify(error) ?? String(error);
}

export function reportStorm(r: StormResult): string[] {
  const o = r.options;
  const ms = (value: number | undefined) => (value === undefined ? "n/a" : `${value.toFixed(0)} ms`);
  const s = (value: number) => `${(value / 1000).toFixed(1)} s`;
  const bytes = (value: number | undefined) => (value === undefined ? "n/a" : `${Math.round(value)} B`);
  const over = "not reached";
  const at = (times: readonly number[], p: number) => rankOver(times, o.clients, p);
  const cell = (value: number | undefined) => (value === undefined ? over : ms(value));
  const spread = (times: readonly number[]) =>
    `p50 ${cell(at(times, 50))}, p99 ${cell(at(times, 99))}, all ${cell(at(times, 100))}`;
  const lines = [
    `Herald reconnect storm: ${o.clients} clients, each away while ${o.events} notifications arrive, then all back at the same moment` +
      ` (one worker, ${o.apis} api process${o.apis === 1 ? "" : "es"}, client i on api i mod ${o.apis};` +
      ` ${o.warmup} more clients go through each storm first as a warm-up, not counted)`,
    `  setup: ${r.users} users seeded in the database in ${s(r.seedMs)}, tokens minted; positions taken with` +
      ` notifications(first: ${o.pageSize}) { streamCursor }, ${o.setupConcurrency} at a time, in ${s(r.positionsMs)};` +
      ` open files limit of the bench process ${r.openFilesLimit ?? "unknown"}`,
    ...r.deliveries.map(
      (d, i) =>
        `  away ${i + 1}: ${o.events} notifications to each user by sendNotification (${d.requests} requests of at most` +
        ` ${SEND_BATCH} recipients), all stored and logged in ${s(d.ms)}; CPU ms ${cpuLine(d.costs)}` +
        (i === 0 ? " (no user had an unread counter yet)" : ""),
    ),
    `  one client alone, before the warm-up and the storm: resume ${ms(r.aloneResumeMs)}, refetch ${ms(r.aloneRefetchMs)}`,
  ];
  const a = r.resume;
  if (a) {
    lines.push(
      `  resume, inboxEvents(after: cursor) on one graphql-ws socket each: caught up ${spread(a.times)}` +
        ` | ${a.caught} of ${o.clients} caught up, lost ${a.lost} (${a.clientsWithLoss} clients),` +
        ` duplicated ${a.duplicated} (${a.clientsWithDuplicates} clients), other events ${a.unexpected},` +
        ` errors ${a.errors}, reconnects ${a.reconnects}`,
      `    sockets acknowledged: ${a.acknowledged ? `p50 ${ms(a.acknowledged.p50)}, p99 ${ms(a.acknowledged.p99)}, all ${ms(a.acknowledged.max)}` : "none"}` +
        `; creating the ${o.clients} clients took the bench ${ms(a.startedMs)}`,
      ...a.firstErrors.map((e) => `    error: ${e}`),
    );
  }
  const b = r.refetch;
  if (b) {
    lines.push(
      `  refetch, notifications(first: ${o.pageSize}) over HTTP on a new connection each: page with the ${o.events} new ones` +
        ` ${spread(b.times)} | ${b.completed} of ${o.clients} complete, incomplete pages ${b.incomplete},` +
        ` errors ${b.errors}, retries ${b.retries}, no answer within ${(o.stormTimeoutMs / 1000).toFixed(0)} s ${b.unanswered};` +
        ` starting the ${o.clients} requests took the bench ${ms(b.startedMs)}`,
      ...b.firstErrors.map((e) => `    error: ${e}`),
    );
  }
  if (a && b) {
    const ratio = (p: number) => {
      const x = at(a.times, p);
      const y = at(b.times, p);
      return x === undefined || y === undefined ? "n/a" : `${(y / x).toFixed(2)}×`;
    };
    lines.push(
      `  refetch / resume: p50 ${ratio(50)}, p99 ${ratio(99)}, all ${ratio(100)} (above 1: resuming the stream is faster;` +
        ` percentiles over all ${o.clients} clients, those that never got there counted as the slowest)`,
    );
  }
  if (a && b) {
    const cpu = [...a.costs.cpuMs.keys()].map((name) => {
      const v = (c: Costs) => {
        const value = c.cpuMs.get(name);
        return value === undefined ? "n/a" : value.toFixed(0);
      };
      return `${name} ${v(a.costs)} | ${v(b.costs)}`;
    });
    lines.push(
      `  CPU ms during the storm (resume | refetch), until the last client was done` +
        ` (${s(a.costs.wallMs)} | ${s(b.costs.wallMs)}): ${cpu.join(", ")}`,
      `  Redis commands during the storm (resume | refetch): ${redisLine(a.costs, b.costs)}`,
      `  kernel listen-queue overflows (TcpExt ListenOverflows) during the storm: resume ${a.listenOverflows ?? "n/a"},` +
        ` refetch ${b.listenOverflows ?? "n/a"}`,
    );
  }
  const m = r.memory;
  const [five, ten] = m.streamBytes;
  if (five !== undefined) {
    const perEvent = ten === undefined ? undefined : (ten - five) / o.events;
    lines.push(
      `  Redis memory per user with history, inbox + inbox-meta (MEMORY USAGE, ${m.sampled} users sampled):` +
        ` ${o.events} events ${bytes(five)} (${bytes(five / o.events)} per retained event)` +
        (ten === undefined
          ? ""
          : `, ${2 * o.events} events ${bytes(ten)} (${bytes(ten / (2 * o.events))} per retained event);` +
            ` each event added past the first ${o.events}: ${bytes(perEvent)}`) +
        `; the unread counter's two keys ${bytes(m.counterBytes)} more;` +
        ` each entry's fields and values (the event's JSON with its notification) hold ${bytes(m.entryBytes)} of it`,
    );
  }
  const per = (after: number | undefined) => {
    if (after === undefined || m.usedBefore === undefined) return "n/a";
    const grown = after - m.usedBefore;
    return `${grown >= 0 ? "+" : ""}${(grown / 1024 / 1024).toFixed(1)} MiB (${bytes(grown / r.users)} per user)`;
  };
  lines.push(
    `  Redis used_memory over the ${r.users} users, from before positions were taken: ` +
      [
        `after the positions ${per(m.usedAfterPositions)}`,
        ...m.usedAfterRounds.map((u, i) => `after ${(i + 1) * o.events} events each ${per(u)}`),
      ].join(", "),
  );
  if (r.stopped) lines.push(`  stopped early: ${r.stopped}`);
  return lines;
}

/**
 * Nearest-rank percentile over all `n` clients, those that never got there counted as the
 * slowest: undefined when the rank falls among them.
 */
function rankOver(times: readonly number[], n: number, p: number): number | undefined {
  const sorted = [...times].sort((x, y) => x - y);
  return sorted[Math.ceil((p / 100) * n) - 1];
}

function cpuLine(c: Costs): string {
  return [...c.cpuMs].map(([name, value]) => `${name} ${value === undefined ? "n/a" : value.toFixed(0)}`).join(", ");
}

function redisLine(a: Costs, b: Costs): string {
  const total = (c: Costs) => [...c.redis.values()].reduce((x, y) => x + y, 0);
  const names = [...new Set([...a.redis.keys(), ...b.redis.keys()])]
    .sort((x, y) => (b.redis.get(y) ?? 0) + (a.redis.get(y) ?? 0) - (b.redis.get(x) ?? 0) - (a.redis.get(x) ?? 0))
    .slice(0, 6);
  return (
    `total ${total(a)} | ${total(b)}; ` +
    names.map((name) => `${name} ${a.redis.get(name) ?? 0} | ${b.redis.get(name) ?? 0}`).join(", ")
  );
}
