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

/**
 * The Django "post_save" signal for one field: once a flush has committed an update of `entity`
 * that really changed `field` (a save that changes nothing has no change set) and `when` holds,
 * schedule `job`. The field itself is what the recovery sweep finds unfinished work by, so it
 * needs no record of its own.
 */
export function scheduleOnChange<T extends object, Name extends JobName>(options: {
  entity: new (...args: never[]) => T;
  field: keyof T & string;
  when: (changed: T) => boolean;
  job: Name;
  data: (changed: T) => JobPayloads[Name];
  scheduler: JobScheduler;
  logger: Logger;
}): EventSubscriber {
  return {
    afterFlush: async ({ uow }: FlushEventArgs) => {
      const changed = uow
        .getChangeSets()
        .filter(
          (cs) =>
            cs.type === ChangeSetType.UPDATE &&
            cs.entity instanceof options.entity &&
            options.field in cs.payload &&
            options.when(cs.entity),
        )
        .map((cs) => cs.entity as T);
      await scheduleEach(changed, (entity) => options.scheduler.now(options.job, options.data(entity)), options.logger);
    },
  };
}

/**
 * The Django "pre_save" signal for chosen fields: when a flush updates `entity` and one of `fields`
 * really changes (a save that changes nothing has no change set, and is silent), `record` turns
 * the values before and after into a record written by the same flush, an outbox entry. The
 * record's own post_save signal (scheduleOnCreate) then schedules its job once the flush has
 * committed, and the recovery sweep finds the records whose job never finished. The values before
 * the change exist only now: the job could not read them later.
 */
export function recordOnChange<T extends object>(options: {
  entity: new (...args: never[]) => T;
  fields: readonly (keyof T & string)[];
  record: (change: { entity: T; before: Partial<T>; changed: (keyof T & string)[] }) => object | null;
}): EventSubscriber {
  return {
    onFlush: ({ em, uow }: FlushEventArgs) => {
      for (const cs of uow.getChangeSets()) {
        if (cs.type !== ChangeSetType.UPDATE || !(cs.entity instanceof options.entity)) continue;
        const changed = options.fields.filter((field) => field in cs.payload);
        if (changed.length === 0) continue;
        const record = options.record({
          entity: cs.entity,
          before: (cs.originalEntity ?? {}) as Partial<T>,
          changed,
        });
        if (!record) continue;
        em.persist(record);
        uow.computeChangeSet(record);
      }
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
