import { keepGoing } from "../../infra/agenda.js";
import { deleteInBatches } from "../../infra/orm.js";
import type { HeraldModule } from "../module.js";
import { unfinished } from "../module.js";
import { Follow } from "./follow.entity.js";
import { defineFollowJobs } from "./follow.jobs.js";
import { FollowResolver, FollowerCountResolver } from "./follow.resolver.js";
import { FollowService } from "./follow.service.js";
import { FOLLOW_JOB, followSubscribers } from "./follow.subscriber.js";

/** Following users: a committed follow tells the followed user (NEW_FOLLOWER). */
export const followModule: HeraldModule = {
  name: "follow",
  entities: [Follow],
  resolvers: [FollowResolver, FollowerCountResolver],
  api: () => {
    const follows = new FollowService();
    return { resolvers: [new FollowResolver(follows), new FollowerCountResolver(follows)] };
  },
  signals: ({ scheduler, logger }) => followSubscribers(scheduler, logger),
  jobs: (ctx) => defineFollowJobs(ctx.agenda, ctx),
  // A deleted account's follows, both ways: the follower counts, being counts, follow.
  erase: async (ctx, userId, run) => {
    const em = ctx.orm.em.fork();
    await deleteInBatches(em, Follow, { followerId: userId }, () => keepGoing(run));
    await deleteInBatches(em, Follow, { followeeId: userId }, () => keepGoing(run));
  },
  recovery: [
    unfinished({
      name: "follows",
      entity: Follow,
      where: (cutoff) => ({ notifiedAt: null, createdAt: { $lt: cutoff } }),
      job: FOLLOW_JOB,
      data: (ids) => ids.map((followId) => ({ followId })),
    }),
  ],
};
