import "reflect-metadata";
import type { Config } from "./config/config.js";
import { agendaScheduler, createAgenda, drainAgenda, jobQueueMetrics } from "./infra/agenda.js";
import { Metrics, type MetricSource } from "./infra/metrics.js";
import { MAX_PERSISTED_QUERIES, PERSISTED_QUERY_TTL_SECONDS, persistedQueryCache } from "./infra/query-cache.js";
import type { Logger } from "./infra/logger.js";
import { createOrm, pingMongo } from "./infra/orm.js";
import { createPubSub } from "./infra/pubsub.js";
import { createRedis, onReconnected, pingRedis } from "./infra/redis.js";
import { createMailer, type Mailer } from "./infra/mailer.js";
import type { MikroORM } from "./infra/orm.js";
import type { PubSubBridge, Topics } from "./infra/pubsub.js";
import type { Redis } from "./infra/redis.js";
import type { JobScheduler } from "./infra/agenda.js";
import { MODULES, entitiesOf } from "./modules/index.js";
import type { ApiParts, HeraldModule, ModuleContext } from "./modules/module.js";
import { ActivityService } from "./modules/activity/activity.service.js";
import { createEmailOutbox } from "./modules/email/email.outbox.js";
import { InboxLog } from "./modules/notification/inbox-log.js";
import { NotificationService } from "./modules/notification/notification.service.js";
import { PreferencesService } from "./modules/preferences/preferences.service.js";
import { PasswordHasher } from "./modules/user/password.js";
import { Keyring, TokenService, UnsubscribeTokens } from "./modules/user/token.service.js";
import { LoginEnds } from "./modules/user/login-ends.js";
import { Authenticator } from "./modules/user/authenticator.js";
import { Limits } from "./infra/limits.js";
import { UserService } from "./modules/user/user.service.js";
import { startApi } from "./roles/api.js";
import { answerErrorsWithJson, createHttp, listen, runProbe, trustProxy, type Probe } from "./roles/http.js";
import { defineWorkerJobs } from "./roles/worker.js";
import { serveExampleApp } from "./roles/assets.js";

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
    const metrics = new Metrics({ role, process: true });

    const {
      orm,
      db,
      close: closeOrm,
    } = await createOrm({
      mongoUrl: config.mongoUrl,
      entities: entitiesOf(MODULES),
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
      metrics,
    });
    const scheduler = agendaScheduler(agenda);
    const mailer = config.smtpUrl ? createMailer(config.smtpUrl, config.email.from) : undefined;
    if (mailer) onStop("mailer", () => Promise.resolve(mailer.close()));
    else logger.warn("SMTP_URL is not set: notifications are in-app only, no email is sent");
    const passwords = new PasswordHasher();
    onStop("password hashing", () => passwords.close());
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
      metrics,
    });

    const events = orm.em.getEventManager();
    for (const subscriber of MODULES.flatMap((m) => m.signals?.(ctx) ?? [])) events.registerSubscriber(subscriber);

    const trust = trustProxy(config.trustProxy);
    const probes = [
      { name: "mongodb", check: () => pingMongo(db) },
      { name: "redis", check: () => pingRedis(redis) },
    ];
    metrics.add(dependencyHealth(probes));
    if (hasWorker) for (const source of jobQueueMetrics(agenda)) metrics.add(source);
    const http = createHttp({ logger, trustProxy: trust, probes, metrics, metricsToken: config.metricsToken });
    onStop("http", () => closeServer(http.server));

    if (hasWorker) {
      const scheduleRecurring = await defineWorkerJobs({ ...ctx, agenda });
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
      // Before the first request: a login ended elsewhere must be refused here from the start.
      const stopHearingEnds = await ctx.logins.listen();
      onStop("login ends", () => Promise.resolve(stopHearingEnds()));
      const parts = apiParts(MODULES, ctx);
      for (const part of parts) part.routes?.(http.app);
      const instances = new Map(parts.flatMap((p) => p.resolvers).map((r) => [r.constructor, r]));
      const stopApi = await startApi({
        config,
        logger,
        orm,
        pubsub: parts.reduce((inner, part) => part.pubSub?.(inner) ?? inner, pubsub.graphql),
        auth: new Authenticator(ctx.tokens, ctx.logins, orm),
        logins: ctx.logins,
        limits: ctx.limits,
        trustProxy: trust,
        container: { get: (cls: Function) => instances.get(cls) },
        app: http.app,
        server: http.server,
        metrics,
        persistedQueries: persistedQueryCache(redis, {
          namespace: db.databaseName,
          maxQueries: MAX_PERSISTED_QUERIES,
          ttlSeconds: PERSISTED_QUERY_TTL_SECONDS,
          logger,
        }),
      });
      onStop("api", stopApi);
      if (!serveExampleApp(http.app)) logger.info("the example app is not built: /app says how to build it");
    }

    answerErrorsWithJson(http.app, logger);
    const port = await listen(http.server, config.port);
    logger.info({ port, roles: config.roles }, "herald started");
    return { port, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * The services several modules share, on this process's infrastructure. Feature-specific services
 * are built by their module's manifest instead.
 */
export function createContext(infra: {
  config: Config;
  logger: Logger;
  orm: MikroORM;
  redis: Redis;
  pubsub: PubSubBridge<Topics>;
  scheduler: JobScheduler;
  mailer: Mailer | undefined;
  passwords: PasswordHasher;
  /** The MongoDB database name: keeps Redis keys of deployments sharing one Redis apart. */
  namespace: string;
  modules?: readonly HeraldModule[];
  /** What the process reports at /metrics; tools without one get a registry of their own. */
  metrics?: Metrics;
}): ModuleContext {
  const metrics = infra.metrics ?? new Metrics({ role: "tool" });
  const { config, redis, pubsub, scheduler, mailer } = infra;
  const keys = new Keyring(config.jwt.secret, config.jwt.previousSecrets);
  const preferences = new PreferencesService();
  return {
    config,
    logger: infra.logger,
    orm: infra.orm,
    redis,
    pubsub,
    scheduler,
    mailer,
    tokens: new TokenService(keys, config.jwt.ttlSeconds),
    logins: new LoginEnds(redis, pubsub, config.jwt.ttlSeconds * 1000),
    limits: new Limits(redis, config.limits, infra.logger, infra.namespace, (limit) => metrics.refusals.inc({ limit })),
    users: new UserService(infra.passwords),
    unsubscribeTokens: new UnsubscribeTokens(keys),
    preferences,
    notifications: new NotificationService(
      pubsub,
      new InboxLog(redis, config.inboxHistory),
      preferences,
      mailer ? createEmailOutbox(scheduler) : undefined,
    ),
    activity: new ActivityService(),
    modules: infra.modules ?? MODULES,
    metrics,
  };
}

/** Each module's part of the API; fails at start if a resolver class has no instance. */
function apiParts(modules: readonly HeraldModule[], ctx: ModuleContext): ApiParts[] {
  const parts: ApiParts[] = [];
  for (const module of modules) {
    const part = module.api?.(ctx);
    const built = new Set(part?.resolvers.map((r) => r.constructor));
    const missing = (module.resolvers ?? []).filter((cls) => !built.has(cls));
    if (missing.length > 0) {
      throw new Error(`module ${module.name} builds no instance of ${missing.map((c) => c.name).join(", ")}`);
    }
    if (part) parts.push(part);
  }
  return parts;
}

/** MongoDB and Redis as each scrape finds them: 1 when they answer the readiness probe in time. */
function dependencyHealth(probes: readonly Probe[]): MetricSource {
  return {
    name: "herald_dependency_up",
    help: "1 when the dependency answers a ping within 2 s (as /readyz checks), else 0",
    labelNames: ["dependency"],
    read: () =>
      Promise.all(probes.map(async (p) => ({ labels: { dependency: p.name }, value: (await runProbe(p)).ok ? 1 : 0 }))),
  };
}

function closeServer(server: import("node:http").Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
