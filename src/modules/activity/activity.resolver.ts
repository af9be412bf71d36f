import { Arg, Ctx, FieldResolver, Int, Query, Resolver, Root } from "type-graphql";
import type { GraphQLContext } from "../../graphql/context.js";
import { requireUser } from "../../graphql/context.js";
import { userOrFail } from "../user/user.lookup.js";
import type { UserService } from "../user/user.service.js";
import { UserView } from "../user/user.types.js";
import type { ActivityService } from "./activity.service.js";
import { ActivityView, toActivityView } from "./activity.types.js";

@Resolver(() => ActivityView)
export class ActivityResolver {
  constructor(
    private readonly entries: ActivityService,
    private readonly users: UserService,
  ) {}

  @Query(() => [ActivityView], { description: "What the caller did, newest first; `after` is an entry id." })
  async activity(
    @Ctx() ctx: GraphQLContext,
    @Arg("first", () => Int, { nullable: true, defaultValue: 20, description: "At most 100." }) first: number | null,
    @Arg("after", () => String, { nullable: true }) after: string | null,
  ): Promise<ActivityView[]> {
    const entries = await this.entries.list(ctx.em, requireUser(ctx), { first: first ?? 20, after });
    return entries.map(toActivityView);
  }

  @FieldResolver(() => UserView, { nullable: true })
  actor(@Root() entry: ActivityView, @Ctx() ctx: GraphQLContext): Promise<UserView> | null {
    return entry.actorId ? userOrFail(this.users, ctx, entry.actorId) : null;
  }
}
