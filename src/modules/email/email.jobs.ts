import { ObjectId } from "@mikro-orm/mongodb";
import type { Agenda } from "agenda";
import { backoffStrategies } from "agenda";
import type { Collection, Document } from "mongodb";
import { defineJob, type JobOutcome } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import type { Mailer } from "../../infra/mailer.js";
import type { MikroORM, EntityManager } from "../../infra/orm.js";
import { Notification } from "../notification/notification.entity.js";
import { DeliveryStatus, NotificationChannel } from "../notification/notification.enums.js";
import { toNotificationView } from "../notification/notification.types.js";
import type { UnsubscribeTokens } from "../user/token.service.js";
import { User } from "../user/user.entity.js";
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
 * Once the delivery says SENT, a retried or duplicated run sends nothing; every copy that does go
 * out carries the same Message-ID, so a resend after a crash is recognisable.
 */
export async function sendEmail(deps: EmailJobDeps, data: EmailJobData): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  const notification = ObjectId.isValid(data.notificationId)
    ? await em.findOne(Notification, { _id: new ObjectId(data.notificationId) })
    : null;
  if (!notification) return "skipped";
  const previous = notification.deliveries.find((d) => d.channel === NotificationChannel.EMAIL);
  if (previous?.status === DeliveryStatus.SENT || previous?.status === DeliveryStatus.FAILED) return "skipped";
  const attempts = (previous?.attempts ?? 0) + 1;
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
    return "skipped";
  }
  const view = toNotificationView(notification);
  const token = await deps.unsubscribe.issue(recipient.id, notification.kind);
  const rendered = renderNotificationEmail(view, {
    open: `${deps.publicUrl}/notifications/${notification.id}`,
    unsubscribe: `${deps.publicUrl}/unsubscribe?token=${encodeURIComponent(token)}`,
  });
  try {
    await deps.mailer.send({
      to: recipient.email,
      ...rendered,
      messageId: `<${notification.id}.${notification.kind.toLowerCase()}@herald>`,
      headers: unsubscribeHeaders(`${deps.publicUrl}/unsubscribe?token=${encodeURIComponent(token)}`),
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (attempts >= deps.maxAttempts) {
      await record(DeliveryStatus.FAILED, message);
      deps.logger.warn({ notification: notification.id, attempts, err: message }, "email failed for good");
      return "done";
    }
    await record(DeliveryStatus.PENDING, message);
    throw err;
  }
  await record(DeliveryStatus.SENT, null);
  return "done";
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
