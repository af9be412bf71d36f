import type { EventSubscriber } from "@mikro-orm/core";
import type { JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { scheduleOnCreate } from "../../infra/signals.js";
import { Comment, Post, type CommentNotice } from "./post.entity.js";

export const FANOUT_JOB = "post.fanout";
export const COMMENT_JOB = "comment.notify";

export interface FanoutJobData {
  postId: string;
}

export interface CommentJobData {
  commentId: string;
  /**
   * What the notification says, as the request that wrote the comment read it: with it the job
   * writes at once. Absent from jobs the recovery sweep (or an earlier version) scheduled, which
   * read the comment, its post and its author first.
   */
  notice?: CommentNotice;
}

/** A committed post fans out to its author's followers; a committed comment notifies the post's author. */
export function postSubscribers(scheduler: JobScheduler, logger: Logger): EventSubscriber[] {
  return [
    scheduleOnCreate({
      entity: Post,
      job: FANOUT_JOB,
      data: (p): FanoutJobData => ({ postId: p.id }),
      scheduler,
      logger,
    }),
    scheduleOnCreate({
      entity: Comment,
      job: COMMENT_JOB,
      data: (c): CommentJobData => ({ commentId: c.id, ...(c.notice ? { notice: c.notice } : {}) }),
      scheduler,
      logger,
    }),
  ];
}
