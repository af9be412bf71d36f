import { ObjectId } from "@mikro-orm/mongodb";
import { defineJob, keepGoing, type JobOutcome, type JobRun } from "../../infra/agenda.js";
import { deleteInBatches } from "../../infra/orm.js";
import type { WorkerContext } from "../module.js";
import { Login } from "./login.entity.js";
import { User } from "./user.entity.js";
import { ACCOUNT_JOB, type AccountJobData } from "./user.subscriber.js";

/**
 * How long after the first run the second one comes, at least: longer than a job's lock and its
 * retries, so that every job that was already running for the user (a fan-out that had read them
 * among its followers, a request's delivery) has ended, and what it wrote is removed.
 */
export const LATE_RUN_DELAY_MS = 5 * 60_000;

function lateRunDelay(ctx: WorkerContext): number {
  return Math.max(LATE_RUN_DELAY_MS, 2 * ctx.config.agenda.lockLifetimeMs);
}

/**
 * After deleteAccount: every module removes what it keeps of the user (erase, later modules first:
 * posts take their notifications out of others' inboxes before the user's own inbox goes), then
 * the user itself goes. Each step works in batches and is safe to repeat, so a run that stopped
 * part-way (a crash, a deploy) is simply run again, by its retry or by the recovery sweep, which
 * finds the user still here. A second run a while later removes what jobs that were already
 * running wrote for the user meanwhile; from then on every job that wakes for them finds nothing.
 */
export async function eraseAccount(ctx: WorkerContext, data: AccountJobData, run: JobRun): Promise<JobOutcome> {
  if (!ObjectId.isValid(data.userId)) return "skipped";
  const userId = new ObjectId(data.userId);
  const em = ctx.orm.em.fork();
  const user = await em.findOne(User, { _id: userId });
  // Only an account marked deleted; the late run comes after the user is gone.
  if (user ? !user.deletedAt : !data.late) return "skipped";
  for (const module of [...ctx.modules].reverse()) {
    if (!module.erase) continue;
    await module.erase(ctx, userId, run);
    await keepGoing(run);
  }
  if (!user) return "done";
  // Scheduled before the user goes: a crash in between reruns this one, which schedules it again.
  await ctx.scheduler.at(new Date(Date.now() + lateRunDelay(ctx)), ACCOUNT_JOB, { userId: data.userId, late: true });
  await em.nativeDelete(User, { _id: userId });
  ctx.logger.info({ userId: data.userId }, "account deleted");
  return "done";
}

/**
 * The user module's share: the account's logins, each one still live ended on every instance first
 * (deleteAccount ends them, but a login may start between its end and the mark). The hashes of
 * the refresh tokens they spent name no one, and age out with the hourly clean-up.
 */
export async function eraseLogins(ctx: WorkerContext, userId: ObjectId, run: JobRun): Promise<void> {
  const em = ctx.orm.em.fork();
  const live = await em.find(Login, { userId, endedAt: null }, { fields: ["_id"] });
  if (live.length > 0) await ctx.logins.end(live.map((l) => l.id));
  await deleteInBatches(em, Login, { userId }, () => keepGoing(run));
}

export function defineAccountJobs(ctx: WorkerContext): void {
  defineJob(ctx.agenda, ctx.logger, ACCOUNT_JOB, (data: AccountJobData, run) => eraseAccount(ctx, data, run));
}
