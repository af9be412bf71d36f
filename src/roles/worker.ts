import type { WorkerContext } from "../modules/module.js";

/**
 * Defines the jobs of every module this process runs and schedules the recurring ones. Agenda only
 * picks up jobs it has a definition for, so an api-only process, which defines none, schedules
 * without ever running one. Answers what schedules the recurring jobs again: they live in the job
 * store, and a Redis that lost its data (no persistence) lost them too.
 */
export async function defineWorkerJobs(ctx: WorkerContext): Promise<() => Promise<void>> {
  const recurring = ctx.modules.map((m) => m.jobs?.(ctx)).filter((again) => again !== undefined);
  const schedule = async () => {
    for (const again of recurring) await again();
  };
  await schedule();
  return schedule;
}
