import "reflect-metadata";
import { GraphQLDateTime } from "graphql-scalars";
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from "graphql";
import { buildSchema, type ContainerType, type PubSub } from "type-graphql";
import { MODULES, resolversOf } from "../modules/index.js";

/**
 * Builds the executable schema. Resolver instances come from `container` (each module's `api` part
 * builds them with their services); `pubSub` feeds the `@Subscription` topics.
 */
export async function buildHeraldSchema(options: { container: ContainerType; pubSub: PubSub }): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: resolversOf(MODULES) as [Function, ...Function[]],
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
