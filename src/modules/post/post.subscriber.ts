import { ChangeSetType, type EventSubscriber, type FlushEventArgs } from "@mikro-orm/core";
import { scheduleEach, type JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { Comment, Post } from "./post.entity.js";

export const FANOUT_JOB = "post.fanout";
export const COMMENT_JOB = "comment.notify";

export interface FanoutJobData {
  postId: string;
}

export interface CommentJobData {
  commentId: string;
}

/** A committed post fans out to its author's followers; a committed comment notifies the post's author. */
export class PostSubscriber implements EventSubscriber {
  constructor(
    private readonly scheduler: JobScheduler,
    private readonly logger: Logger,
  ) {}

  async afterFlush({ uow }: FlushEventArgs): Promise<void> {
    const created = uow.getChangeSets().filter((cs) => cs.type === ChangeSetType.CREATE);
    const posts = created.flatMap((cs) => (cs.entity instanceof Post ? [cs.entity.id] : []));
    const comments = created.flatMap((cs) => (cs.entity instanceof Comment ? [cs.entity.id] : []));
    await scheduleEach(posts, (postId) => this.scheduler.now<FanoutJobData>(FANOUT_JOB, { postId }), this.logger);
    await scheduleEach(
      comments,
      (commentId) => this.scheduler.now<CommentJobData>(COMMENT_JOB, { commentId }),
      this.logger,
    );
  }
}
