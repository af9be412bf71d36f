import "reflect-metadata";
import type { Config } from "./config/config.js";
import { agendaScheduler, createAgenda, drainAgenda } from "./infra/agenda.js";
import type { Logger } from "./infra/logger.js";
import { createOrm, pingMongo } from "./infra/orm.js";
import { createPubSub } from "./infra/pubsub.js";
import { createRedis, onReconnected, pingRedis } from "./infra/redis.js";
import { createMailer } from "./infra/mailer.js";
import { createEmailOutbox } from "./modules/email/email.outbox.js";
import { PreferencesResolver } from "./modules/preferences/preferences.resolver.js";
import { PreferencesService } from "./modules/preferences/preferences.service.js";
import { unsubscribeRoutes } from "./modules/preferences/unsubscribe.route.js";
import { ReminderResolver } from "./modules/reminder/reminder.resolver.js";
import { ReminderService } from "./modules/reminder/reminder.service.js";
import { reminderSubscribers } from "./modules/reminder/reminder.subscriber.js";
import { ENTITIES } from "./modules/entities.js";
import { ActivityResolver } from "./modules/activity/activity.resolver.js";
import { ActivityService } from "./modules/activity/activity.service.js";
import { FollowResolver } from "./modules/follow/follow.resolver.js";
import { FollowService } from "./modules/follow/follow.service.js";
import { followSubscribers } from "./modules/follow/follow.subscriber.js";
import { InboxService } from "./modules/notification/inbox.service.js";
import { NotificationRequestService } from "./modules/notification/notification-request.service.js";
import { CommentResolver, NotificationPostResolver, PostResolver } from "./modules/post/post.resolver.js";
import { PostService } from "./modules/post/post.service.js";
import { postSubscribers } from "./modules/post/post.subscriber.js";
import { notificationRequestSubscribers } from "./modules/notification/notification-request.subscriber.js";
import { NotificationResolver } from "./modules/notification/notification.resolver.js";
import { NotificationService } from "./modules/notification/notification.service.js";
import { InboxLog } from "./modules/notification/inbox-log.js";
import { INBOX, withInboxFeeds } from "./modules/notification/inbox-events.js";
import type { Topics } from "./modules/notification/notification.topics.js";
import { TokenService, UnsubscribeTokens } from "./modules/user/token.service.js";
import { UserResolver } from "./modules/user/user.resolver.js";
import { UserService } from "./modules/user/user.service.js";
import { PasswordHasher } from "./modules/user/password.js";
import { userSubscribers } from "./modules/user/user.subscriber.js";
import { startApi } from "./roles/api.js";
import { createHttp, listen } from "./roles/http.js";
import { defineWorkerJobs } from "./roles/worker.js";

type Stop = () => Promise<void>;

/**
 * Starts the roles named in ROLES on shared infrastructure and returns the function that stops
 * everything, in the reverse order of starting.
 */
export async function start(config: Config, logger: Logger): Promise<{ port: number; stop: Stop }> {
  const stops: { name: string; stop: Stop }[] = [];
  const onStop = (name: string, stop: Stop) => stops.unshift({ name, stop });
  const stopAll = async () => {
    for (const { name, stop } of stops) {
      try {
        await stop();
      } catch (err) {
        logger.error({ err, name }, "error while stopping");
      }
    }
  };

  try {
    const hasApi = config.roles.includes("api");
    const hasWorker = config.roles.includes("worker");
    const role = config.roles.join("+");

    const {
      orm,
      db,
      close: closeOrm,
    } = await createOrm({
      mongoUrl: config.mongoUrl,
      entities: ENTITIES,
      logger,
      ensureIndexes: true,
      timeoutMs: config.mongoTimeoutMs,
    });
    onStop("mongodb", closeOrm);
    const redis = createRedis(config.redisUrl, logger, `${role}:commands`);
    onStop("redis", async () => void (await redis.quit()));
    // A subscribing connection can run no other command, hence a client of its own.
    const pubsub = createPubSub<Topics>({
      publisher: redis,
      subscriber: createRedis(config.redisUrl, logger, `${role}:pubsub`),
    });
    onStop("pubsub", () => pubsub.close());

    const agenda = createAgenda({
      redis,
      notifications: config.agenda.notifications,
      namespace: db.databaseName,
      role,
      processEveryMs: config.agenda.processEveryMs,
      concurrency: config.agenda.concurrency,
      lockLifetimeMs: config.agenda.lockLifetimeMs,
      logger,
    });
    const scheduler = agendaScheduler(agenda);
    const events = orm.em.getEventManager();
    for (const subscriber of [
      ...userSubscribers(scheduler, logger),
      ...notificationRequestSubscribers(scheduler, logger),
      ...postSubscribers(scheduler, logger),
      ...followSubscribers(scheduler, logger),
      ...reminderSubscribers(scheduler, logger),
    ]) {
      events.registerSubscriber(subscriber);
    }

    const tokens = new TokenService(config.jwt.secret, config.jwt.ttlSeconds);
    const passwords = new PasswordHasher();
    onStop("password hashing", () => passwords.close());
    const users = new UserService(tokens, passwords);
    const preferences = new PreferencesService();
    const unsubscribeTokens = new UnsubscribeTokens(config.jwt.secret);
    const mailer = config.smtpUrl ? createMailer(config.smtpUrl, config.email.from) : undefined;
    if (mailer) onStop("mailer", () => Promise.resolve(mailer.close()));
    else logger.warn("SMTP_URL is not set: notifications are in-app only, no email is sent");
    const notifications = new NotificationService(
      pubsub,
      new InboxLog(redis, config.inboxHistory),
      preferences,
      mailer ? createEmailOutbox(scheduler) : undefined,
    );
    const activity = new ActivityService();

    const http = createHttp({
      logger,
      probes: [
        { name: "mongodb", check: () => pingMongo(db) },
        { name: "redis", check: () => pingRedis(redis) },
      ],
    });
    onStop("http", () => closeServer(http.server));

    if (hasWorker) {
      const email = {
        orm,
        mailer,
        scheduler,
        unsubscribe: unsubscribeTokens,
        publicUrl: config.publicUrl,
        maxAttempts: config.email.maxAttempts,
        retryDelayMs: config.email.retryDelayMs,
        lockLifetimeMs: config.agenda.lockLifetimeMs,
        logger,
      };
      const scheduleRecurring = await defineWorkerJobs({
        agenda,
        scheduler,
        orm,
        notifications,
        activity,
        logger,
        email,
        graceMs: config.agenda.recoveryGraceMs,
      });
      // Back from a Redis restart, which may have lost the recurring jobs (upserts: safe to repeat).
      onReconnected(redis, () => {
        scheduleRecurring().catch((err: unknown) =>
          logger.error({ err }, "could not schedule the recurring jobs again"),
        );
      });
    }
    // Producers start Agenda too: its notification channel connects only on start().
    await agenda.start();
    onStop("agenda", async () => {
      const finished = await drainAgenda(agenda, config.shutdownTimeoutMs);
      if (!finished) logger.warn("jobs still running at shutdown; their locks expire for another worker");
    });

    if (hasApi) {
      const posts = new PostService();
      const follows = new FollowService();
      const resolvers = new Map<Function, unknown>([
        [UserResolver, new UserResolver(users, follows)],
        [
          NotificationResolver,
          new NotificationResolver({
            inbox: new InboxService(notifications),
            requests: new NotificationRequestService(),
            users,
          }),
        ],
        [NotificationPostResolver, new NotificationPostResolver(posts)],
        [PostResolver, new PostResolver(posts, users)],
        [CommentResolver, new CommentResolver(posts, users)],
        [FollowResolver, new FollowResolver(follows)],
        [ActivityResolver, new ActivityResolver(activity, users)],
        [PreferencesResolver, new PreferencesResolver(preferences)],
        [ReminderResolver, new ReminderResolver(new ReminderService())],
      ]);
      const unsubscribe = unsubscribeRoutes({ orm, tokens: unsubscribeTokens, preferences, logger });
      http.app.get("/unsubscribe", unsubscribe.confirm);
      http.app.post("/unsubscribe", unsubscribe.unsubscribe);
      const stopApi = await startApi({
        config,
        logger,
        orm,
        pubsub: withInboxFeeds(pubsub.graphql, {
          position: (userId) => notifications.position(userId),
          after: (userId, from, limit) => notifications.eventsAfter(userId, from, limit),
          listen: (userId, onMessage) => pubsub.listen(INBOX, userId, onMessage),
          onResubscribed: (listener) => pubsub.onResubscribed(listener),
          unreadCount: (userId) => notifications.unreadCount(orm.em.fork(), userId),
        }),
        tokens,
        container: { get: (cls: Function) => resolvers.get(cls) },
        app: http.app,
        server: http.server,
      });
      onStop("api", stopApi);
    }

    const port = await listen(http.server, config.port);
    logger.info({ port, roles: config.roles }, "herald started");
    return { port, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function closeServer(server: import("node:http").Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
