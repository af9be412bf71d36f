import { userOrFail } from "../user/user.lookup.js";
import { NotificationView } from "../notification/notification.types.js";
import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import type { GraphQLContext } from "../../graphql/context.js";
import { requireUser } from "../../graphql/context.js";
import { notFound } from "../../graphql/errors.js";
import { UserView } from "../user/user.types.js";
import type { UserService } from "../user/user.service.js";
import { AddCommentInput, CreatePostInput, UpdatePostInput } from "./post.inputs.js";
import type { PostService } from "./post.service.js";
import { CommentView, PostView, toCommentView, toPostView } from "./post.types.js";

@Resolver(() => PostView)
export class PostResolver {
  constructor(
    private readonly posts: PostService,
    private readonly users: UserService,
  ) {}

  @Query(() => PostView, { nullable: true })
  async post(@Arg("id", () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<PostView | null> {
    requireUser(ctx);
    const post = await this.posts.find(ctx.em, id);
    return post ? toPostView(post) : null;
  }

  @Mutation(() => PostView, { description: "Every follower of the author gets a NEW_POST notification." })
  async createPost(@Arg("input") input: CreatePostInput, @Ctx() ctx: GraphQLContext): Promise<PostView> {
    return toPostView(await this.posts.create(ctx.em, requireUser(ctx), input));
  }

  @Mutation(() => PostView, {
    description:
      "Changes the caller's post (another's is NOT_FOUND). Notifies nobody; the activity log records post.edited, and every notification about the post shows its new title.",
  })
  async updatePost(
    @Arg("id", () => ID) id: string,
    @Arg("input") input: UpdatePostInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<PostView> {
    return toPostView(await this.posts.update(ctx.em, requireUser(ctx), id, input));
  }

  @Mutation(() => Boolean, {
    description:
      "Deletes the caller's post (another's is NOT_FOUND) at once for every reader; its fan-out stops, and in the background its notifications leave every inbox (DELETED events, unread counts corrected) and its comments go. The activity log records post.deleted.",
  })
  async deletePost(@Arg("id", () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<boolean> {
    await this.posts.delete(ctx.em, requireUser(ctx), id);
    return true;
  }

  @Mutation(() => Boolean, {
    description:
      "Deletes the caller's comment (another's is NOT_FOUND); its NEW_COMMENT notification leaves the post author's inbox. The activity log records comment.deleted.",
  })
  async deleteComment(@Arg("id", () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<boolean> {
    await this.posts.deleteComment(ctx.em, requireUser(ctx), id);
    return true;
  }

  @Mutation(() => CommentView, {
    description: "The post's author gets a NEW_COMMENT notification, unless it is theirs.",
  })
  async addComment(@Arg("input") input: AddCommentInput, @Ctx() ctx: GraphQLContext): Promise<CommentView> {
    return toCommentView(await this.posts.addComment(ctx.em, requireUser(ctx), input));
  }

  @FieldResolver(() => UserView)
  author(@Root() post: PostView, @Ctx() ctx: GraphQLContext): Promise<UserView> {
    return userOrFail(this.users, ctx, post.authorId);
  }
}

@Resolver(() => CommentView)
export class CommentResolver {
  constructor(
    private readonly posts: PostService,
    private readonly users: UserService,
  ) {}

  @FieldResolver(() => PostView)
  async post(@Root() comment: CommentView, @Ctx() ctx: GraphQLContext): Promise<PostView> {
    const post = await this.posts.find(ctx.em, comment.postId);
    if (!post) throw notFound("Post");
    return toPostView(post);
  }

  @FieldResolver(() => UserView)
  author(@Root() comment: CommentView, @Ctx() ctx: GraphQLContext): Promise<UserView> {
    return userOrFail(this.users, ctx, comment.authorId);
  }
}

/** A notification's post and comment, resolved here so that notifications need not know posts. */
@Resolver(() => NotificationView)
export class NotificationPostResolver {
  constructor(private readonly posts: PostService) {}

  @FieldResolver(() => PostView, { nullable: true })
  async post(@Root() notification: NotificationView, @Ctx() ctx: GraphQLContext): Promise<PostView | null> {
    const post = notification.postId ? await this.posts.find(ctx.em, notification.postId) : null;
    return post ? toPostView(post) : null;
  }

  @FieldResolver(() => CommentView, { nullable: true })
  async comment(@Root() notification: NotificationView, @Ctx() ctx: GraphQLContext): Promise<CommentView | null> {
    const comment = notification.commentId ? await this.posts.findComment(ctx.em, notification.commentId) : null;
    return comment ? toCommentView(comment) : null;
  }
}
