// How much background work is waiting. The one place that knows where the jobs are kept.
import type { Db } from "mongodb";

export interface Backlog {
  /** Due and not yet picked up. */
  queued: number;
  /** Locked by a worker: running, or next in its own queue. */
  running: number;
}

/**
 * Today Agenda keeps its jobs in MongoDB's `agendaJobs` collection (finished one-off jobs are
 * removed, recurring ones wait with a future nextRunAt). Jobs may move to a Redis backend; then
 * this lookup, and only it, has to follow them.
 */
export async function jobBacklog(db: Db): Promise<Backlog> {
  const jobs = db.collection("agendaJobs");
  const [queued, running] = await Promise.all([
    jobs.countDocuments({ nextRunAt: { $lte: new Date() }, lockedAt: null }),
    jobs.countDocuments({ lockedAt: { $ne: null } }),
  ]);
  return { queued, running };
}
