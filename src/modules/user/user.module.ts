import type { HeraldModule } from "../module.js";
import { unfinished } from "../module.js";
import { User } from "./user.entity.js";
import { UserResolver } from "./user.resolver.js";
import { WELCOME_JOB, userSubscribers } from "./user.subscriber.js";

/** Sign-up and sign-in. A committed sign-up schedules the welcome (run by the notification module). */
export const userModule: HeraldModule = {
  name: "user",
  entities: [User],
  resolvers: [UserResolver],
  api: ({ users }) => ({ resolvers: [new UserResolver(users)] }),
  signals: ({ scheduler, logger }) => userSubscribers(scheduler, logger),
  recovery: [
    unfinished({
      name: "users",
      entity: User,
      where: (cutoff) => ({ welcomedAt: null, createdAt: { $lt: cutoff } }),
      job: WELCOME_JOB,
      data: (ids) => ids.map((userId) => ({ userId })),
    }),
  ],
};
