import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { Kind, OperationTypeNode } from "graphql";
import { createClient } from "graphql-ws";
import { Redis } from "ioredis";
import { firstValueFrom } from "rxjs";
import WebSocket from "ws";
import {
  NotificationAddedDocument,
  NotificationsDocument,
  RegisterDocument,
  SendNotificationDocument,
  UnreadCountDocument,
} from "../generated/graphql.js";
import { eventually, gqlOk, subscribedInRedis } from "../helpers/graphql-client.js";
import { testRedisUrl } from "../helpers/env.js";
import { baseEnv, startHerald, TEST_SERVICE_KEY, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";

/** The client most web apps use: HTTP for queries and mutations, graphql-ws for subscriptions. */
function apolloClient(url: string, token: () => string | undefined): { client: ApolloClient; close: () => void } {
  const ws = createClient({
    url: `${url.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: () => ({ authorization: `Bearer ${token() ?? ""}` }),
  });
  const http = new HttpLink({ uri: `${url}/graphql` });
  const auth = new ApolloLink((operation, forward) => {
    const current = token();
    if (current) operation.setContext({ headers: { authorization: `Bearer ${current}` } });
    return forward(operation);
  });
  const link = ApolloLink.split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === Kind.OPERATION_DEFINITION && definition.operation === OperationTypeNode.SUBSCRIPTION;
    },
    new GraphQLWsLink(ws),
    auth.concat(http),
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  return {
    client,
    close: () => {
      client.stop();
      void ws.dispose();
    },
  };
}

describe("Apollo Client", () => {
  let worker: HeraldProcess;
  let api: HeraldProcess;
  let redis: Redis;

  before(async () => {
    const env = baseEnv(uniqueDatabase("e2e_apollo"));
    [worker, api] = await Promise.all([
      startHerald({ ...env, ROLES: "worker" }),
      startHerald({ ...env, ROLES: "api" }),
    ]);
    redis = new Redis(testRedisUrl());
  });

  after(async () => {
    redis.disconnect();
    assert.deepEqual(await Promise.all([api.stop(), worker.stop()]), [0, 0]);
  });

  it("signs up, receives a live notification and finds it in its normalized cache", async () => {
    let token: string | undefined;
    const { client, close } = apolloClient(api.url, () => token);
    try {
      const registered = await client.mutate({
        mutation: RegisterDocument,
        variables: {
          input: {
            email: `apollo.${Date.now()}@example.com`,
            password: "correct horse battery",
            displayName: "Apollo",
          },
        },
      });
      token = registered.data?.register.token;
      const userId = registered.data?.register.user.id;
      assert.ok(token && userId);
      // The welcome is written by the worker right after sign-up; let it land first so that the
      // next live event can only be the one sent below.
      await eventually(
        async () => {
          const count = await client.query({ query: UnreadCountDocument, fetchPolicy: "network-only" });
          return count.data?.unreadCount === 1 ? true : undefined;
        },
        { timeoutMs: 5000, what: "the welcome notification" },
      );

      const next = firstValueFrom(client.subscribe({ query: NotificationAddedDocument }));
      await subscribedInRedis(redis, `INBOX:${userId}`);
      await gqlOk(
        api.url,
        SendNotificationDocument,
        {
          input: {
            recipientIds: [userId],
            title: "From Apollo's test",
            body: "hello",
            idempotencyKey: `apollo-${userId}`,
          },
        },
        { "x-api-key": TEST_SERVICE_KEY },
      );
      const event = await next;
      const pushed = event.data?.notificationAdded;
      assert.equal(pushed?.title, "From Apollo's test");

      const inbox = await client.query({
        query: NotificationsDocument,
        variables: { first: 10 },
        fetchPolicy: "network-only",
      });
      const titles = inbox.data?.notifications.edges.map((e) => e.node.title);
      assert.deepEqual(titles, ["From Apollo's test", "Welcome to Herald"]);
      // The pushed and the fetched notification are one cache entry, keyed by __typename and id.
      const cached = client.cache.extract() as Record<string, { title?: string }>;
      assert.equal(cached[`Notification:${pushed?.id}`]?.title, "From Apollo's test");
    } finally {
      close();
    }
  });
});
