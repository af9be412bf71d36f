import type { Agenda } from "agenda";
import { defineJob, type JobOutcome } from "../../infra/agenda.js";
import { findBatched, findById, markBatched, type MikroORM } from "../../infra/orm.js";
import type { Logger } from "../../infra/logger.js";
import type { ActivityService } from "../activity/activity.service.js";
import { User } from "../user/user.entity.js";
import { WELCOME_JOB, type WelcomeJobData } from "../user/user.subscriber.js";
import { NotificationRequest } from "./notification-request.entity.js";
import { DELIVER_JOB, type DeliverJobData } from "./notification-request.subscriber.js";
import { NotificationKind } from "./notification.enums.js";
import type { NotificationService } from "./notification.service.js";

export interface NotificationJobDeps {
  orm: MikroORM;
  notifications: NotificationService;
  activity: ActivityService;
  logger: Logger;
}

/** Recipients are read and written in pages so a large request never holds everyone in memory. */
const RECIPIENT_PAGE = 500;

export async function welcome(deps: NotificationJobDeps, data: WelcomeJobData): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  const user = await findBatched(deps.orm.em, User, data.userId);
  if (!user || user.deletedAt) return "skipped";
  await deps.notifications.deliver(em, [
    {
      recipientId: user._id,
      dedupeKey: `welcome:${user.id}`,
      kind: NotificationKind.WELCOME,
      title: "Welcome to Herald",
      body: `Hi ${user.displayName}, you're all set. Notifications will show up here as they happen.`,
    },
  ]);
  await deps.activity.record(em, {
    dedupeKey: `user.registered:${user.id}`,
    verb: "user.registered",
    actorId: user._id,
    targetType: "User",
    targetId: user._id,
  });
  if (!user.welcomedAt) await markBatched(deps.orm.em, User, "welcomedAt", user._id);
  return "done";
}

export async function deliverRequest(deps: NotificationJobDeps, data: DeliverJobData): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  const request = await findById(em, NotificationRequest, data.requestId);
  if (!request || request.completedAt) return "skipped";
  for (let i = 0; i < request.recipientIds.length; i += RECIPIENT_PAGE) {
    // Recipients were checked when the request was accepted; an account deleted since gets nothing.
    const page = await em.find(
      User,
      { _id: { $in: request.recipientIds.slice(i, i + RECIPIENT_PAGE) }, deletedAt: null },
      { fields: ["_id"] },
    );
    await deps.notifications.deliver(
      em,
      page.map(({ _id: recipientId }) => ({
        recipientId,
        dedupeKey: `request:${request.id}:${recipientId.toHexString()}`,
        kind: NotificationKind.SYSTEM,
        title: request.title,
        body: request.body,
      })),
    );
    em.clear();
  }
  await em.nativeUpdate(NotificationRequest, { _id: request._id }, { completedAt: new Date() });
  return "done";
}

export function defineNotificationJobs(agenda: Agenda, deps: NotificationJobDeps): void {
  defineJob(agenda, deps.logger, WELCOME_JOB, (data: WelcomeJobData) => welcome(deps, data));
  defineJob(agenda, deps.logger, DELIVER_JOB, (data: DeliverJobData) => deliverRequest(deps, data));
}
