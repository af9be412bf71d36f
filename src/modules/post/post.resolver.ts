import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import type { GraphQLContext } from "../../graphql/context.js";
import { requireUser } from "../../graphql/context.js";
import { notFound } from "../../graphql/errors.js";
import { UserView, toUserView } from "../user/user.types.js";
import type { UserService } from "../user/user.service.js";
import { AddCommentInput, CreatePostInput } from "./post.inputs.js";
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

export async function userOrFail(users: UserService, ctx: GraphQLContext, id: string): Promise<UserView> {
  const user = await users.lookup(ctx.em, id);
  if (!user) throw notFound("User");
  return toUserView(user);
}
