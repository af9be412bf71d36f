import { keepGoing } from "../../infra/agenda.js";
import { deleteInBatches } from "../../infra/orm.js";
import type { HeraldModule } from "../module.js";
import { unfinished } from "../module.js";
import { Reminder, ReminderOutcome, ReminderStatus } from "./reminder.entity.js";
import { defineReminderJobs } from "./reminder.jobs.js";
import { ReminderResolver } from "./reminder.resolver.js";
import { ReminderService } from "./reminder.service.js";
import { REMINDER_JOB, reminderSubscribers } from "./reminder.subscriber.js";

/** A fired reminder's decision matters while it is in play, minutes; a day leaves room for outages. */
const KEEP_DECISIONS_MS = 24 * 3600_000;

/** Reminders users set for themselves: a committed reminder schedules its job at its time. */
export const reminderModule: HeraldModule = {
  name: "reminder",
  entities: [Reminder, ReminderOutcome],
  resolvers: [ReminderResolver],
  api: () => ({ resolvers: [new ReminderResolver(new ReminderService())] }),
  signals: ({ scheduler, logger }) => reminderSubscribers(scheduler, logger),
  jobs: (ctx) => defineReminderJobs(ctx.agenda, ctx),
  // A deleted account's reminders: a reminder's job that wakes later finds none, and does nothing.
  erase: (ctx, userId, run) =>
    deleteInBatches(ctx.orm.em.fork(), Reminder, { userId }, () => keepGoing(run)).then(() => undefined),
  recovery: [
    // Still pending well after its time: its job was lost (it is scheduled after the commit).
    unfinished({
      name: "reminders",
      entity: Reminder,
      where: (cutoff) => ({ status: ReminderStatus.PENDING, sendAt: { $lt: cutoff } }),
      job: REMINDER_JOB,
      data: (ids) => ids.map((reminderId) => ({ reminderId })),
    }),
  ],
  cleanup: [
    {
      name: "reminderDecisions",
      run: (em, now) =>
        em.nativeDelete(ReminderOutcome, { decidedAt: { $lt: new Date(now.getTime() - KEEP_DECISIONS_MS) } }),
    },
  ],
};
