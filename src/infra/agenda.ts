import { hostname } from "node:os";
import { setTimeout as delay } from "node:timers/promises";
import { Agenda, backoffStrategies, type BackoffStrategy, type Job } from "agenda";
import { RedisNotificationChannel } from "@agendajs/redis-backend";
import { RedisJobStore } from "./job-store.js";
import type { Logger } from "./logger.js";
import type { MetricSource, Metrics } from "./metrics.js";
import { SpanKind, contextOf, inSpan, traceCarrier } from "./tracing.js";
import type { Redis } from "./redis.js";

export type { Agenda };

/**
 * Every job's name and payload, as `Topics` is for pub/sub. Each module adds its own jobs where it
 * names them, by declaration merging:
 *
 *     declare module "../../infra/agenda.js" {
 *       interface JobPayloads { [FANOUT_JOB]: FanoutJobData }
 *     }
 *
 * so that scheduling or defining a job with a name no module declared, or with another job's
 * payload, is a compile error.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by the modules
export interface JobPayloads {}

export type JobName = keyof JobPayloads;

/** Schedules background work; the api role only schedules, the worker role also runs. */
export interface JobScheduler {
  now<Name extends JobName>(name: Name, data: JobPayloads[Name]): Promise<void>;
  /** Runs the job at `when`; the job is stored, so it survives restarts of every process. */
  at<Name extends JobName>(when: Date, name: Name, data: JobPayloads[Name]): Promise<void>;
}

export function createAgenda(options: {
  /**
   * Holds the jobs (see RedisJobStore), in normal mode: the notification channel opens its own
   * subscriber connection from it.
   */
  redis: Redis;
  /** Announce new jobs to workers at once; without it a job waits for a worker's next poll. */
  notifications: boolean;
  /**
   * Keeps the jobs of deployments that share a Redis apart: the MongoDB database name, since jobs
   * name documents of that database.
   */
  namespace: string;
  role: string;
  processEveryMs: number;
  concurrency: number;
  logger: Logger;
  /**
   * How long a job stays locked to a worker that went silent. Agenda also keeps a liveness timer
   * of half this per run alive after the run ends, which holds a process open that long.
   */
  lockLifetimeMs?: number;
  /** Counts and times every run; absent in tools that run jobs without a process around them. */
  metrics?: Metrics;
}): Agenda {
  const channel = options.notifications
    ? new RedisNotificationChannel({ redis: options.redis, channelName: `herald:jobs:${options.namespace}` })
    : undefined;
  const store = new RedisJobStore(options.redis, `herald:{jobs:${options.namespace}}:`);
  // Agenda publishes the start, success and complete of every run on a channel that can carry
  // them, and every process parses them to re-emit them as events; Herald listens to none, so the
  // channel carries new jobs only. Three publishes a job fewer, in every process.
  if (channel) Object.defineProperty(channel, "publishState", { value: undefined });
  // The channel is an EventEmitter: an unheard 'error' would crash the process.
  channel?.on("error", (err: Error) => options.logger.warn({ err }, "agenda notification channel error"));
  const agenda = new Agenda({
    name: `${hostname()}-${process.pid}-${options.role}`,
    backend: {
      name: "Redis",
      repository: store,
      // The client belongs to the process, which closes it after Agenda has stopped.
      ownsConnection: false,
      connect: () => store.connect(),
      disconnect: () => store.disconnect(),
    },
    // Without the channel a job created by another process waits for the next poll.
    ...(channel ? { notificationChannel: channel } : {}),
    processEvery: options.processEveryMs,
    maxConcurrency: options.concurrency,
    defaultConcurrency: options.concurrency,
    defaultLockLifetime: options.lockLifetimeMs ?? 60_000,
    removeOnComplete: true,
  });
  // The default handler swallows lock and connection errors; surface them.
  agenda.on("error", (err: Error) => options.logger.error({ err }, "agenda error"));
  if (channel) announceWhatARunLeavesDue(agenda, channel, options.logger);
  timeEveryJobPutBack(agenda);
  stores.set(agenda, store);
  if (options.metrics) metricsOf.set(agenda, options.metrics);
  return agenda;
}

const stores = new WeakMap<Agenda, RedisJobStore>();
const metricsOf = new WeakMap<Agenda, Metrics>();

/**
 * What the job queue looks like to Prometheus, read at each scrape from the job store: the due
 * jobs, and per job this process runs, how long its oldest due job has waited for a worker.
 */
export function jobQueueMetrics(agenda: Agenda): MetricSource[] {
  const store = stores.get(agenda);
  if (!store) return [];
  return [
    {
      name: "herald_jobs_due",
      help: "Jobs due now, waiting or running, of every worker sharing this job store",
      read: async () => [{ value: await store.backlog() }],
    },
    {
      name: "herald_job_queue_lag_seconds",
      help: "How long the oldest due job of each name has waited for a worker (0: none waits)",
      labelNames: ["job"],
      read: async () => {
        const waiting = await store.waiting(Object.keys(agenda.definitions));
        return [...waiting].map(([job, ms]) => ({ labels: { job }, value: ms / 1000 }));
      },
    },
  ];
}

/**
 * Agenda's processor holds a job due a little later in its queue and sets one timer for it, once
 * per job (`gotTimerToExecute`). A timer may fire up to a millisecond before the due time as Date
 * counts it; the processor then puts the job back, sees its timer already set, and sets none: the
 * job waits for the next poll, seconds away (a retry due in 50 ms ran 5 s late in the tests). The
 * queue forgets the flag of each job put back into it, so every put-back sets its timer again.
 */
function timeEveryJobPutBack(agenda: Agenda): void {
  const start = agenda.start.bind(agenda);
  agenda.start = async () => {
    await start();
    const queue = (agenda as unknown as { jobProcessor?: { jobQueue?: JobQueue } }).jobProcessor?.jobQueue;
    if (!queue || (queue as { retimed?: boolean }).retimed) return;
    const insert = queue.insert.bind(queue);
    Object.assign(queue, {
      retimed: true,
      insert: (job: Job) => {
        (job as Job & { gotTimerToExecute?: boolean }).gotTimerToExecute = false;
        insert(job);
      },
    });
  };
}

interface JobQueue {
  insert(job: Job): void;
}

/**
 * Agenda's workers look for jobs when a new one is announced and at each poll, never when a run
 * ends. So a retry (due a backoff step later) and a job held back by a lock limit (email batches)
 * would wait for the next poll, seconds away. When a run ends leaving its job due again, or with a
 * lock limit that may have kept others waiting, the job is announced like a new one; every worker
 * then takes what is due. The announcement follows Agenda's save of the run's outcome.
 */
function announceWhatARunLeavesDue(agenda: Agenda, channel: RedisNotificationChannel, logger: Logger): void {
  // Runs of other processes would come with `remote` set, were their states published (they are not).
  agenda.on("complete", (job: Job, remote?: boolean) => {
    if (remote === true) return;
    const limited = (agenda.definitions[job.attrs.name]?.lockLimit ?? 0) > 0;
    if (!job.attrs.nextRunAt && !limited) return;
    if (channel.state !== "connected" || !job.attrs._id) return;
    channel
      .publish({
        jobId: job.attrs._id,
        jobName: job.attrs.name,
        nextRunAt: job.attrs.nextRunAt ?? new Date(),
        priority: job.attrs.priority,
        timestamp: new Date(),
      })
      .catch((err: unknown) => logger.warn({ err, job: job.attrs.name }, "could not announce a due job"));
  });
}

export function agendaScheduler(agenda: Agenda): JobScheduler {
  return {
    now: async (name, data) => {
      await agenda.now(name, traced(data));
    },
    at: async (when, name, data) => {
      await agenda.schedule(when, name, traced(data));
    },
  };
}

/**
 * A job's data with the trace context of whoever schedules it (when tracing is on), so that its run
 * continues that trace. Handlers never read the field.
 */
function traced<Data>(data: Data): Data {
  const carrier = traceCarrier();
  return carrier && typeof data === "object" && data !== null ? { ...data, [TRACE_FIELD]: carrier } : data;
}

const TRACE_FIELD = "traceContext";

/**
 * Schedules one job per item after a commit, all at once (their Redis commands share round trips).
 * A throw from `afterFlush` would reject a flush whose data is already written, so failures are
 * logged; the recovery sweep reschedules what was missed.
 */
export async function scheduleEach<Item>(
  items: Item[],
  schedule: (item: Item) => Promise<void>,
  logger: Logger,
): Promise<void> {
  await Promise.all(
    items.map(async (item) => {
      try {
        await schedule(item);
      } catch (err) {
        logger.error({ err, item }, "could not schedule job after commit; the recovery sweep will retry");
      }
    }),
  );
}

/** What a handler may do to the run it is in. */
export interface JobRun {
  /**
   * Renews the run's lock; a run that outlives its lock unrenewed is cancelled and another worker
   * takes the job. Throws when Agenda has cancelled the run already.
   */
  touch(): Promise<void>;
  /**
   * True once the process has begun to shut down: a handler working through a list should take no
   * new item, and leave what is left to a later run.
   */
  readonly stopping: boolean;
}

/**
 * Between the batches of a long job: renews its lock, and when the worker is stopping, fails the
 * run so that its retry (on this worker or another) goes on from where it stopped.
 */
export async function keepGoing(run: JobRun): Promise<void> {
  if (run.stopping) throw new Error("the worker is stopping; the rest is left for a retry");
  await run.touch();
}

/** "skipped" means there was nothing to do (the record is gone or the work is done): not a failure. */
export type JobOutcome = "done" | "skipped";

/** Transient failures (a database or Redis blip) retry: 0.5 s, 1 s, 2 s, 4 s, 8 s, with jitter. */
const retryBackoff = backoffStrategies.exponential({ delay: 500, maxRetries: 5, jitter: 0.2, maxDelay: 30_000 });

/**
 * Jobs locked per job that may run at once, for a job with a concurrency of its own. Their locks
 * age while they wait, and Agenda 6.2.6 drops a held job whose lock expired without freeing its
 * place under the lock limit: enough such losses and the worker never locks that job again. So the
 * reserve is small, and such jobs keep each run short (see sendEmails).
 */
const LOCKED_AHEAD = 2;

/** Registers a handler that logs its outcome; a throw fails the run and Agenda retries it. */
export function defineJob<Name extends JobName>(
  agenda: Agenda,
  logger: Logger,
  name: Name,
  handler: (data: JobPayloads[Name], run: JobRun) => Promise<JobOutcome>,
  options: {
    backoff?: BackoffStrategy;
    /**
     * Runs of this job at once in one process, below the worker's overall concurrency: a kind of
     * job that comes by the hundred must leave room for the others.
     */
    concurrency?: number;
  } = {},
): void {
  const running = trackerOf(agenda);
  const metrics = metricsOf.get(agenda);
  agenda.define<JobPayloads[Name]>(
    name,
    async (job: Job<JobPayloads[Name]>) => {
      const started = performance.now();
      const id = job.attrs._id?.toString() ?? "";
      // One line per run, with the ids the job names: a notification's path reads from the log.
      const line = { job: name, id, ...idsOf(job.attrs.data), attempt: (job.attrs.failCount ?? 0) + 1 };
      const ended = (outcome: string) => {
        const seconds = (performance.now() - started) / 1000;
        metrics?.jobs.inc({ job: name, outcome });
        metrics?.jobSeconds.observe({ job: name, outcome }, seconds);
        return Math.round(seconds * 1000);
      };
      const data = job.attrs.data as JobPayloads[Name] & { [TRACE_FIELD]?: unknown };
      const span = { kind: SpanKind.CONSUMER, parent: contextOf(data[TRACE_FIELD]), attributes: spanAttributes(line) };
      try {
        const outcome = await inSpan(`job ${name}`, span, async (active) => {
          const result = await running.track(id, () =>
            handler(data, {
              touch: () => job.touch(),
              get stopping() {
                return running.stopping;
              },
            }),
          );
          active.setAttribute("herald.job.outcome", result);
          return result;
        });
        logger.info({ ...line, outcome, ms: ended(outcome) }, "job finished");
      } catch (err) {
        logger.warn({ ...line, err, outcome: "failed", ms: ended("failed") }, "job failed");
        throw err;
      }
    },
    {
      backoff: options.backoff ?? retryBackoff,
      // Agenda fetches more jobs only on its next poll, but starts the ones it holds as soon as a run
      // ends: a few held in reserve keep the runs back to back. Not many, as their locks age meanwhile.
      ...(options.concurrency
        ? { concurrency: options.concurrency, lockLimit: options.concurrency * LOCKED_AHEAD }
        : {}),
    },
  );
}

/** A run's log fields as span attributes, namespaced (herald.job, herald.job.postId, …). */
function spanAttributes(line: Record<string, string | number>): Record<string, string | number> {
  return Object.fromEntries(
    Object.entries(line).map(([key, value]) => [key === "job" ? "herald.job" : `herald.job.${key}`, value]),
  );
}

/** The ids a job's data names at its top level (postId, userId, …), for its log line. */
function idsOf(data: unknown): Record<string, string> {
  if (typeof data !== "object" || data === null) return {};
  return Object.fromEntries(
    Object.entries(data).filter((e): e is [string, string] => e[0].endsWith("Id") && typeof e[1] === "string"),
  );
}

/**
 * Counts the handlers running in this process, so shutdown knows when they are done, and keeps one
 * job from running twice here at once. Locks are atomic (one Redis script), but a lock that
 * expires while its run goes on lets a locker take the job again, in this process too. The second
 * run then waits for the first and ends as it did: ending at once would let Agenda remove the job under the first run, and
 * ending well after a failed first run would remove the job with its retry.
 */
class RunningHandlers {
  private count = 0;
  private readonly byJob = new Map<string, Promise<unknown>>();
  /** Set when draining begins. */
  stopping = false;

  async track(jobId: string, run: () => Promise<JobOutcome>): Promise<JobOutcome | "already running"> {
    const current = jobId ? this.byJob.get(jobId) : undefined;
    if (current) {
      await current;
      return "already running";
    }
    this.count += 1;
    const running = run();
    if (jobId) this.byJob.set(jobId, running);
    try {
      return await running;
    } finally {
      if (jobId) this.byJob.delete(jobId);
      this.count -= 1;
    }
  }

  /** Handlers of this process still at work, a run Agenda gave up on (its lock expired) included. */
  get running(): number {
    return this.count;
  }
}

const trackers = new WeakMap<Agenda, RunningHandlers>();

function trackerOf(agenda: Agenda): RunningHandlers {
  let tracker = trackers.get(agenda);
  if (!tracker) {
    tracker = new RunningHandlers();
    trackers.set(agenda, tracker);
  }
  return tracker;
}

/** What drainAgenda uses of Agenda 6.2.6's job processor, which is private (the version is pinned). */
interface JobProcessorInternals {
  readonly runningJobs: readonly Job[];
  readonly isJobQueueFilling: ReadonlyMap<string, boolean>;
  /** Starts no more runs, polls no more, stops listening for announcements. */
  stop(): Job[];
  shouldLock(name: string): boolean;
}

/** How often shutdown looks whether the last runs have ended. */
const DRAIN_POLL_MS = 20;

/**
 * Stops taking jobs, waits for the running ones, at most `timeoutMs`, then hands back every job this
 * process holds without running it; true when the running ones finished.
 *
 * A worker locks every due job of a name it runs into a queue of its own, and starts them as slots
 * free up: under a backlog it holds many more locks than runs. Agenda 6.2.6's drain() kept starting
 * those as slots freed up, and once it returned (or Herald cut it short) the ones still queued kept
 * their locks, and a queue filling under way kept locking more: no other worker, nor this one
 * restarted, could run them before their locks expired (AGENDA_LOCK_LIFETIME_MS, a minute by
 * default). It could also miss the end of the last run and wait out its whole timeout (a job emits
 * 'complete' before its removal, and drain() re-checks only on the tick after each 'complete').
 * So shutdown stops the processor itself, waits until its runs, its lock requests and Herald's
 * handlers have all ended, and then lets Agenda's stop() unlock whatever the processor still holds.
 */
export async function drainAgenda(agenda: Agenda, timeoutMs: number): Promise<boolean> {
  const tracker = trackerOf(agenda);
  tracker.stopping = true;
  const processor = (agenda as unknown as { jobProcessor?: JobProcessorInternals }).jobProcessor;
  if (!processor) return true;
  // No queued job starts from now on; the running ones go on.
  processor.stop();
  // A queue filling under way locks due jobs one after another until none is left. With every lock
  // refused, Agenda unlocks the job it has just taken and the filling ends.
  processor.shouldLock = () => false;
  // A run Agenda gave up on (its lock expired) has left runningJobs, but its handler may still be
  // at work, and what it uses must not be closed under it.
  const settled = () =>
    processor.runningJobs.length === 0 && processor.isJobQueueFilling.size === 0 && tracker.running === 0;
  const deadline = Date.now() + timeoutMs;
  while (!settled() && Date.now() < deadline) await delay(DRAIN_POLL_MS);
  const finished = settled();
  // Unlocks the jobs held and not running, and closes the notification channel; the Redis client
  // stays open, for the process to close.
  await agenda.stop(false);
  return finished;
}
