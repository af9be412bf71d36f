import { chunks } from "../../common/chunks.js";
import type { HeraldModule } from "../module.js";
import { unfinished } from "../module.js";
import { Comment, Post } from "./post.entity.js";
import { definePostJobs, eraseAuthor } from "./post.jobs.js";
import { CommentResolver, NotificationPostResolver, PostResolver } from "./post.resolver.js";
import { PostService } from "./post.service.js";
import {
  COMMENTS_PER_JOB,
  COMMENT_DELETE_JOB,
  COMMENT_JOB,
  DELETE_JOB,
  EDIT_JOB,
  FANOUT_JOB,
  postSubscribers,
} from "./post.subscriber.js";
import { PostEdit } from "./post-edit.entity.js";

/**
 * Posts and comments: a committed post fans out NEW_POST to its author's followers, committed
 * comments tell their posts' authors (NEW_COMMENT); an edit is recorded, and a deletion takes the
 * notifications it caused out of the inboxes.
 */
export const postModule: HeraldModule = {
  name: "post",
  entities: [Post, Comment, PostEdit],
  resolvers: [PostResolver, CommentResolver, NotificationPostResolver],
  api: ({ users }) => {
    const posts = new PostService();
    return {
      resolvers: [
        new PostResolver(posts, users),
        new CommentResolver(posts, users),
        new NotificationPostResolver(posts),
      ],
    };
  },
  signals: ({ scheduler, logger }) => postSubscribers(scheduler, logger),
  jobs: (ctx) => definePostJobs(ctx.agenda, ctx),
  erase: (ctx, userId, run) => eraseAuthor(ctx, userId, run),
  recovery: [
    unfinished({
      name: "posts",
      entity: Post,
      where: (cutoff) => ({ fanoutCompletedAt: null, createdAt: { $lt: cutoff } }),
      job: FANOUT_JOB,
      data: (ids) => ids.map((postId) => ({ postId })),
    }),
    // A deleted post or comment is still here until its deletion's job is done.
    unfinished({
      name: "deletedPosts",
      entity: Post,
      where: (cutoff) => ({ deletedAt: { $lt: cutoff } }),
      job: DELETE_JOB,
      data: (ids) => ids.map((postId) => ({ postId })),
    }),
    unfinished({
      name: "deletedComments",
      entity: Comment,
      where: (cutoff) => ({ deletedAt: { $lt: cutoff } }),
      job: COMMENT_DELETE_JOB,
      data: (ids) => ids.map((commentId) => ({ commentId })),
    }),
    unfinished({
      name: "postEdits",
      entity: PostEdit,
      where: (cutoff) => ({ doneAt: null, createdAt: { $lt: cutoff } }),
      job: EDIT_JOB,
      data: (ids) => ids.map((editId) => ({ editId })),
    }),
    unfinished({
      name: "comments",
      entity: Comment,
      where: (cutoff) => ({ notifiedAt: null, createdAt: { $lt: cutoff } }),
      job: COMMENT_JOB,
      data: (ids) =>
        chunks(ids, COMMENTS_PER_JOB).map((run) => ({ comments: run.map((commentId) => ({ commentId })) })),
    }),
  ],
};
