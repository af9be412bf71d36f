import { keepGoing } from "../../infra/agenda.js";
import { deleteInBatches } from "../../infra/orm.js";
import type { HeraldModule } from "../module.js";
import { unfinished } from "../module.js";
import { AccountChange } from "./account-change.entity.js";
import { defineSecurityJobs } from "./security.jobs.js";
import { ACCOUNT_CHANGE_JOB, securitySubscribers } from "./security.subscriber.js";

/**
 * Security notices: a change of a user's password or email address (a field change, signalled with
 * the value before it) tells the account's owner, in-app and by email, and cannot be turned off.
 */
export const securityModule: HeraldModule = {
  name: "security",
  entities: [AccountChange],
  signals: ({ scheduler, logger }) => securitySubscribers(scheduler, logger),
  jobs: (ctx) => defineSecurityJobs(ctx.agenda, ctx),
  erase: (ctx, userId, run) =>
    deleteInBatches(ctx.orm.em.fork(), AccountChange, { userId }, () => keepGoing(run)).then(() => undefined),
  recovery: [
    unfinished({
      name: "accountChanges",
      entity: AccountChange,
      where: (cutoff) => ({ notifiedAt: null, createdAt: { $lt: cutoff } }),
      job: ACCOUNT_CHANGE_JOB,
      data: (ids) => ids.map((changeId) => ({ changeId })),
    }),
  ],
};
