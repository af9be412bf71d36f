import type { HeraldModule } from "../module.js";
import { UserPreferences } from "./preferences.entity.js";
import { PreferencesResolver } from "./preferences.resolver.js";
import { unsubscribeRoutes } from "./unsubscribe.route.js";

/** How each user wants each kind delivered, and the unsubscribe links of emails. */
export const preferencesModule: HeraldModule = {
  name: "preferences",
  entities: [UserPreferences],
  resolvers: [PreferencesResolver],
  api: ({ orm, unsubscribeTokens, preferences, logger }) => ({
    resolvers: [new PreferencesResolver(preferences)],
    routes: (app) => {
      const unsubscribe = unsubscribeRoutes({ orm, tokens: unsubscribeTokens, preferences, logger });
      app.get("/unsubscribe", unsubscribe.confirm);
      app.post("/unsubscribe", unsubscribe.unsubscribe);
    },
  }),
  // With them goes the account's place in the digest schedule: no digest job finds it again.
  erase: async (ctx, userId) => {
    await ctx.orm.em.fork().nativeDelete(UserPreferences, { _id: userId });
  },
};
