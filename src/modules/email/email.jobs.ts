import { chunks } from "../../common/chunks.js";
import PQueue from "p-queue";
import type { Agenda } from "agenda";
import { backoffStrategies, type BackoffStrategy } from "agenda";
import type { Collection, Document } from "mongodb";
import { defineJob, type JobRun, type JobOutcome, type JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { MAILER_CONNECTIONS, type Mailer } from "../../infra/mailer.js";
import { findById, isDuplicateKeyError, type EntityManager, type MikroORM } from "../../infra/orm.js";
import { Notification } from "../notification/notification.entity.js";
import { DeliveryStatus, NotificationChannel, SECURITY_KINDS } from "../notification/notification.enums.js";
import { toDeliveryView, toNotificationView, type DeliveryView } from "../notification/notification.types.js";
import type { UnsubscribeTokens } from "../user/token.service.js";
import { User } from "../user/user.entity.js";
import { EmailAttempt } from "./email-attempt.entity.js";
import { renderNotificationEmail } from "./email.templates.js";
import { SpanKind, inSpan } from "../../infra/tracing.js";

/** Bulk mail: notifications written in batches (a fan-out, a request to many recipients). */
export const EMAIL_JOB = "email.send";
/**
 * Transactional mail: a notification written on its own (a welcome, a comment on your post, a new
 * follower, a reminder, a request to one recipient). Its own lane, so it never queues behind bulk.
 */
export const TRANSACTIONAL_EMAIL_JOB = "email.transactional";

export type EmailLane = typeof EMAIL_JOB | typeof TRANSACTIONAL_EMAIL_JOB;

/** Runs one send when an SMTP connection is free. */
export type SendSlots = (send: () => Promise<void>) => Promise<void>;

/**
 * Emails per job. One job per email costs a queue insert and a lock for each; on FerretDB v1 each
 * lock scans the job collection, so large sends were bound by the queue, not by SMTP.
 */
export const EMAIL_BATCH_SIZE = 250;

/**
 * Emails in progress per worker process, across all its jobs: the mailer's pool keeps this many SMTP
 * connections. An email is claimed only once it has a slot: a claim that then waited in a queue
 * for longer than a lock would look abandoned, and another run would send it again.
 */
const PARALLEL_SENDS = MAILER_CONNECTIONS;

/**
 * Batches run at once per worker. Two keep every SMTP slot busy; more would only wait for slots
 * while holding the worker's job slots, and in-app deliveries queued behind them would wait too.
 */
const PARALLEL_BATCHES = 2;

/** A run stops taking new emails after this share of the lock lifetime. */
const RUN_SHARE_OF_LOCK = 8;

export interface EmailJobData {
  notificationIds: string[];
}

declare module "../../infra/agenda.js" {
  interface JobPayloads {
    [EMAIL_JOB]: EmailJobData;
    [TRANSACTIONAL_EMAIL_JOB]: EmailJobData;
  }
}

export interface EmailJobDeps {
  orm: MikroORM;
  /** Absent when SMTP_URL is not set: emails are then recorded as SKIPPED. */
  mailer: Mailer | undefined;
  /** Schedules an email's next attempt after a failure. */
  scheduler: JobScheduler;
  unsubscribe: UnsubscribeTokens;
  publicUrl: string;
  maxAttempts: number;
  retryDelayMs: number;
  /** Agenda's lock lifetime: an unfinished attempt older than this belongs to a run that died. */
  lockLifetimeMs: number;
  logger: Logger;
  /** Told what became of each email (herald_emails_total); absent in tools. */
  counted?: (kind: "notification" | "digest", outcome: "sent" | "retried" | "failed" | "skipped") => void;
}

/** What became of one email in a run. */
type EmailOutcome = "sent" | "retrying" | "failed" | "skipped" | "busy";

/** Splits ids into the jobs that send them. */
export function emailBatches(notificationIds: string[]): EmailJobData[] {
  return chunks(notificationIds, EMAIL_BATCH_SIZE).map((batch) => ({ notificationIds: batch }));
}

/**
 * Sends a batch of notification emails, a few at a time over the mailer's pooled connections, and
 * keeps the job's lock alive while it works. Each email's failures are its own: it is retried in a
 * job of its own after Agenda's exponential backoff, so one refused address never repeats a batch.
 * A run takes new emails for an eighth of a lock at most: what it has not reached by then goes into
 * a new job, so that the batches Agenda holds in reserve never wait longer than their locks (see
 * LOCKED_AHEAD in infra/agenda.ts: a reserve batch waits for one run, which lasts that eighth plus
 * the sends in flight, each bounded by the mailer's timeouts).
 */
export async function sendEmails(
  deps: EmailJobDeps,
  data: EmailJobData,
  run: JobRun,
  slots: SendSlots,
  lane: EmailLane = EMAIL_JOB,
): Promise<JobOutcome> {
  const ids = jobIds(data);
  const outcomes = new Map<EmailOutcome, number>();
  const deadline = Date.now() + deps.lockLifetimeMs / RUN_SHARE_OF_LOCK;
  const failures: unknown[] = [];
  const busy: string[] = [];
  const later: string[] = [];
  const one = async (id: string) => {
    // After a failure the rest waits for Agenda's retry of the whole batch; what was sent is skipped then.
    if (failures.length > 0) return;
    if (run.stopping || Date.now() > deadline) {
      later.push(id);
      return;
    }
    try {
      const outcome = await sendOne(deps, id, lane);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (outcome !== "busy") deps.counted?.("notification", outcome === "retrying" ? "retried" : outcome);
      if (outcome === "busy") busy.push(id);
    } catch (err) {
      failures.push(err);
    }
  };
  // Without a touch Agenda cancels a run older than its lock and another worker takes the job. A
  // failed touch changes nothing here: the claims keep a second run from sending twice.
  const touch = () =>
    void run.touch().catch((err: unknown) => deps.logger.debug({ err }, "could not renew an email job's lock"));
  const keepAlive = setInterval(touch, deps.lockLifetimeMs / 4);
  try {
    await Promise.all(ids.map((id) => slots(() => one(id))));
  } finally {
    clearInterval(keepAlive);
  }
  if (busy.length > 0) {
    // Another run is sending these now, or died doing so; which one shows once its claims are older
    // than a lock. Look again then: by that time each is either recorded or abandoned.
    await deps.scheduler.at(new Date(Date.now() + deps.lockLifetimeMs), lane, { notificationIds: busy });
  }
  if (failures.length > 0) throw failures[0];
  if (later.length > 0) {
    // Shutting down: the job's retry (here or on another worker) sends the rest; what was sent is skipped then.
    if (run.stopping) throw new Error(`the worker is stopping; ${later.length} emails are left for a retry`);
    await deps.scheduler.now(lane, { notificationIds: later });
  }
  deps.logger.debug({ emails: ids.length, later: later.length, ...Object.fromEntries(outcomes) }, "email batch done");
  return (outcomes.get("skipped") ?? 0) === ids.length ? "skipped" : "done";
}

/** The job's ids. Jobs are stored data: one written by an earlier version names a single notification. */
function jobIds(data: EmailJobData | { notificationId?: unknown }): string[] {
  if ("notificationIds" in data && Array.isArray(data.notificationIds)) return [...new Set(data.notificationIds)];
  if ("notificationId" in data && typeof data.notificationId === "string") return [data.notificationId];
  return [];
}

/**
 * Sends one notification's email and records the outcome on its EMAIL delivery. Once the delivery
 * says SENT (or FAILED), a retried or duplicated run sends nothing, and two runs started together
 * make one attempt between them (EmailAttempt). Every copy that does go out carries the same
 * Message-ID, so a resend after a crash is recognisable.
 */
async function sendOne(deps: EmailJobDeps, notificationId: string, lane: EmailLane): Promise<EmailOutcome> {
  const em = deps.orm.em.fork();
  const notification = await findById(em, Notification, notificationId);
  const email = notification?.deliveries.find((d) => d.channel === NotificationChannel.EMAIL);
  if (!notification || email?.status !== DeliveryStatus.PENDING) return "skipped";
  // A copy of this job (the recovery sweep's, say) running before the retry it has scheduled.
  if (email.nextAttemptAt && email.nextAttemptAt.getTime() > Date.now() + clockSlack(deps)) return "skipped";

  const attempt = await claimAttempt(em, notification.id, email.attempts, deps.lockLifetimeMs);
  if (attempt === "busy") return "busy";
  const record = (status: DeliveryStatus, lastError: string | null, nextAttemptAt: Date | null = null) =>
    recordEmail(em, notification, {
      channel: NotificationChannel.EMAIL,
      status,
      attempts: Math.min(attempt, deps.maxAttempts),
      lastError,
      deliveredAt: status === DeliveryStatus.SENT ? new Date() : null,
      nextAttemptAt,
    });
  if (attempt > deps.maxAttempts) {
    await record(DeliveryStatus.FAILED, email.lastError ?? "every attempt stopped before it finished");
    return "failed";
  }

  const found = await em.findOne(User, { _id: notification.recipientId });
  // An account deleted meanwhile gets nothing more, though its data is not all gone yet.
  const recipient = found?.deletedAt ? null : found;
  if (!recipient || !deps.mailer) {
    await record(DeliveryStatus.SKIPPED, recipient ? "email is not configured (SMTP_URL)" : "recipient not found");
    return "skipped";
  }
  // A security notice cannot be turned off: it carries no unsubscribe link.
  const unsubscribe = SECURITY_KINDS.has(notification.kind)
    ? undefined
    : `${deps.publicUrl}/unsubscribe?token=${encodeURIComponent(await deps.unsubscribe.issue(recipient.id, notification.kind))}`;
  const rendered = renderNotificationEmail(toNotificationView(notification), {
    open: `${deps.publicUrl}/notifications/${notification.id}`,
    ...(unsubscribe ? { unsubscribe } : {}),
  });
  const mailer = deps.mailer;
  const message = {
    // An address of its own when the notice is for another one (an email changed: the old address).
    to: notification.emailTo ?? recipient.email,
    ...rendered,
    messageId: `<${notification.id}.${notification.kind.toLowerCase()}@herald>`,
    headers: unsubscribe ? unsubscribeHeaders(unsubscribe) : {},
  };
  const attributes = { "herald.notification.id": notification.id, "herald.email.attempt": attempt };
  try {
    await inSpan("email.send", { kind: SpanKind.CLIENT, attributes }, () => mailer.send(message));
  } catch (err) {
    // A send that outlived its claim may have been made again by another run, and recorded SENT:
    // a late failure must not overwrite that.
    if (await sentMeanwhile(em, notification)) return "skipped";
    const message = err instanceof Error ? err.message : String(err);
    const delay = attempt < deps.maxAttempts ? retryDelay(deps, attempt, err) : null;
    if (delay === null) {
      await record(DeliveryStatus.FAILED, message);
      deps.logger.warn({ notification: notification.id, attempts: attempt, err: message }, "email failed for good");
      return "failed";
    }
    // Recorded before it is scheduled: a stop in between leaves a due retry the sweep finds.
    const at = new Date(Date.now() + delay);
    await record(DeliveryStatus.PENDING, message, at);
    await deps.scheduler.at(at, lane, { notificationIds: [notificationId] });
    return "retrying";
  }
  await record(DeliveryStatus.SENT, null);
  return "sent";
}

async function sentMeanwhile(em: EntityManager, notification: Notification): Promise<boolean> {
  const now = await em.fork().findOne(Notification, { _id: notification._id }, { fields: ["deliveries"] });
  return !!now?.deliveries.some((d) => d.channel === NotificationChannel.EMAIL && d.status === DeliveryStatus.SENT);
}

/**
 * Tolerated difference between the clocks of the process that scheduled a retry and this one: at
 * most a second, and well below the first backoff step, which it must not cut short.
 */
function clockSlack(deps: EmailJobDeps): number {
  return Math.min(1000, deps.retryDelayMs / 10);
}

const backoffs = new WeakMap<EmailJobDeps, BackoffStrategy>();

/**
 * Agenda's exponential backoff with jitter, first step EMAIL_RETRY_DELAY_MS, after `attempt` failed;
 * null once EMAIL_MAX_ATTEMPTS attempts are used.
 */
export function retryDelay(deps: EmailJobDeps, attempt: number, err: unknown): number | null {
  let strategy = backoffs.get(deps);
  if (!strategy) {
    strategy = backoffStrategies.exponential({
      delay: deps.retryDelayMs,
      maxRetries: Math.max(0, deps.maxAttempts - 1),
      jitter: 0.2,
    });
    backoffs.set(deps, strategy);
  }
  return strategy({
    attempt,
    error: err instanceof Error ? err : new Error(String(err)),
    jobName: EMAIL_JOB,
    jobData: null,
  });
}

/**
 * Claims the attempt after the last recorded one. A recorded delivery of `n` attempts means that
 * attempts 1..n are over; a claim above that is in flight, or its run stopped mid-send, which shows
 * once the claim is older than a lock: that attempt counts, and the next one is claimed.
 */
async function claimAttempt(
  em: EntityManager,
  notificationId: string,
  recorded: number,
  lockMs: number,
): Promise<number | "busy"> {
  for (let attempt = recorded + 1; ; attempt += 1) {
    try {
      await em.insert(EmailAttempt, new EmailAttempt(notificationId, attempt));
      return attempt;
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
    }
    const other = await em.fork().findOne(EmailAttempt, { _id: EmailAttempt.key(notificationId, attempt) });
    if (other && Date.now() - other.claimedAt.getTime() < lockMs) return "busy";
  }
}

/** Replaces the EMAIL entry of the notification's deliveries (only this job writes it). */
async function recordEmail(em: EntityManager, notification: Notification, email: DeliveryView): Promise<void> {
  const others = notification.deliveries.filter((d) => d.channel !== NotificationChannel.EMAIL).map(toDeliveryView);
  const collection = em.getCollection(Notification) as unknown as Collection<Document>;
  await collection.updateOne({ _id: notification._id }, { $set: { deliveries: [...others, email] } });
}

export function defineEmailJobs(agenda: Agenda, deps: EmailJobDeps): void {
  // One queue for the mailer's connections: a transactional email takes the next free one ahead
  // of every bulk email waiting, while each lane has its own job slots in Agenda.
  const smtp = new PQueue({ concurrency: PARALLEL_SENDS });
  const lanes: [EmailLane, number][] = [
    [EMAIL_JOB, 0],
    [TRANSACTIONAL_EMAIL_JOB, 1],
  ];
  for (const [lane, priority] of lanes) {
    const slots: SendSlots = (send) => smtp.add(send, { priority });
    // Agenda's own retries (the default backoff) are for a failure of the run itself, such as a
    // database blip; a refused email schedules its next attempt itself.
    defineJob(agenda, deps.logger, lane, (data: EmailJobData, run) => sendEmails(deps, data, run, slots, lane), {
      concurrency: PARALLEL_BATCHES,
    });
  }
}

/** One-click unsubscribe (RFC 8058): mail clients POST to the link. */
export function unsubscribeHeaders(url: string): Record<string, string> {
  return { "List-Unsubscribe": `<${url}>`, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" };
}
