import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from "type-graphql";
import type { GraphQLContext } from "../../graphql/context.js";
import { requireLogin, viewerId } from "../../graphql/context.js";
import { refreshLoginId, type Credentials, type SessionService } from "./session.service.js";
import { LoginInput, RegisterInput } from "./user.inputs.js";
import { AuthPayload, SessionView, UserView, toUserView } from "./user.types.js";
import { normalizeEmail, type UserService } from "./user.service.js";
import type { User } from "./user.entity.js";
import type { Limits } from "../../infra/limits.js";
import { ErrorCode, HeraldError } from "../../graphql/errors.js";

@Resolver(() => UserView)
export class UserResolver {
  constructor(
    private readonly users: UserService,
    private readonly logins: SessionService,
    private readonly limits: Limits,
  ) {}

  @Query(() => UserView, { nullable: true, description: "The signed-in user, or null without a token." })
  async me(@Ctx() ctx: GraphQLContext): Promise<UserView | null> {
    const id = viewerId(ctx);
    const user = id ? await this.users.findById(ctx.em, id) : null;
    return user ? toUserView(user) : null;
  }

  @Mutation(() => AuthPayload, { description: "Creates an account and signs it in (a new login)." })
  async register(@Arg("input") input: RegisterInput, @Ctx() ctx: GraphQLContext): Promise<AuthPayload> {
    await this.limits.signup(ctx.client.address);
    const user = await this.users.register(ctx.em, input);
    return toPayload(await this.logins.start(ctx.em, user, ctx.client));
  }

  @Mutation(() => AuthPayload, { description: "Signs in: a new login, with its own tokens." })
  async login(@Arg("input") input: LoginInput, @Ctx() ctx: GraphQLContext): Promise<AuthPayload> {
    const user = await this.limits.passwordCheck(
      normalizeEmail(input.email),
      ctx.client.address,
      () => this.users.login(ctx.em, input),
      (err) => err instanceof HeraldError && err.extensions["code"] === ErrorCode.UNAUTHENTICATED,
    );
    return toPayload(await this.logins.start(ctx.em, user, ctx.client));
  }

  @Mutation(() => AuthPayload, {
    description:
      "Spends a refresh token for a new access token and the next refresh token. A refresh token used twice ends its whole login.",
  })
  async refresh(@Arg("refreshToken") refreshToken: string, @Ctx() ctx: GraphQLContext): Promise<AuthPayload> {
    // Counted per login (the token names it), or per address for what names none.
    await this.limits.refresh(refreshLoginId(refreshToken) ?? `address:${ctx.client.address}`);
    return toPayload(await this.logins.refresh(ctx.em, refreshToken));
  }

  @Mutation(() => Boolean, { description: "Ends the caller's login: its tokens stop working and its sockets close." })
  async logout(@Ctx() ctx: GraphQLContext): Promise<boolean> {
    const { userId, loginId } = requireLogin(ctx);
    await this.logins.logout(ctx.em, userId, loginId);
    return true;
  }

  @Mutation(() => Int, { description: "Ends every login of the caller, this one included; answers how many." })
  logoutEverywhere(@Ctx() ctx: GraphQLContext): Promise<number> {
    return this.logins.endAll(ctx.em, requireLogin(ctx).userId);
  }

  @Mutation(() => Boolean, { description: "Ends one of the caller's logins (from `sessions`)." })
  async endSession(@Arg("id", () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<boolean> {
    await this.logins.end(ctx.em, requireLogin(ctx).userId, id);
    return true;
  }

  @Query(() => [SessionView], { description: "The caller's logins that have not ended, most recently used first." })
  async sessions(@Ctx() ctx: GraphQLContext): Promise<SessionView[]> {
    const { userId, loginId } = requireLogin(ctx);
    const logins = await this.logins.list(ctx.em, userId);
    return logins.map((l) => ({
      id: l.id,
      device: l.device,
      createdAt: l.createdAt,
      lastUsedAt: l.lastUsedAt,
      current: l.id === loginId,
    }));
  }

  @Mutation(() => Boolean, {
    description:
      "Sets a new password; every other login of the caller ends. The account gets a PASSWORD_CHANGED notice, in-app and by email.",
  })
  async changePassword(
    @Arg("currentPassword") currentPassword: string,
    @Arg("newPassword") newPassword: string,
    @Ctx() ctx: GraphQLContext,
  ): Promise<boolean> {
    const { userId, loginId } = requireLogin(ctx);
    await this.checked(ctx, userId, () => this.users.changePassword(ctx.em, userId, currentPassword, newPassword));
    await this.logins.endAll(ctx.em, userId, loginId);
    return true;
  }

  @Mutation(() => UserView, {
    description:
      "Moves the account to another email address. The old address is told by email (EMAIL_CHANGED), with the new one partly hidden.",
  })
  async changeEmail(
    @Arg("password") password: string,
    @Arg("newEmail") newEmail: string,
    @Ctx() ctx: GraphQLContext,
  ): Promise<UserView> {
    const { userId } = requireLogin(ctx);
    return toUserView(
      await this.checked(ctx, userId, () => this.users.changeEmail(ctx.em, userId, password, newEmail)),
    );
  }

  @Mutation(() => Boolean, {
    description:
      "Deletes the caller's account once the password is given: every login ends and its sockets close at once; its notifications, preferences, reminders, follows, activity, posts and comments are removed in the background. Notifications it caused in other inboxes stay, with actor null.",
  })
  async deleteAccount(@Arg("password") password: string, @Ctx() ctx: GraphQLContext): Promise<boolean> {
    const { userId } = requireLogin(ctx);
    await this.checked(ctx, userId, () =>
      this.users.deleteAccount(ctx.em, userId, password, () => this.logins.endAll(ctx.em, userId)),
    );
    return true;
  }

  /** A password check of a signed-in user, counted like a sign-in's: guessing is slowed the same way. */
  private checked(ctx: GraphQLContext, userId: string, change: () => Promise<User>): Promise<User> {
    return this.limits.passwordCheck(`user:${userId}`, ctx.client.address, change, (err) => {
      const field = err instanceof HeraldError ? err.extensions["field"] : undefined;
      return field === "currentPassword" || field === "password";
    });
  }

  @FieldResolver(() => String, { nullable: true, description: "Visible to its owner only." })
  email(@Root() user: UserView, @Ctx() ctx: GraphQLContext): string | null {
    return user.viewerIsOwner || viewerId(ctx) === user.id ? user.email : null;
  }
}

function toPayload(credentials: Credentials): AuthPayload {
  return {
    token: credentials.token,
    expiresAt: credentials.expiresAt,
    refreshToken: credentials.refreshToken,
    user: toUserView(credentials.user, true),
  };
}
