import { Arg, Ctx, ID, Mutation, Resolver } from "type-graphql";
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
