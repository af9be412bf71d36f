import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Resolver, Root } from "type-graphql";
import type { GraphQLContext } from "../../graphql/context.js";
import { requireUser } from "../../graphql/context.js";
import { UserView, toUserView } from "../user/user.types.js";
import type { FollowService } from "./follow.service.js";

@Resolver()
export class FollowResolver {
  constructor(private readonly follows: FollowService) {}

  @Mutation(() => UserView, { description: "Follows a user (following twice is one follow); returns them." })
  async follow(@Arg("userId", () => ID) userId: string, @Ctx() ctx: GraphQLContext): Promise<UserView> {
    return toUserView(await this.follows.follow(ctx.em, requireUser(ctx), userId));
  }

  @Mutation(() => UserView, { description: "Stops following a user (not an error when not following)." })
  async unfollow(@Arg("userId", () => ID) userId: string, @Ctx() ctx: GraphQLContext): Promise<UserView> {
    return toUserView(await this.follows.unfollow(ctx.em, requireUser(ctx), userId));
  }
}

/** A user's follower count: the follow module's part of the User type. */
@Resolver(() => UserView)
export class FollowerCountResolver {
  constructor(private readonly follows: FollowService) {}

  @FieldResolver(() => Int)
  followerCount(@Root() user: UserView, @Ctx() ctx: GraphQLContext): Promise<number> {
    return this.follows.followerCount(ctx.em, user.id);
  }
}
