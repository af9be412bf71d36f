import { findBatched, findById, type MikroORM } from "../../infra/orm.js";
import { User } from "../user/user.entity.js";
import type { Logger } from "../../infra/logger.js";
import type { NotificationService } from "../notification/notification.service.js";
import type { Agenda } from "agenda";
import { defineJob, type JobOutcome } from "../../infra/agenda.js";
import { NotificationKind } from "../notification/notification.enums.js";
import { Reminder, ReminderDecision, ReminderStatus } from "./reminder.entity.js";
import { decide } from "./reminder.service.js";
import { REMINDER_JOB, type ReminderJobData } from "./reminder.subscriber.js";

export interface ReminderJobDeps {
  orm: MikroORM;
  notifications: NotificationService;
  logger: Logger;
}

/**
 * The REMINDER, unless it was cancelled, even while this run was starting (see ReminderOutcome);
 * dedupe key `reminder:<id>` makes a second run a no-op.
 *
 * The reminder leaves the pending list before its notification is announced, so a client that
 * refreshes the list on the event never sees it still pending. A run that stopped in between is
 * run again (its job stays locked until it expires, or is retried): a SENT reminder is delivered
 * again, which its dedupe key makes harmless.
 */
export async function fireReminder(deps: ReminderJobDeps, data: ReminderJobData): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  const reminder = await findById(em, Reminder, data.reminderId);
  if (!reminder || reminder.status === ReminderStatus.CANCELLED) return "skipped";
  // An account deleted before its data is all gone gets nothing more.
  const owner = await findBatched(deps.orm.em, User, reminder.userId.toHexString());
  if (!owner || owner.deletedAt) return "skipped";
  const { decision } = await decide(em, reminder._id, ReminderDecision.FIRE);
  if (decision === ReminderDecision.CANCEL) {
    // The cancel won; it may have stopped before recording its status.
    await em.nativeUpdate(
      Reminder,
      { _id: reminder._id, status: ReminderStatus.PENDING },
      { status: ReminderStatus.CANCELLED },
    );
    return "skipped";
  }
  await em.nativeUpdate(
    Reminder,
    { _id: reminder._id, status: ReminderStatus.PENDING },
    { status: ReminderStatus.SENT },
  );
  const { inserted } = await deps.notifications.deliver(em, [
    {
      recipientId: reminder.userId,
      dedupeKey: `reminder:${reminder.id}`,
      kind: NotificationKind.REMINDER,
      title: reminder.title,
      body: reminder.body,
    },
  ]);
  return inserted > 0 ? "done" : "skipped";
}

export function defineReminderJobs(agenda: Agenda, deps: ReminderJobDeps): void {
  defineJob(agenda, deps.logger, REMINDER_JOB, (data: ReminderJobData) => fireReminder(deps, data));
}
