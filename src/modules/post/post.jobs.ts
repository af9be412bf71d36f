import { ObjectId } from "@mikro-orm/mongodb";
import type { Agenda } from "agenda";
import { defineJob, type JobOutcome } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import type { MikroORM } from "../../infra/orm.js";
import type { ActivityService } from "../activity/activity.service.js";
import { Follow } from "../follow/follow.entity.js";
import { NotificationKind } from "../notification/notification.enums.js";
import type { NotificationService } from "../notification/notification.service.js";
import { User } from "../user/user.entity.js";
import { Comment, Post } from "./post.entity.js";
import { COMMENT_JOB, FANOUT_JOB, type CommentJobData, type FanoutJobData } from "./post.subscriber.js";

export interface PostJobDeps {
  orm: MikroORM;
  notifications: NotificationService;
  activity: ActivityService;
  logger: Logger;
}

/** Followers read and notified per step: one bulk insert each, and the resume point saved after it. */
export const FANOUT_PAGE = 1000;

const id = (value: string) => (ObjectId.isValid(value) ? new ObjectId(value) : null);

/**
 * NEW_POST to every follower of the author, in pages ordered by follow id. After each page the
 * post records how far it got, so a run that stopped (crash, deploy) resumes there; a page written
 * twice is harmless because each notification's dedupe key is `post:<post>:<follower>`.
 */
export async function fanout(deps: PostJobDeps, data: FanoutJobData): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  const postId = id(data.postId);
  const post = postId ? await em.findOne(Post, { _id: postId }) : null;
  if (!post || post.fanoutCompletedAt) return "skipped";
  const author = await em.findOne(User, { _id: post.authorId });
  const name = author?.displayName ?? "Someone";
  let cursor = post.fanoutCursor ?? null;
  for (;;) {
    const page = await em.find(
      Follow,
      { followeeId: post.authorId, ...(cursor ? { _id: { $gt: cursor } } : {}) },
      { orderBy: { _id: "asc" }, limit: FANOUT_PAGE, fields: ["_id", "followerId"] },
    );
    const last = page.at(-1);
    if (!last) break;
    await deps.notifications.deliver(
      em,
      page.map((f) => ({
        recipientId: f.followerId,
        dedupeKey: `post:${post.id}:${f.followerId.toHexString()}`,
        kind: NotificationKind.NEW_POST,
        title: `New post from ${name}`,
        body: post.title,
        actorId: post.authorId,
        postId: post._id,
      })),
    );
    cursor = last._id;
    await em.nativeUpdate(Post, { _id: post._id }, { fanoutCursor: cursor });
    em.clear();
    if (page.length < FANOUT_PAGE) break;
  }
  await deps.activity.record(em, {
    dedupeKey: `post.created:${post.id}`,
    verb: "post.created",
    actorId: post.authorId,
    targetType: "Post",
    targetId: post._id,
  });
  await em.nativeUpdate(Post, { _id: post._id }, { fanoutCompletedAt: new Date() });
  return "done";
}

/** NEW_COMMENT to the post's author, unless they wrote the comment themselves. */
export async function notifyComment(deps: PostJobDeps, data: CommentJobData): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  const commentId = id(data.commentId);
  const comment = commentId ? await em.findOne(Comment, { _id: commentId }) : null;
  const post = comment ? await em.findOne(Post, { _id: comment.postId }) : null;
  if (!comment || !post || comment.notifiedAt) return "skipped";
  if (!post.authorId.equals(comment.authorId)) {
    const commenter = await em.findOne(User, { _id: comment.authorId });
    await deps.notifications.deliver(em, [
      {
        recipientId: post.authorId,
        dedupeKey: `comment:${comment.id}`,
        kind: NotificationKind.NEW_COMMENT,
        title: `${commenter?.displayName ?? "Someone"} commented on "${post.title}"`,
        body: excerpt(comment.body),
        actorId: comment.authorId,
        postId: post._id,
        commentId: comment._id,
      },
    ]);
  }
  await deps.activity.record(em, {
    dedupeKey: `comment.added:${comment.id}`,
    verb: "comment.added",
    actorId: comment.authorId,
    targetType: "Comment",
    targetId: comment._id,
  });
  await em.nativeUpdate(Comment, { _id: comment._id }, { notifiedAt: new Date() });
  return "done";
}

const EXCERPT_LENGTH = 280;

function excerpt(text: string): string {
  return text.length <= EXCERPT_LENGTH ? text : `${text.slice(0, EXCERPT_LENGTH - 1)}…`;
}

export function definePostJobs(agenda: Agenda, deps: PostJobDeps): void {
  defineJob(agenda, deps.logger, FANOUT_JOB, (data: FanoutJobData) => fanout(deps, data));
  defineJob(agenda, deps.logger, COMMENT_JOB, (data: CommentJobData) => notifyComment(deps, data));
}
