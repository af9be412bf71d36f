import { keepGoing } from "../../infra/agenda.js";
import { deleteInBatches } from "../../infra/orm.js";
import type { HeraldModule } from "../module.js";
import { unfinished } from "../module.js";
import { PendingAnnouncement, PendingWithdrawal } from "./announcement.entity.js";
import { INBOX, withInboxFeeds } from "./inbox-events.js";
import { InboxService } from "./inbox.service.js";
import { NotificationRequest } from "./notification-request.entity.js";
import { NotificationRequestService } from "./notification-request.service.js";
import { DELIVER_JOB, notificationRequestSubscribers } from "./notification-request.subscriber.js";
import { Delivery, Notification } from "./notification.entity.js";
import { defineNotificationJobs } from "./notification.jobs.js";
import { NotificationResolver } from "./notification.resolver.js";

/**
 * Inboxes and their live stream, and `sendNotification`: a committed request schedules its
 * delivery. Its jobs also welcome new users. NotificationService, which every job that notifies
 * writes through, is one of the services all modules share (see ModuleContext).
 */
export const notificationModule: HeraldModule = {
  name: "notification",
  entities: [Notification, Delivery, NotificationRequest, PendingAnnouncement, PendingWithdrawal],
  resolvers: [NotificationResolver],
  api: ({ notifications, users, orm, pubsub, limits, metrics }) => ({
    resolvers: [
      new NotificationResolver({
        inbox: new InboxService(notifications),
        limits,
        requests: new NotificationRequestService(),
        users,
        pushed: (subscription, seconds) => metrics.pushDelay.observe({ subscription }, seconds),
      }),
    ],
    pubSub: (inner) =>
      withInboxFeeds(inner, {
        position: (userId) => notifications.position(userId),
        after: (userId, from, limit) => notifications.eventsAfter(userId, from, limit),
        listen: (userId, onMessage) => pubsub.listen(INBOX, userId, onMessage),
        onResubscribed: (listener) => pubsub.onResubscribed(listener),
        unreadCount: (userId) => notifications.unreadCount(orm.em.fork(), userId),
      }),
  }),
  signals: ({ scheduler, logger }) => notificationRequestSubscribers(scheduler, logger),
  jobs: (ctx) => defineNotificationJobs(ctx.agenda, ctx),
  // A deleted account's inbox, and its counter and stream in Redis.
  erase: async (ctx, userId, run) => {
    await deleteInBatches(ctx.orm.em.fork(), Notification, { recipientId: userId }, () => keepGoing(run));
    await ctx.notifications.forget(userId.toHexString());
  },
  recovery: [
    unfinished({
      name: "requests",
      entity: NotificationRequest,
      where: (cutoff) => ({ completedAt: null, createdAt: { $lt: cutoff } }),
      job: DELIVER_JOB,
      data: (ids) => ids.map((requestId) => ({ requestId })),
    }),
    // Stored notifications whose writer stopped before announcing them.
    {
      name: "announced",
      run: ({ orm, notifications }, { cutoff, limit }) => notifications.announceAbandoned(orm.em.fork(), cutoff, limit),
    },
    // Deleted notifications whose writer stopped before logging their DELETED events.
    {
      name: "withdrawn",
      run: ({ orm, notifications }, { cutoff, limit }) => notifications.finishWithdrawals(orm.em.fork(), cutoff, limit),
    },
  ],
};
