import { defineJob, type Agenda, type JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import type { MikroORM } from "../../infra/orm.js";
import { NotificationRequest } from "../notification/notification-request.entity.js";
import type { NotificationService } from "../notification/notification.service.js";
import { DELIVER_JOB } from "../notification/notification-request.subscriber.js";
import { User } from "../user/user.entity.js";
import type { FilterQuery } from "@mikro-orm/core";
import { EMAIL_JOB, emailBatches } from "../email/email.jobs.js";
import { Notification } from "../notification/notification.entity.js";
import { DeliveryStatus, NotificationChannel } from "../notification/notification.enums.js";
import { Reminder, ReminderOutcome, ReminderStatus } from "../reminder/reminder.entity.js";
import { EmailAttempt } from "../email/email-attempt.entity.js";
import { Digest } from "../email/digest.entity.js";
import { REMINDER_JOB } from "../reminder/reminder.subscriber.js";
import { Follow } from "../follow/follow.entity.js";
import { FOLLOW_JOB } from "../follow/follow.subscriber.js";
import { Comment, Post } from "../post/post.entity.js";
import { COMMENT_JOB, COMMENTS_PER_JOB, FANOUT_JOB } from "../post/post.subscriber.js";
import { WELCOME_JOB } from "../user/user.subscriber.js";

export const SWEEP_JOB = "recovery.sweep";
export const CLEANUP_JOB = "recovery.cleanup";

declare module "../../infra/agenda.js" {
  interface JobPayloads {
    [SWEEP_JOB]: Record<string, never>;
    [CLEANUP_JOB]: Record<string, never>;
  }
}

/**
 * Work younger than this may still be queued normally; older and unfinished means it was lost.
 * Longer than any job's lock lifetime, so that a job still running is not taken for lost.
 */
export const DEFAULT_GRACE_MS = 60_000;
const BATCH = 500;
/**
 * Emails wait longer: a large send queues many of them, and rescheduling one that is only waiting
 * adds a copy that finds nothing to do.
 */
const EMAIL_GRACE_MS = 10 * 60_000;

export interface RecoverySummary {
  /** Records whose job was scheduled again, by kind. */
  users: number;
  requests: number;
  posts: number;
  comments: number;
  follows: number;
  emails: number;
  reminders: number;
  /** Stored notifications announced late because their writer stopped before announcing. */
  announced: number;
}

export interface RecoveryDeps {
  orm: MikroORM;
  notifications: NotificationService;
  scheduler: JobScheduler;
  logger: Logger;
  /** See DEFAULT_GRACE_MS. */
  graceMs?: number;
}

/**
 * Scheduling happens after a commit, so a crash or a Redis outage between the two loses the job
 * while the data stays. The sweep finds committed work whose job never finished and schedules it
 * again; every job is idempotent, so a duplicate costs one no-op run. It also announces
 * notifications whose writer stopped between storing and announcing them.
 */
export async function sweep(deps: RecoveryDeps, now = new Date()): Promise<RecoverySummary> {
  const em = deps.orm.em.fork();
  const cutoff = new Date(now.getTime() - (deps.graceMs ?? DEFAULT_GRACE_MS));
  const users = await em.find(
    User,
    { welcomedAt: null, createdAt: { $lt: cutoff } },
    { fields: ["_id"], limit: BATCH },
  );
  const requests = await em.find(
    NotificationRequest,
    { completedAt: null, createdAt: { $lt: cutoff } },
    { fields: ["_id"], limit: BATCH },
  );
  const posts = await em.find(
    Post,
    { fanoutCompletedAt: null, createdAt: { $lt: cutoff } },
    { fields: ["_id"], limit: BATCH },
  );
  const comments = await em.find(
    Comment,
    { notifiedAt: null, createdAt: { $lt: cutoff } },
    { fields: ["_id"], limit: BATCH },
  );
  // A reminder still pending well after its time lost its job (scheduled after the commit).
  const reminders = await em.find(
    Reminder,
    { status: ReminderStatus.PENDING, sendAt: { $lt: cutoff } },
    { fields: ["_id"], limit: BATCH },
  );
  const follows = await em.find(
    Follow,
    { notifiedAt: null, createdAt: { $lt: cutoff } },
    { fields: ["_id"], limit: BATCH },
  );
  for (const u of users) await deps.scheduler.now(WELCOME_JOB, { userId: u.id });
  for (const r of requests) await deps.scheduler.now(DELIVER_JOB, { requestId: r.id });
  for (const p of posts) await deps.scheduler.now(FANOUT_JOB, { postId: p.id });
  for (let i = 0; i < comments.length; i += COMMENTS_PER_JOB) {
    const chunk = comments.slice(i, i + COMMENTS_PER_JOB);
    await deps.scheduler.now(COMMENT_JOB, { comments: chunk.map((c) => ({ commentId: c.id })) });
  }
  // Emails whose job was lost: planned at insert but never tried (a stop between storing and
  // scheduling, or a batch the sweep announced below on an earlier run), or whose retry is long due
  // (a stop between recording a failure and scheduling the next attempt).
  // (FerretDB v1 has no $elemMatch on fields, so the last condition is checked here.) Without email
  // configured nothing is planned, and the search, a scan of every notification on FerretDB (16 s at
  // 80,000 in a soak), is skipped; emails left PENDING by an earlier configuration wait for email.
  const emailCutoff = new Date(now.getTime() - EMAIL_GRACE_MS);
  const pendingEmails = deps.notifications.sendsEmail
    ? await em.find(
        Notification,
        { "deliveries.status": DeliveryStatus.PENDING, createdAt: { $lt: emailCutoff } } as FilterQuery<Notification>,
        { fields: ["_id", "deliveries"], limit: BATCH },
      )
    : [];
  const unsentEmails = pendingEmails.filter((n) =>
    n.deliveries.some(
      (d) =>
        d.channel === NotificationChannel.EMAIL &&
        d.status === DeliveryStatus.PENDING &&
        // Tried, and with no retry due: recorded by an earlier version, which let Agenda retry it.
        (d.attempts === 0 || !d.nextAttemptAt || d.nextAttemptAt < emailCutoff),
    ),
  );
  for (const f of follows) await deps.scheduler.now(FOLLOW_JOB, { followId: f.id });
  for (const batch of emailBatches(unsentEmails.map((n) => n.id))) await deps.scheduler.now(EMAIL_JOB, batch);
  for (const r of reminders) await deps.scheduler.now(REMINDER_JOB, { reminderId: r.id });
  const announced = await deps.notifications.announceAbandoned(em, cutoff, BATCH);
  const recovered = {
    users: users.length,
    requests: requests.length,
    posts: posts.length,
    comments: comments.length,
    follows: follows.length,
    emails: unsentEmails.length,
    reminders: reminders.length,
    announced,
  };
  if (Object.values(recovered).some((n) => n > 0)) deps.logger.warn(recovered, "recovered lost work");
  return recovered;
}

/**
 * An email's attempt claims and a reminder's decision matter while the email or the reminder is in
 * play, which is minutes; a day leaves room for any outage the sweep recovers from.
 */
const KEEP_CLAIMS_MS = 24 * 3600_000;
/**
 * A digest that went out (or was given up) matters until its period is over and no abandoned
 * batch can still name its notifications: a week is ample.
 */
const KEEP_DIGESTS_MS = 7 * 24 * 3600_000;

export interface CleanupSummary {
  emailAttempts: number;
  reminderDecisions: number;
  digests: number;
}

/**
 * Deletes the bookkeeping that only guards work in progress, which would otherwise grow with every
 * email and reminder (FerretDB v1 has no TTL indexes to do it).
 */
export async function cleanUp(deps: RecoveryDeps, now = new Date()): Promise<CleanupSummary> {
  const em = deps.orm.em.fork();
  const claimsBefore = new Date(now.getTime() - KEEP_CLAIMS_MS);
  const digestsBefore = new Date(now.getTime() - KEEP_DIGESTS_MS);
  const summary = {
    emailAttempts: await em.nativeDelete(EmailAttempt, { claimedAt: { $lt: claimsBefore } }),
    reminderDecisions: await em.nativeDelete(ReminderOutcome, { decidedAt: { $lt: claimsBefore } }),
    digests: await em.nativeDelete(Digest, {
      createdAt: { $lt: digestsBefore },
      $or: [{ sentAt: { $ne: null } }, { failedAt: { $ne: null } }],
    }),
  };
  if (Object.values(summary).some((n) => n > 0)) deps.logger.info(summary, "cleaned up finished bookkeeping");
  return summary;
}

/** Defines the sweep and the clean-up; answers what (re)schedules them to recur. */
export function defineRecoveryJobs(agenda: Agenda, deps: RecoveryDeps): () => Promise<void> {
  defineJob(agenda, deps.logger, SWEEP_JOB, async () => {
    await sweep(deps);
    return "done";
  });
  defineJob(agenda, deps.logger, CLEANUP_JOB, async () => {
    const summary = await cleanUp(deps);
    return Object.values(summary).some((n) => n > 0) ? "done" : "skipped";
  });
  return async () => {
    await agenda.every("1 minute", SWEEP_JOB);
    await agenda.every("1 hour", CLEANUP_JOB);
  };
}
