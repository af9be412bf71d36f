import { findById } from "../../infra/orm.js";
import type { Agenda } from "agenda";
import { defineJob, type JobOutcome } from "../../infra/agenda.js";
import { NotificationKind } from "../notification/notification.enums.js";
import type { PostJobDeps } from "../post/post.jobs.js";
import { Reminder, ReminderDecision, ReminderStatus } from "./reminder.entity.js";
import { decide } from "./reminder.service.js";
import { REMINDER_JOB, type ReminderJobData } from "./reminder.subscriber.js";

/**
 * The REMINDER, unless it was cancelled, even while this run was starting (see ReminderOutcome);
 * dedupe key `reminder:<id>` makes a second run a no-op.
 */
export async function fireReminder(deps: PostJobDeps, data: ReminderJobData): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  const reminder = await findById(em, Reminder, data.reminderId);
  if (!reminder || reminder.status !== ReminderStatus.PENDING) return "skipped";
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
  await deps.notifications.deliver(em, [
    {
      recipientId: reminder.userId,
      dedupeKey: `reminder:${reminder.id}`,
      kind: NotificationKind.REMINDER,
      title: reminder.title,
      body: reminder.body,
    },
  ]);
  await em.nativeUpdate(
    Reminder,
    { _id: reminder._id, status: ReminderStatus.PENDING },
    { status: ReminderStatus.SENT },
  );
  return "done";
}

export function defineReminderJobs(agenda: Agenda, deps: PostJobDeps): void {
  defineJob(agenda, deps.logger, REMINDER_JOB, (data: ReminderJobData) => fireReminder(deps, data));
}
