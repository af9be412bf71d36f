import { ChangeSetType, type EventSubscriber, type FlushEventArgs } from "@mikro-orm/core";
import { scheduleEach, type JobName, type JobPayloads, type JobScheduler } from "./agenda.js";
import { chunks } from "../common/chunks.js";
import type { Logger } from "./logger.js";

/**
 * The Django "post_save" signal: once a flush has written new `entity` records, schedule `job` for
 * each. It runs in afterFlush, so a job never sees a record that is not committed.
 */
export function scheduleOnCreate<T extends object, Name extends JobName>(options: {
  entity: new (...args: never[]) => T;
  job: Name;
  data: (created: T) => JobPayloads[Name];
  /** When to run the job; at once without it. */
  at?: (created: T) => Date;
  scheduler: JobScheduler;
  logger: Logger;
}): EventSubscriber {
  return {
    afterFlush: async ({ uow }: FlushEventArgs) => {
      await scheduleEach(
        createdBy(uow, options.entity),
        (entity) =>
          options.at
            ? options.scheduler.at(options.at(entity), options.job, options.data(entity))
            : options.scheduler.now(options.job, options.data(entity)),
        options.logger,
      );
    },
  };
}

/**
 * The same signal for records that come many at a time: one job for the new `entity` records of a
 * flush (at most `max` records a job) instead of one each, so a burst of writes costs the queue a
 * job per flush. The job must be idempotent per record, since a retry repeats all of them.
 */
export function scheduleOnCreateTogether<T extends object, Name extends JobName>(options: {
  entity: new (...args: never[]) => T;
  job: Name;
  data: (created: T[]) => JobPayloads[Name];
  max: number;
  scheduler: JobScheduler;
  logger: Logger;
}): EventSubscriber {
  return {
    afterFlush: async ({ uow }: FlushEventArgs) => {
      await scheduleEach(
        chunks(createdBy(uow, options.entity), options.max),
        (chunk) => options.scheduler.now(options.job, options.data(chunk)),
        options.logger,
      );
    },
  };
}

/** The records of `entity` that a flush inserted. */
function createdBy<T extends object>(uow: FlushEventArgs["uow"], entity: new (...args: never[]) => T): T[] {
  return uow
    .getChangeSets()
    .filter((cs) => cs.type === ChangeSetType.CREATE && cs.entity instanceof entity)
    .map((cs) => cs.entity as T);
}
