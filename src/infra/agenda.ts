import { hostname } from "node:os";
import { Agenda, backoffStrategies, type Job } from "agenda";
import { MongoBackend } from "@agendajs/mongo-backend";
import { RedisNotificationChannel } from "@agendajs/redis-backend";
import type { Db } from "mongodb";
import type { Logger } from "./logger.js";
import type { Redis } from "./redis.js";

export type { Agenda };

/** Schedules background work; the api role only schedules, the worker role also runs. */
export interface JobScheduler {
  now<Data extends object>(name: string, data: Data): Promise<void>;
}

export function createAgenda(options: {
  db: Db;
  /** A client in normal mode: the channel opens its own subscriber connection from it. */
  redis: Redis | undefined;
  role: string;
  processEveryMs: number;
  concurrency: number;
  logger: Logger;
}): Agenda {
  const channel = options.redis ? new RedisNotificationChannel({ redis: options.redis }) : undefined;
  // The channel is an EventEmitter: an unheard 'error' would crash the process.
  channel?.on("error", (err: Error) => options.logger.warn({ err }, "agenda notification channel error"));
  const agenda = new Agenda({
    name: `${hostname()}-${process.pid}-${options.role}`,
    backend: new MongoBackend({ mongo: options.db }),
    // Without the channel a job created by another process waits for the next poll.
    ...(channel ? { notificationChannel: channel } : {}),
    processEvery: options.processEveryMs,
    maxConcurrency: options.concurrency,
    defaultConcurrency: options.concurrency,
    defaultLockLifetime: 60_000,
    removeOnComplete: true,
  });
  // The default handler swallows lock and connection errors; surface them.
  agenda.on("error", (err: Error) => options.logger.error({ err }, "agenda error"));
  return agenda;
}

export function agendaScheduler(agenda: Agenda): JobScheduler {
  return {
    now: async (name, data) => {
      await agenda.now(name, data);
    },
  };
}

/**
 * Schedules one job per id after a commit. A throw from `afterFlush` would reject a flush whose
 * data is already written, so failures are logged; the recovery sweep reschedules what was missed.
 */
export async function scheduleEach(
  ids: string[],
  schedule: (id: string) => Promise<void>,
  logger: Logger,
): Promise<void> {
  for (const id of ids) {
    try {
      await schedule(id);
    } catch (err) {
      logger.error({ err, id }, "could not schedule job after commit; the recovery sweep will retry");
    }
  }
}

/** "skipped" means there was nothing to do (the record is gone or the work is done): not a failure. */
export type JobOutcome = "done" | "skipped";

/** Transient failures (a database or Redis blip) retry: 0.5 s, 1 s, 2 s, 4 s, 8 s, with jitter. */
const retryBackoff = backoffStrategies.exponential({ delay: 500, maxRetries: 5, jitter: 0.2, maxDelay: 30_000 });

/** Registers a handler that logs its outcome; a throw fails the run and Agenda retries it. */
export function defineJob<Data>(
  agenda: Agenda,
  logger: Logger,
  name: string,
  handler: (data: Data) => Promise<JobOutcome>,
): void {
  agenda.define<Data>(
    name,
    async (job: Job<Data>) => {
      const started = performance.now();
      const outcome = await handler(job.attrs.data);
      const ms = Math.round(performance.now() - started);
      logger.debug({ job: name, id: job.attrs._id, outcome, ms }, "job finished");
    },
    { backoff: retryBackoff },
  );
}
