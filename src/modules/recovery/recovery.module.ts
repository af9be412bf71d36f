import type { HeraldModule } from "../module.js";
import { defineRecoveryJobs } from "./recovery.jobs.js";

/**
 * The safety net of every other module: each minute it runs their `recovery` tasks, each hour
 * their `cleanup` tasks. It knows no feature itself.
 */
export const recoveryModule: HeraldModule = {
  name: "recovery",
  jobs: (ctx) => defineRecoveryJobs(ctx.agenda, ctx),
};
