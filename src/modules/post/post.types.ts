import { Field, ID, ObjectType } from "type-graphql";
import type { Comment, Post } from "./post.entity.js";

@ObjectType("Post")
export class PostView {
  @Field(() => ID)
  id!: string;

  /** Resolved to `author` by PostResolver. */
  authorId!: string;

  @Field()
  title!: string;

  @Field()
  body!: string;

  @Field()
  createdAt!: Date;
}

@ObjectType("Comment")
export class CommentView {
  @Field(() => ID)
  id!: string;

  /** Resolved to `post` and `author` by CommentResolver. */
  postId!: string;

  authorId!: string;

  @Field()
  body!: string;

  @Field()
  createdAt!: Date;
}

export function toPostView(post: Post): PostView {
  return {
    id: post.id,
    authorId: post.authorId.toHexString(),
    title: post.title,
    body: post.body,
    createdAt: post.createdAt,
  };
}

export function toCommentView(comment: Comment): CommentView {
  return {
    id: comment.id,
    postId: comment.postId.toHexString(),
    authorId: comment.authorId.toHexString(),
    body: comment.body,
    createdAt: comment.createdAt,
  };
}
