import { defineJob, type Agenda, type JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import type { MikroORM } from "../../infra/orm.js";
import { NotificationRequest } from "../notification/notification-request.entity.js";
import type { NotificationService } from "../notification/notification.service.js";
import { DELIVER_JOB, type DeliverJobData } from "../notification/notification-request.subscriber.js";
import { User } from "../user/user.entity.js";
import { WELCOME_JOB, type WelcomeJobData } from "../user/user.subscriber.js";

export const SWEEP_JOB = "recovery.sweep";

/** Work younger than this may still be queued normally; older and unfinished means it was lost. */
const GRACE_MS = 60_000;
const BATCH = 500;

export interface RecoverySummary {
  /** Sign-ups and requests whose job was scheduled again. */
  users: number;
  requests: number;
  /** Stored notifications announced late because their writer stopped before announcing. */
  announced: number;
}

export interface RecoveryDeps {
  orm: MikroORM;
  notifications: NotificationService;
  scheduler: JobScheduler;
  logger: Logger;
}

/**
 * Scheduling happens after a commit, so a crash or a Redis outage between the two loses the job
 * while the data stays. The sweep finds committed work whose job never finished and schedules it
 * again; every job is idempotent, so a duplicate costs one no-op run. It also announces
 * notifications whose writer stopped between storing and announcing them.
 */
export async function sweep(deps: RecoveryDeps, now = new Date()): Promise<RecoverySummary> {
  const em = deps.orm.em.fork();
  const cutoff = new Date(now.getTime() - GRACE_MS);
  const users = await em.find(
    User,
    { welcomedAt: null, createdAt: { $lt: cutoff } },
    { fields: ["_id"], limit: BATCH },
  );
  const requests = await em.find(
    NotificationRequest,
    { completedAt: null, createdAt: { $lt: cutoff } },
    { fields: ["_id"], limit: BATCH },
  );
  for (const u of users) await deps.scheduler.now<WelcomeJobData>(WELCOME_JOB, { userId: u.id });
  for (const r of requests) await deps.scheduler.now<DeliverJobData>(DELIVER_JOB, { requestId: r.id });
  const announced = await deps.notifications.announceStale(em, cutoff, BATCH);
  const recovered = { users: users.length, requests: requests.length, announced };
  if (users.length + requests.length + announced > 0) deps.logger.warn(recovered, "recovered lost work");
  return recovered;
}

export async function defineRecoveryJobs(agenda: Agenda, deps: RecoveryDeps): Promise<void> {
  defineJob(agenda, deps.logger, SWEEP_JOB, async () => {
    await sweep(deps);
    return "done";
  });
  await agenda.every("1 minute", SWEEP_JOB);
}
