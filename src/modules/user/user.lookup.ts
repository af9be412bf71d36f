import type { GraphQLContext } from "../../graphql/context.js";
import { notFound } from "../../graphql/errors.js";
import type { UserService } from "./user.service.js";
import { toUserView, type UserView } from "./user.types.js";

/** A user a record points at, for a field resolver: NOT_FOUND when the user is gone. */
export async function userOrFail(users: UserService, ctx: GraphQLContext, id: string): Promise<UserView> {
  const user = await users.lookup(ctx.em, id);
  if (!user) throw notFound("User");
  return toUserView(user);
}
