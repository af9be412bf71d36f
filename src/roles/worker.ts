import type { Agenda } from "../infra/agenda.js";
import type { Logger } from "../infra/logger.js";
import { defineNotificationJobs, type NotificationJobDeps } from "../modules/notification/notification.jobs.js";
import { defineRecoveryJobs } from "../modules/recovery/recovery.jobs.js";
import { defineFollowJobs } from "../modules/follow/follow.jobs.js";
import { definePostJobs } from "../modules/post/post.jobs.js";
import { defineEmailJobs, type EmailJobDeps } from "../modules/email/email.jobs.js";
import { defineDigestJobs } from "../modules/email/digest.jobs.js";
import { defineReminderJobs } from "../modules/reminder/reminder.jobs.js";
import type { JobScheduler } from "../infra/agenda.js";

export interface WorkerDeps extends NotificationJobDeps {
  email: EmailJobDeps;
  agenda: Agenda;
  scheduler: JobScheduler;
  logger: Logger;
  /** How old unfinished work must be before the recovery sweep redoes it. */
  graceMs?: number;
}

/**
 * Registers every job this process runs and schedules the recurring ones. Agenda only picks up jobs
 * it has a definition for, so an api-only process, which defines none, schedules without ever
 * running one. Answers what schedules the recurring jobs again: they live in the job store, and a
 * Redis that lost its data (no persistence) lost them too.
 */
export async function defineWorkerJobs(deps: WorkerDeps): Promise<() => Promise<void>> {
  defineNotificationJobs(deps.agenda, deps);
  definePostJobs(deps.agenda, deps);
  defineFollowJobs(deps.agenda, deps);
  defineEmailJobs(deps.agenda, deps.email);
  defineReminderJobs(deps.agenda, deps);
  const recurring = [defineDigestJobs(deps.agenda, deps.email), defineRecoveryJobs(deps.agenda, deps)];
  const schedule = async () => {
    for (const again of recurring) await again();
  };
  await schedule();
  return schedule;
}
