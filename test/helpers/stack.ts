import { Redis } from "ioredis";
import { createContext } from "../../src/app.js";
import { loadConfig } from "../../src/config/config.js";
import { agendaScheduler, createAgenda, drainAgenda, type Agenda } from "../../src/infra/agenda.js";
import { createLogger } from "../../src/infra/logger.js";
import { createMailer } from "../../src/infra/mailer.js";
import { createOrm } from "../../src/infra/orm.js";
import { createPubSub, type Topics } from "../../src/infra/pubsub.js";
import { emailJobDeps } from "../../src/modules/email/email.module.js";
import type { EmailJobDeps } from "../../src/modules/email/email.jobs.js";
import { MODULES, entitiesOf } from "../../src/modules/index.js";
import type { ModuleContext } from "../../src/modules/module.js";
import { PasswordHasher } from "../../src/modules/user/password.js";
import { defineWorkerJobs } from "../../src/roles/worker.js";
import { testMongoUrl, testRedisUrl } from "./env.js";
import { uniqueDatabase } from "./herald.js";

/**
 * The worker's parts in this process, on real FerretDB/MongoDB and Redis, for job-level tests: the
 * same services and job definitions as a worker process (app.ts's createContext and MODULES).
 */
export interface WorkerStack extends ModuleContext {
  agenda: Agenda;
  email: EmailJobDeps;
  stop(): Promise<void>;
}

export async function startWorkerStack(prefix: string, options: { smtpUrl?: string } = {}): Promise<WorkerStack> {
  const mongoUrl = testMongoUrl(uniqueDatabase(prefix));
  // A short lock lifetime: Agenda's per-run liveness timers (half of it) would otherwise keep the
  // test process alive for 30 s after the last job. Without an SMTP server, email jobs record SKIPPED.
  const config = loadConfig({
    NODE_ENV: "test",
    MONGO_URL: mongoUrl,
    REDIS_URL: testRedisUrl(),
    JWT_SECRET: "test-jwt-and-unsubscribe-secret-0123456789",
    SERVICE_API_KEY: "test-service-key-0123456789",
    SMTP_URL: options.smtpUrl,
    EMAIL_FROM: "Herald <test@herald.localhost>",
    EMAIL_MAX_ATTEMPTS: "3",
    EMAIL_RETRY_DELAY_MS: "100",
    AGENDA_LOCK_LIFETIME_MS: "4000",
    AGENDA_PROCESS_EVERY_MS: "5000",
    WORKER_CONCURRENCY: "10",
    INBOX_HISTORY_SECONDS: "3600",
  });
  const logger = createLogger({ level: process.env["TEST_LOG_LEVEL"] ?? "warn", name: prefix });
  const { orm, db, close } = await createOrm({ mongoUrl, entities: entitiesOf(MODULES), logger, ensureIndexes: true });
  const redis = new Redis(config.redisUrl);
  const pubsub = createPubSub<Topics>({ publisher: redis, subscriber: new Redis(config.redisUrl) });
  const agenda = createAgenda({
    redis,
    notifications: true,
    namespace: db.databaseName,
    role: prefix,
    processEveryMs: config.agenda.processEveryMs,
    concurrency: config.agenda.concurrency,
    logger,
    lockLifetimeMs: config.agenda.lockLifetimeMs,
  });
  const scheduler = agendaScheduler(agenda);
  const mailer = config.smtpUrl ? createMailer(config.smtpUrl, config.email.from) : undefined;
  const passwords = new PasswordHasher();
  const ctx = createContext({
    config,
    logger,
    orm,
    redis,
    pubsub,
    scheduler,
    mailer,
    passwords,
    namespace: db.databaseName,
  });
  await defineWorkerJobs({ ...ctx, agenda });
  await agenda.start();
  return {
    ...ctx,
    agenda,
    email: emailJobDeps(ctx),
    stop: async () => {
      mailer?.close();
      await drainAgenda(agenda, 5000);
      await passwords.close();
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
