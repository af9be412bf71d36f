import { ObjectId } from "@mikro-orm/mongodb";
import type { Agenda } from "agenda";
import { backoffStrategies } from "agenda";
import type { Collection, Document } from "mongodb";
import { defineJob, type JobOutcome } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import type { Mailer } from "../../infra/mailer.js";
import { isDuplicateKeyError, type EntityManager, type MikroORM } from "../../infra/orm.js";
import { Notification } from "../notification/notification.entity.js";
import { DeliveryStatus, NotificationChannel } from "../notification/notification.enums.js";
import { toNotificationView } from "../notification/notification.types.js";
import type { UnsubscribeTokens } from "../user/token.service.js";
import { User } from "../user/user.entity.js";
import { EmailAttempt } from "./email-attempt.entity.js";
import { renderNotificationEmail } from "./email.templates.js";

export const EMAIL_JOB = "email.send";

export interface EmailJobData {
  notificationId: string;
}

export interface EmailJobDeps {
  orm: MikroORM;
  /** Absent when SMTP_URL is not set: emails are then recorded as SKIPPED. */
  mailer: Mailer | undefined;
  unsubscribe: UnsubscribeTokens;
  publicUrl: string;
  maxAttempts: number;
  retryDelayMs: number;
  /** Agenda's lock lifetime: an unfinished attempt older than this belongs to a run that died. */
  lockLifetimeMs: number;
  logger: Logger;
}

interface DeliveryRecord {
  channel: NotificationChannel;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  deliveredAt: Date | null;
}

/**
 * Sends one notification's email and records the outcome on its EMAIL delivery. A failure below the
 * attempt limit is thrown, so Agenda retries it with backoff; at the limit the delivery is FAILED.
 * Once the delivery says SENT, a retried or duplicated run sends nothing, and two runs started
 * together make one attempt between them (EmailAttempt). Every copy that does go out carries the
 * same Message-ID, so a resend after a crash is recognisable.
 */
export async function sendEmail(deps: EmailJobDeps, data: EmailJobData): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  const notification = ObjectId.isValid(data.notificationId)
    ? await em.findOne(Notification, { _id: new ObjectId(data.notificationId) })
    : null;
  if (!notification) return "skipped";
  const previous = notification.deliveries.find((d) => d.channel === NotificationChannel.EMAIL);
  if (previous?.status === DeliveryStatus.SENT || previous?.status === DeliveryStatus.FAILED) return "skipped";
  const recorded = previous?.attempts ?? 0;
  // Another run may be sending right now, or may have died doing so; which one is only known once
  // its claim is older than a lock. Either way this run must not end here: it fails, and Agenda
  // retries it later, when the other run has recorded SENT or its claim has gone stale.
  if (await inFlight(em, notification.id, recorded, deps.lockLifetimeMs)) {
    throw new Error(`attempt ${recorded} of this email is still in flight; retrying later`);
  }
  const attempts = recorded + 1;
  const claim = new EmailAttempt(notification.id, attempts);
  try {
    await em.insert(EmailAttempt, claim);
  } catch (err) {
    if (isDuplicateKeyError(err)) {
      throw new Error(`attempt ${recorded + 1} of this email was claimed by another run; retrying later`);
    }
    throw err;
  }
  const finish = () => em.nativeUpdate(EmailAttempt, { _id: claim._id }, { finishedAt: new Date() });
  // What was read above may predate another run that has since finished: look again, now that
  // this run holds the next attempt.
  const fresh = await em.fork().findOne(Notification, { _id: notification._id });
  const now = fresh?.deliveries.find((d) => d.channel === NotificationChannel.EMAIL);
  if (!fresh || now?.status === DeliveryStatus.SENT || now?.status === DeliveryStatus.FAILED) {
    await finish();
    return "skipped";
  }
  const record = (status: DeliveryStatus, lastError: string | null) =>
    recordEmail(em, notification, {
      channel: NotificationChannel.EMAIL,
      status,
      attempts,
      lastError,
      deliveredAt: status === DeliveryStatus.SENT ? new Date() : null,
    });

  const recipient = await em.findOne(User, { _id: notification.recipientId });
  if (!recipient || !deps.mailer) {
    await record(DeliveryStatus.SKIPPED, recipient ? "email is not configured (SMTP_URL)" : "recipient not found");
    await finish();
    return "skipped";
  }
  // Counted before sending: a run that dies mid-send has used its attempt.
  await record(DeliveryStatus.PENDING, previous?.lastError ?? null);
  const view = toNotificationView(notification);
  const token = await deps.unsubscribe.issue(recipient.id, notification.kind);
  const unsubscribe = `${deps.publicUrl}/unsubscribe?token=${encodeURIComponent(token)}`;
  const rendered = renderNotificationEmail(view, {
    open: `${deps.publicUrl}/notifications/${notification.id}`,
    unsubscribe,
  });
  try {
    await deps.mailer.send({
      to: recipient.email,
      ...rendered,
      messageId: `<${notification.id}.${notification.kind.toLowerCase()}@herald>`,
      headers: unsubscribeHeaders(unsubscribe),
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const final = attempts >= deps.maxAttempts;
    await record(final ? DeliveryStatus.FAILED : DeliveryStatus.PENDING, message);
    await finish();
    if (final) {
      deps.logger.warn({ notification: notification.id, attempts, err: message }, "email failed for good");
      return "done";
    }
    throw err;
  }
  await record(DeliveryStatus.SENT, null);
  await finish();
  return "done";
}

/**
 * Whether the last recorded attempt is still being made by another run: claimed, not finished, and
 * younger than a job lock. Older than that, its run died, and the attempt is over.
 */
async function inFlight(em: EntityManager, notificationId: string, attempt: number, lockMs: number): Promise<boolean> {
  if (attempt === 0) return false;
  const last = await em.findOne(EmailAttempt, { _id: `${notificationId}:${attempt}` });
  return !!last && !last.finishedAt && Date.now() - last.claimedAt.getTime() < lockMs;
}

/** Replaces the EMAIL entry of the notification's deliveries (only this job writes it). */
async function recordEmail(em: EntityManager, notification: Notification, email: DeliveryRecord): Promise<void> {
  const others = notification.deliveries
    .filter((d) => d.channel !== NotificationChannel.EMAIL)
    .map((d) => ({
      channel: d.channel,
      status: d.status,
      attempts: d.attempts,
      lastError: d.lastError ?? null,
      deliveredAt: d.deliveredAt ?? null,
    }));
  const collection = em.getCollection(Notification) as unknown as Collection<Document>;
  await collection.updateOne({ _id: notification._id }, { $set: { deliveries: [...others, email] } });
}

export function defineEmailJobs(agenda: Agenda, deps: EmailJobDeps): void {
  defineJob(agenda, deps.logger, EMAIL_JOB, (data: EmailJobData) => sendEmail(deps, data), {
    backoff: backoffStrategies.exponential({
      delay: deps.retryDelayMs,
      maxRetries: Math.max(0, deps.maxAttempts - 1),
      jitter: 0.2,
    }),
  });
}

/** One-click unsubscribe (RFC 8058): mail clients POST to the link. */
export function unsubscribeHeaders(url: string): Record<string, string> {
  return { "List-Unsubscribe": `<${url}>`, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" };
}
