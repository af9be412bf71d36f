import { Arg, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from "type-graphql";
import type { GraphQLContext } from "../../graphql/context.js";
import { viewerId } from "../../graphql/context.js";
import { LoginInput, RegisterInput } from "./user.inputs.js";
import { AuthPayload, UserView, toUserView } from "./user.types.js";
import type { UserService, Session } from "./user.service.js";

@Resolver(() => UserView)
export class UserResolver {
  constructor(private readonly users: UserService) {}

  @Query(() => UserView, { nullable: true, description: "The signed-in user, or null without a token." })
  async me(@Ctx() ctx: GraphQLContext): Promise<UserView | null> {
    const id = viewerId(ctx);
    const user = id ? await this.users.findById(ctx.em, id) : null;
    return user ? toUserView(user) : null;
  }

  @Mutation(() => AuthPayload)
  async register(@Arg("input") input: RegisterInput, @Ctx() ctx: GraphQLContext): Promise<AuthPayload> {
    return toPayload(await this.users.register(ctx.em, input));
  }

  @Mutation(() => AuthPayload)
  async login(@Arg("input") input: LoginInput, @Ctx() ctx: GraphQLContext): Promise<AuthPayload> {
    return toPayload(await this.users.login(ctx.em, input));
  }

  @FieldResolver(() => String, { nullable: true, description: "Visible to its owner only." })
  email(@Root() user: UserView, @Ctx() ctx: GraphQLContext): string | null {
    return user.viewerIsOwner || viewerId(ctx) === user.id ? user.email : null;
  }
}

function toPayload(session: Session): AuthPayload {
  return { token: session.token, user: toUserView(session.user, true) };
}
