import type { HeraldModule } from "../module.js";
import { unfinished } from "../module.js";
import { Login, SpentRefreshToken } from "./login.entity.js";
import { SessionService } from "./session.service.js";
import { User } from "./user.entity.js";
import { UserResolver } from "./user.resolver.js";
import { ACCOUNT_JOB, WELCOME_JOB, userSubscribers } from "./user.subscriber.js";
import { defineAccountJobs, eraseLogins } from "./account.jobs.js";

/**
 * Sign-up, sign-in and leaving. A committed sign-up schedules the welcome (run by the notification
 * module); a deleted account has every module erase what it keeps of it.
 */
export const userModule: HeraldModule = {
  name: "user",
  entities: [User, Login, SpentRefreshToken],
  resolvers: [UserResolver],
  api: ({ users, tokens, logins, limits, config }) => ({
    resolvers: [new UserResolver(users, new SessionService(tokens, logins, config.jwt.refreshTtlSeconds), limits)],
  }),
  signals: ({ scheduler, logger }) => userSubscribers(scheduler, logger),
  jobs: (ctx) => defineAccountJobs(ctx),
  erase: eraseLogins,
  recovery: [
    // A deleted account is still here until its job is done.
    unfinished({
      name: "deletedAccounts",
      entity: User,
      where: (cutoff) => ({ deletedAt: { $lt: cutoff } }),
      job: ACCOUNT_JOB,
      data: (ids) => ids.map((userId) => ({ userId })),
    }),
    unfinished({
      name: "users",
      entity: User,
      where: (cutoff) => ({ welcomedAt: null, createdAt: { $lt: cutoff } }),
      job: WELCOME_JOB,
      data: (ids) => ids.map((userId) => ({ userId })),
    }),
  ],
  cleanup: [
    // A login past its refresh token's expiry, or ended, cannot be used again: a day on, it goes.
    {
      name: "expiredLogins",
      run: (em, now) => em.nativeDelete(Login, { refreshExpiresAt: { $lt: new Date(now.getTime() - DAY_MS) } }),
    },
    {
      name: "endedLogins",
      run: (em, now) => em.nativeDelete(Login, { endedAt: { $lt: new Date(now.getTime() - DAY_MS) } }),
    },
    // Kept to tell a spent refresh token (theft: the login ends) from garbage, while it could matter.
    {
      name: "spentRefreshTokens",
      run: (em, now) =>
        em.nativeDelete(SpentRefreshToken, { spentAt: { $lt: new Date(now.getTime() - KEEP_SPENT_MS) } }),
    },
  ],
};

const DAY_MS = 24 * 3600_000;
/** Longer than the default refresh token lifetime (30 days). */
const KEEP_SPENT_MS = 60 * DAY_MS;
