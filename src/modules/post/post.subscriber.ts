import type { EventSubscriber } from "@mikro-orm/core";
import type { JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { recordOnChange, scheduleOnChange, scheduleOnCreate, scheduleOnCreateTogether } from "../../infra/signals.js";
import { PostEdit } from "./post-edit.entity.js";
import { Comment, Post, type CommentNotice } from "./post.entity.js";

export const FANOUT_JOB = "post.fanout";
export const COMMENT_JOB = "comment.notify";
export const EDIT_JOB = "post.edited";
export const DELETE_JOB = "post.deleted";
export const COMMENT_DELETE_JOB = "comment.deleted";

export interface DeleteJobData {
  postId: string;
  /**
   * The run a while after the post went, for a comment whose request read the post before its
   * deletion and wrote after the deletion removed the comments.
   */
  late?: boolean;
}

export interface CommentDeleteJobData {
  commentId: string;
}

export interface EditJobData {
  editId: string;
}

export interface FanoutJobData {
  postId: string;
}

/** One comment of a `comment.notify` job. */
export interface CommentRef {
  commentId: string;
  /**
   * What the notification says, as the request that wrote the comment read it: with it the job
   * writes at once. Absent from comments the recovery sweep (or an earlier version) scheduled,
   * whose comment, post and author the job reads first.
   */
  notice?: CommentNotice;
}

/** The comments that one flush wrote (or the recovery sweep found), notified by one job. */
export interface CommentJobData {
  comments: CommentRef[];
}

declare module "../../infra/agenda.js" {
  interface JobPayloads {
    [FANOUT_JOB]: FanoutJobData;
    [COMMENT_JOB]: CommentJobData;
    [EDIT_JOB]: EditJobData;
    [DELETE_JOB]: DeleteJobData;
    [COMMENT_DELETE_JOB]: CommentDeleteJobData;
  }
}

/** Comments per `comment.notify` job at most. */
export const COMMENTS_PER_JOB = 50;

/**
 * A committed post fans out to its author's followers; committed comments notify their posts'
 * authors; a post whose title or body really changed is recorded, with its title before, and the
 * committed record schedules the edit's follow-up; a post or comment marked deleted schedules its
 * removal.
 */
export function postSubscribers(scheduler: JobScheduler, logger: Logger): EventSubscriber[] {
  return [
    recordOnChange({
      entity: Post,
      fields: ["title", "body"],
      record: ({ entity, before, changed }) =>
        new PostEdit({
          postId: entity._id,
          authorId: entity.authorId,
          fields: changed,
          oldTitle: before.title ?? entity.title,
        }),
    }),
    scheduleOnCreate({
      entity: PostEdit,
      job: EDIT_JOB,
      data: (edit): EditJobData => ({ editId: edit.id }),
      scheduler,
      logger,
    }),
    scheduleOnChange({
      entity: Post,
      field: "deletedAt",
      when: (p) => p.deletedAt != null,
      job: DELETE_JOB,
      data: (p): DeleteJobData => ({ postId: p.id }),
      scheduler,
      logger,
    }),
    scheduleOnChange({
      entity: Comment,
      field: "deletedAt",
      when: (c) => c.deletedAt != null,
      job: COMMENT_DELETE_JOB,
      data: (c): CommentDeleteJobData => ({ commentId: c.id }),
      scheduler,
      logger,
    }),
    scheduleOnCreate({
      entity: Post,
      job: FANOUT_JOB,
      data: (p): FanoutJobData => ({ postId: p.id }),
      scheduler,
      logger,
    }),
    // Comments come many at once (concurrent requests share a flush): one job per flush.
    scheduleOnCreateTogether({
      entity: Comment,
      job: COMMENT_JOB,
      data: (comments): CommentJobData => ({
        comments: comments.map((c) => ({ commentId: c.id, ...(c.notice ? { notice: c.notice } : {}) })),
      }),
      max: COMMENTS_PER_JOB,
      scheduler,
      logger,
    }),
  ];
}
