import { findBatched, markBatched, type MikroORM } from "../../infra/orm.js";
import type { Logger } from "../../infra/logger.js";
import type { ActivityService } from "../activity/activity.service.js";
import type { NotificationService } from "../notification/notification.service.js";
import type { Agenda } from "agenda";
import { defineJob, type JobOutcome } from "../../infra/agenda.js";
import { NotificationKind } from "../notification/notification.enums.js";
import { User } from "../user/user.entity.js";
import { Follow } from "./follow.entity.js";
import { FOLLOW_JOB, type FollowJobData } from "./follow.subscriber.js";

/**
 * NEW_FOLLOWER to the followed user, once per follower: a follow undone before the job ran notifies
 * nobody, and following again after an unfollow does not notify again.
 */
export interface FollowJobDeps {
  orm: MikroORM;
  notifications: NotificationService;
  activity: ActivityService;
  logger: Logger;
}

export async function notifyFollow(deps: FollowJobDeps, data: FollowJobData): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  const follow = await findBatched(deps.orm.em, Follow, data.followId);
  if (!follow || follow.notifiedAt) return "skipped";
  const follower = await findBatched(deps.orm.em, User, follow.followerId.toHexString());
  const name = follower?.displayName ?? "Someone";
  await deps.notifications.deliver(em, [
    {
      recipientId: follow.followeeId,
      // Per pair, not per follow: unfollowing and following again must not notify again.
      dedupeKey: `follow:${follow.followerId.toHexString()}:${follow.followeeId.toHexString()}`,
      kind: NotificationKind.NEW_FOLLOWER,
      title: `${name} followed you`,
      body: `${name} will see your new posts.`,
      actorId: follow.followerId,
    },
  ]);
  await deps.activity.record(em, {
    dedupeKey: `user.followed:${follow.id}`,
    verb: "user.followed",
    actorId: follow.followerId,
    targetType: "User",
    targetId: follow.followeeId,
  });
  await markBatched(deps.orm.em, Follow, "notifiedAt", follow._id);
  return "done";
}

export function defineFollowJobs(agenda: Agenda, deps: FollowJobDeps): void {
  defineJob(agenda, deps.logger, FOLLOW_JOB, (data: FollowJobData) => notifyFollow(deps, data));
}
