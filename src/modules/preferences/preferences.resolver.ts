import { Arg, Ctx, Mutation, Query, Resolver } from "type-graphql";
import type { GraphQLContext } from "../../graphql/context.js";
import { requireUser } from "../../graphql/context.js";
import type { PreferencesService } from "./preferences.service.js";
import { Preferences, PreferencesInput } from "./preferences.types.js";

@Resolver()
export class PreferencesResolver {
  constructor(private readonly service: PreferencesService) {}

  @Query(() => Preferences, { description: "How the caller is notified, per kind, and the digest." })
  preferences(@Ctx() ctx: GraphQLContext): Promise<Preferences> {
    return this.service.get(ctx.em, requireUser(ctx));
  }

  @Mutation(() => Preferences)
  updatePreferences(@Arg("input") input: PreferencesInput, @Ctx() ctx: GraphQLContext): Promise<Preferences> {
    return this.service.update(ctx.em, requireUser(ctx), input);
  }
}
