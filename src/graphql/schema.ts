import "reflect-metadata";
import { GraphQLDateTime } from "graphql-scalars";
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from "graphql";
import { buildSchema, type ContainerType, type PubSub } from "type-graphql";
import { ActivityResolver } from "../modules/activity/activity.resolver.js";
import { FollowResolver } from "../modules/follow/follow.resolver.js";
import { NotificationResolver } from "../modules/notification/notification.resolver.js";
import { CommentResolver, NotificationPostResolver, PostResolver } from "../modules/post/post.resolver.js";
import { PreferencesResolver } from "../modules/preferences/preferences.resolver.js";
import { ReminderResolver } from "../modules/reminder/reminder.resolver.js";
import { UserResolver } from "../modules/user/user.resolver.js";

export const RESOLVERS = [
  UserResolver,
  NotificationResolver,
  NotificationPostResolver,
  PostResolver,
  CommentResolver,
  FollowResolver,
  ActivityResolver,
  PreferencesResolver,
  ReminderResolver,
] as const;

/**
 * Builds the executable schema. Resolver instances come from `container` (constructed with their
 * services in roles/api.ts); `pubSub` feeds the `@Subscription` topics.
 */
export async function buildHeraldSchema(options: { container: ContainerType; pubSub: PubSub }): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: RESOLVERS,
    container: options.container,
    pubSub: options.pubSub,
    scalarsMap: [{ type: Date, scalar: GraphQLDateTime }],
    // Messages and the offending field only: ValidationError's target and value would echo input
    // such as passwords back to the client.
    validate: { forbidUnknownValues: false, validationError: { target: false, value: false } },
    emitSchemaFile: false,
  });
}

/** The SDL checked in as schema/schema.graphql: sorted, so it changes only when the API does. */
export async function printHeraldSchema(): Promise<string> {
  const unavailable = () => {
    throw new Error("printing the schema runs no resolver");
  };
  const schema = await buildHeraldSchema({
    container: { get: unavailable },
    pubSub: { publish: unavailable, subscribe: unavailable },
  });
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
