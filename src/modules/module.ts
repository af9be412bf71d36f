import type { EntityClass, EventSubscriber, FilterQuery } from "@mikro-orm/core";
import type { Express } from "express";
import type { PubSub } from "type-graphql";
import type { Config } from "../config/config.js";
import type { ObjectId } from "@mikro-orm/mongodb";
import type { Agenda, JobName, JobPayloads, JobRun, JobScheduler } from "../infra/agenda.js";
import type { Limits } from "../infra/limits.js";
import type { Logger } from "../infra/logger.js";
import type { Metrics } from "../infra/metrics.js";
import type { Mailer } from "../infra/mailer.js";
import type { EntityManager, MikroORM } from "../infra/orm.js";
import type { PubSubBridge, Topics } from "../infra/pubsub.js";
import type { Redis } from "../infra/redis.js";
import type { ActivityService } from "./activity/activity.service.js";
import type { NotificationService } from "./notification/notification.service.js";
import type { PreferencesService } from "./preferences/preferences.service.js";
import type { TokenService, UnsubscribeTokens } from "./user/token.service.js";
import type { UserService } from "./user/user.service.js";
import type { LoginEnds } from "./user/login-ends.js";

/**
 * A feature, as the process sees it: what it stores, what it adds to the API, which committed
 * writes schedule which jobs, the jobs themselves, and the unfinished work the recovery sweep must
 * pick up. Every part is optional. `MODULES` in ./index.ts lists them; app.ts walks that list.
 */
export interface HeraldModule {
  readonly name: string;
  /** MikroORM classes (entities and embeddables) this feature persists. */
  readonly entities?: readonly EntityClass<object>[];
  /** type-graphql resolver classes: the feature's part of the schema. */
  readonly resolvers?: readonly Function[];
  /** Runs in api processes: an instance of each class in `resolvers`, and anything else it serves. */
  api?(ctx: ModuleContext): ApiParts;
  /** The signals: subscribers that schedule a job once a flush has committed a write. */
  signals?(ctx: ModuleContext): EventSubscriber[];
  /**
   * Runs in worker processes: defines the feature's jobs. May answer a function that schedules its
   * recurring jobs, called at start and again after Redis comes back without its data.
   */
  jobs?(ctx: WorkerContext): (() => Promise<void>) | void;
  /** Committed work whose job may have been lost: the recovery sweep schedules it again. */
  readonly recovery?: readonly RecoveryTask[];
  /** Bookkeeping that only guards work in progress: the hourly clean-up deletes what is old. */
  readonly cleanup?: readonly CleanupTask[];
  /**
   * Removes what this feature keeps of a deleted account, for the user module's `account.deleted`
   * job, which calls each module's in the reverse of MODULES' order (later features first). Must
   * be safe to run again, and work in batches, calling `keepGoing(run)` between them.
   */
  erase?(ctx: WorkerContext, userId: ObjectId, run: JobRun): Promise<void>;
}

/** What every module may use: the infrastructure and the services several features share. */
export interface ModuleContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly orm: MikroORM;
  readonly redis: Redis;
  readonly pubsub: PubSubBridge<Topics>;
  readonly scheduler: JobScheduler;
  /** Absent when SMTP_URL is not set. */
  readonly mailer: Mailer | undefined;
  readonly users: UserService;
  readonly tokens: TokenService;
  /** Rate limits, counted in Redis across api instances. */
  readonly limits: Limits;
  /** Logins ended anywhere (logout, theft, from another device). */
  readonly logins: LoginEnds;
  readonly unsubscribeTokens: UnsubscribeTokens;
  readonly notifications: NotificationService;
  readonly preferences: PreferencesService;
  readonly activity: ActivityService;
  /** The modules this process runs (the recovery sweep walks their tasks). */
  readonly modules: readonly HeraldModule[];
  /** What this process reports at /metrics. */
  readonly metrics: Metrics;
}

export interface WorkerContext extends ModuleContext {
  readonly agenda: Agenda;
}

export interface ApiParts {
  /** One instance per class of the module's `resolvers`, built with the services it needs. */
  readonly resolvers: readonly object[];
  /** Plain HTTP routes beside /graphql. */
  routes?(app: Express): void;
  /** Wraps what subscriptions listen through (the notification module routes inbox feeds). */
  pubSub?(inner: PubSub): PubSub;
}

export interface RecoveryTask {
  /** What the sweep's summary calls what it recovered, e.g. "posts". */
  readonly name: string;
  /**
   * Schedules again the work left unfinished since before `cutoff`, at most `limit` records, and
   * answers how many. Jobs are idempotent: scheduling work that was only slow costs a no-op run.
   */
  run(ctx: ModuleContext, window: RecoveryWindow): Promise<number>;
}

export interface RecoveryWindow {
  readonly cutoff: Date;
  readonly now: Date;
  readonly limit: number;
}

export interface CleanupTask {
  readonly name: string;
  /** Deletes what is no longer needed at `now`; answers how many records went. */
  run(em: EntityManager, now: Date): Promise<number>;
}

/**
 * The common recovery: records of `entity` that `where` finds unfinished (their "done" field still
 * null past the cutoff) get their job again, `data` turning the records' ids into one or more jobs.
 */
export function unfinished<T extends { _id: unknown }, Name extends JobName>(task: {
  name: string;
  entity: EntityClass<T>;
  where: (cutoff: Date) => FilterQuery<T>;
  job: Name;
  data: (ids: string[]) => JobPayloads[Name][];
}): RecoveryTask {
  return {
    name: task.name,
    async run(ctx, { cutoff, limit }) {
      // Only the ids are read: a typed field list of a generic entity is more than TypeScript follows.
      const found: T[] = await ctx.orm.em
        .fork()
        .find(task.entity, task.where(cutoff), { fields: ["_id"] as never, limit });
      const ids = found.map((record) => String(record._id));
      for (const data of task.data(ids)) await ctx.scheduler.now(task.job, data);
      return ids.length;
    },
  };
}
