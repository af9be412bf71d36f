import { Redis } from "ioredis";
import { UnsubscribeTokens } from "../../src/modules/user/token.service.js";
import { createMailer } from "../../src/infra/mailer.js";
import { createEmailOutbox } from "../../src/modules/email/email.outbox.js";
import type { EmailJobDeps } from "../../src/modules/email/email.jobs.js";
import { PreferencesService } from "../../src/modules/preferences/preferences.service.js";
import { agendaScheduler, createAgenda, drainAgenda, type Agenda, type JobScheduler } from "../../src/infra/agenda.js";
import { createLogger, type Logger } from "../../src/infra/logger.js";
import { createOrm, type MikroORM } from "../../src/infra/orm.js";
import { createPubSub, type PubSubBridge } from "../../src/infra/pubsub.js";
import { ENTITIES } from "../../src/modules/entities.js";
import { ActivityService } from "../../src/modules/activity/activity.service.js";
import { NotificationService } from "../../src/modules/notification/notification.service.js";
import { InboxLog } from "../../src/modules/notification/inbox-log.js";
import type { Topics } from "../../src/modules/notification/notification.topics.js";
import { defineWorkerJobs } from "../../src/roles/worker.js";
import { testMongoUrl, testRedisUrl } from "./env.js";
import { uniqueDatabase } from "./herald.js";

/** The worker's parts in this process, on real FerretDB/MongoDB and Redis, for job-level tests. */
export interface WorkerStack {
  orm: MikroORM;
  agenda: Agenda;
  scheduler: JobScheduler;
  notifications: NotificationService;
  activity: ActivityService;
  pubsub: PubSubBridge<Topics>;
  logger: Logger;
  email: EmailJobDeps;
  preferences: PreferencesService;
  stop(): Promise<void>;
}

export async function startWorkerStack(prefix: string, options: { smtpUrl?: string } = {}): Promise<WorkerStack> {
  const logger = createLogger({ level: process.env["TEST_LOG_LEVEL"] ?? "warn", name: prefix });
  const { orm, db, close } = await createOrm({
    mongoUrl: testMongoUrl(uniqueDatabase(prefix)),
    entities: ENTITIES,
    logger,
    ensureIndexes: true,
  });
  const redis = new Redis(testRedisUrl());
  const pubsub = createPubSub<Topics>({ publisher: redis, subscriber: new Redis(testRedisUrl()) });
  // A short lock lifetime: Agenda's per-run liveness timers (half of it) would otherwise keep the
  // test process alive for 30 s after the last job.
  const agenda = createAgenda({
    redis,
    notifications: true,
    namespace: db.databaseName,
    role: prefix,
    processEveryMs: 5000,
    concurrency: 10,
    logger,
    lockLifetimeMs: 4000,
  });
  const scheduler = agendaScheduler(agenda);
  const mailer = options.smtpUrl ? createMailer(options.smtpUrl, "Herald <test@herald.localhost>") : undefined;
  const preferences = new PreferencesService();
  const notifications = new NotificationService(
    pubsub,
    new InboxLog(redis, { historyEvents: 1000, historyMs: 3600_000 }),
    preferences,
    mailer ? createEmailOutbox(scheduler) : undefined,
  );
  const activity = new ActivityService();
  // Without an SMTP server, email jobs record SKIPPED.
  const email = {
    orm,
    mailer,
    scheduler,
    unsubscribe: new UnsubscribeTokens("test-unsubscribe-secret-0123456789abcdef"),
    publicUrl: "http://localhost:4000",
    maxAttempts: 3,
    retryDelayMs: 100,
    lockLifetimeMs: 4000,
    logger,
  };
  await defineWorkerJobs({ agenda, scheduler, orm, notifications, activity, logger, email });
  await agenda.start();
  return {
    orm,
    agenda,
    scheduler,
    notifications,
    activity,
    pubsub,
    logger,
    email,
    preferences,
    stop: async () => {
      mailer?.close();
      await drainAgenda(agenda, 5000);
      await pubsub.close();
      await redis.quit();
      await close();
    },
  };
}

/**
 * Counts what a Redis channel carries. Redis delivers one connection's messages in order, so once
 * a marker published after the work arrives, everything the work published has arrived too.
 */
export class ChannelRecorder {
  private readonly messages: string[] = [];
  private readonly client: Redis;
  private markerSeen: (() => void) | undefined;

  private constructor(private readonly channel: string) {
    this.client = new Redis(testRedisUrl());
    this.client.on("message", (_ch: string, message: string) => {
      if (message === ChannelRecorder.MARKER) this.markerSeen?.();
      else this.messages.push(message);
    });
  }

  private static readonly MARKER = '"__marker__"';

  static async open(channel: string): Promise<ChannelRecorder> {
    const recorder = new ChannelRecorder(channel);
    await recorder.client.subscribe(channel);
    return recorder;
  }

  /** Everything published on the channel before this call. */
  async settle(publisher: Redis): Promise<unknown[]> {
    const seen = new Promise<void>((resolve) => (this.markerSeen = resolve));
    await publisher.publish(this.channel, ChannelRecorder.MARKER);
    await seen;
    return this.messages.map((m) => JSON.parse(m) as unknown);
  }

  close(): void {
    this.client.disconnect();
  }
}
