import { defineJob, type Agenda } from "../../infra/agenda.js";
import type { ModuleContext } from "../module.js";

export const SWEEP_JOB = "recovery.sweep";
export const CLEANUP_JOB = "recovery.cleanup";

declare module "../../infra/agenda.js" {
  interface JobPayloads {
    [SWEEP_JOB]: Record<string, never>;
    [CLEANUP_JOB]: Record<string, never>;
  }
}

/** Records each task takes per sweep: a backlog is worked off a minute at a time. */
const BATCH = 500;

/** How many records each module's task recovered, by task name ("posts", "emails", …). */
export type RecoverySummary = Record<string, number>;

/**
 * Scheduling happens after a commit, so a crash or a Redis outage between the two loses the job
 * while the data stays. The sweep runs every module's recovery tasks, which find committed work
 * whose job never finished and schedule it again; every job is idempotent, so a duplicate costs
 * one no-op run.
 */
export async function sweep(ctx: ModuleContext, now = new Date()): Promise<RecoverySummary> {
  // Work younger than RECOVERY_GRACE_MS may still be queued normally; older and unfinished, it was lost.
  const cutoff = new Date(now.getTime() - ctx.config.agenda.recoveryGraceMs);
  const recovered: RecoverySummary = {};
  for (const task of ctx.modules.flatMap((m) => m.recovery ?? [])) {
    recovered[task.name] = await task.run(ctx, { cutoff, now, limit: BATCH });
  }
  if (Object.values(recovered).some((n) => n > 0)) ctx.logger.warn(recovered, "recovered lost work");
  return recovered;
}

/** How many records each module's clean-up deleted, by task name. */
export type CleanupSummary = Record<string, number>;

/**
 * Deletes the bookkeeping that only guards work in progress, which would otherwise grow with every
 * email and reminder (FerretDB v1 has no TTL indexes to do it).
 */
export async function cleanUp(ctx: ModuleContext, now = new Date()): Promise<CleanupSummary> {
  const em = ctx.orm.em.fork();
  const summary: CleanupSummary = {};
  for (const task of ctx.modules.flatMap((m) => m.cleanup ?? [])) summary[task.name] = await task.run(em, now);
  if (Object.values(summary).some((n) => n > 0)) ctx.logger.info(summary, "cleaned up finished bookkeeping");
  return summary;
}

/** Defines the sweep and the clean-up; answers what (re)schedules them to recur. */
export function defineRecoveryJobs(agenda: Agenda, ctx: ModuleContext): () => Promise<void> {
  defineJob(agenda, ctx.logger, SWEEP_JOB, async () => {
    await sweep(ctx);
    return "done";
  });
  defineJob(agenda, ctx.logger, CLEANUP_JOB, async () => {
    const summary = await cleanUp(ctx);
    return Object.values(summary).some((n) => n > 0) ? "done" : "skipped";
  });
  return async () => {
    await agenda.every("1 minute", SWEEP_JOB);
    await agenda.every("1 hour", CLEANUP_JOB);
  };
}
