import { ObjectId } from "@mikro-orm/mongodb";
import { findBatched, type EntityManager } from "../../infra/orm.js";
import { notFound } from "../../graphql/errors.js";
import { Comment, Post } from "./post.entity.js";
import type { AddCommentInput, CreatePostInput } from "./post.inputs.js";

/** Posts and comments: the writes whose subscribers fan notifications out. */
export class PostService {
  async create(em: EntityManager, authorId: string, input: CreatePostInput): Promise<Post> {
    const post = new Post(new ObjectId(authorId), input.title.trim(), input.body);
    // PostSubscriber schedules post.fanout once this write is committed.
    await em.persist(post).flush();
    return post;
  }

  async addComment(em: EntityManager, authorId: string, input: AddCommentInput): Promise<Comment> {
    const post = await this.find(em, input.postId);
    if (!post) throw notFound("Post");
    const comment = new Comment(post._id, new ObjectId(authorId), input.body);
    // CommentSubscriber schedules comment.notify once this write is committed.
    await em.persist(comment).flush();
    return comment;
  }

  /** Posts are public to signed-in users; an unknown or malformed id is simply not found. */
  async find(em: EntityManager, id: string): Promise<Post | null> {
    return findBatched(em, Post, id);
  }

  async findComment(em: EntityManager, id: string): Promise<Comment | null> {
    return findBatched(em, Comment, id);
  }
}
