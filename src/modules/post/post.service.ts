import { ObjectId } from "@mikro-orm/mongodb";
import { createBatched, findBatched, type EntityManager } from "../../infra/orm.js";
import { notFound } from "../../graphql/errors.js";
import { User } from "../user/user.entity.js";
import { Comment, Post, commentExcerpt } from "./post.entity.js";
import type { AddCommentInput, CreatePostInput, UpdatePostInput } from "./post.inputs.js";

/** Posts and comments: the writes whose subscribers fan notifications out. */
export class PostService {
  async create(em: EntityManager, authorId: string, input: CreatePostInput): Promise<Post> {
    const post = new Post(new ObjectId(authorId), input.title.trim(), input.body);
    // The post subscribers schedule post.fanout once it is committed.
    await createBatched(em, post);
    return post;
  }

  async addComment(em: EntityManager, authorId: string, input: AddCommentInput): Promise<Comment> {
    const [post, commenter] = await Promise.all([this.find(em, input.postId), findBatched(em, User, authorId)]);
    if (!post) throw notFound("Post");
    const comment = new Comment(post._id, new ObjectId(authorId), input.body);
    comment.notice = {
      postId: post.id,
      commenterId: authorId,
      commenterName: commenter?.displayName ?? "Someone",
      recipientId: post.authorId.toHexString(),
      postTitle: post.title,
      excerpt: commentExcerpt(input.body),
    };
    // Written with the other comments of the moment; the post subscribers then schedule
    // comment.notify for each, once they are committed.
    await createBatched(em, comment);
    return comment;
  }

  /**
   * Changes its author's post; anyone else's is NOT_FOUND. A field given its current value changes
   * nothing: no change set, no signal, no activity.
   */
  async update(em: EntityManager, authorId: string, id: string, input: UpdatePostInput): Promise<Post> {
    const post = await this.ownPost(em, authorId, id);
    if (input.title !== undefined && input.title !== null) post.title = input.title.trim();
    if (input.body !== undefined && input.body !== null) post.body = input.body;
    // The post's edit signal records what changed, and schedules post.edited once committed.
    await em.flush();
    return post;
  }

  /**
   * Deletes its author's post; anyone else's is NOT_FOUND. Marked here, so that it is gone for
   * every reader at once and its fan-out stops; the post's deletion signal schedules the job that
   * takes its notifications out of the inboxes and removes its comments and the post itself.
   */
  async delete(em: EntityManager, authorId: string, id: string): Promise<void> {
    const post = await this.ownPost(em, authorId, id);
    post.deletedAt = new Date();
    await em.flush();
  }

  /** Deletes its author's comment, as `delete` does a post: its NEW_COMMENT leaves the inbox. */
  async deleteComment(em: EntityManager, authorId: string, id: string): Promise<void> {
    const comment = ObjectId.isValid(id) ? await em.findOne(Comment, { _id: new ObjectId(id) }) : null;
    if (!comment || comment.deletedAt || comment.authorId.toHexString() !== authorId) throw notFound("Comment");
    comment.deletedAt = new Date();
    await em.flush();
  }

  /** Posts are public to signed-in users; an unknown, malformed or deleted one is simply not found. */
  async find(em: EntityManager, id: string): Promise<Post | null> {
    const post = await findBatched(em, Post, id);
    return post && !post.deletedAt ? post : null;
  }

  async findComment(em: EntityManager, id: string): Promise<Comment | null> {
    const comment = await findBatched(em, Comment, id);
    return comment && !comment.deletedAt ? comment : null;
  }

  /** The caller's own post, not deleted: anything else is NOT_FOUND, alike. */
  private async ownPost(em: EntityManager, authorId: string, id: string): Promise<Post> {
    const post = ObjectId.isValid(id) ? await em.findOne(Post, { _id: new ObjectId(id) }) : null;
    if (!post || post.deletedAt || post.authorId.toHexString() !== authorId) throw notFound("Post");
    return post;
  }
}
