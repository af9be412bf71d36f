import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { Kind, OperationTypeNode } from "graphql";
import { createClient, type Client, type ClientOptions } from "graphql-ws";
import { Redis } from "ioredis";
import { filter, firstValueFrom } from "rxjs";
import WebSocket from "ws";
import {
  InboxEventsDocument,
  InboxStartDocument,
  NotificationAddedDocument,
  NotificationsDocument,
  RegisterDocument,
  SendNotificationDocument,
  UnreadCountDocument,
} from "../generated/graphql.js";
import { eventually, gqlOk, subscribedInRedis } from "../helpers/graphql-client.js";
import { resumeInboxEventsLink, type StreamEvent } from "../helpers/inbox-stream.js";
import { testRedisUrl } from "../helpers/env.js";
import { baseEnv, startHerald, TEST_SERVICE_KEY, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";

/**
 * The client most web apps use: HTTP for queries and mutations, graphql-ws for subscriptions, with
 * the resume recipe for inboxEvents in docs/clients.md. `ws` adds options to the graphql-ws client.
 */
function apolloClient(
  url: string,
  token: () => string | undefined,
  ws: Partial<ClientOptions> = {},
): { client: ApolloClient; ws: Client; close: () => void } {
  const socket = createClient({
    url: `${url.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: () => ({ authorization: `Bearer ${token() ?? ""}` }),
    ...ws,
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
    resumeInboxEventsLink.concat(new GraphQLWsLink(socket)),
    auth.concat(http),
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  return {
    client,
    ws: socket,
    close: () => {
      client.stop();
      void socket.dispose();
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

      // The welcome was stored before this subscription, but its announcement may still be on its way.
      const next = firstValueFrom(
        client
          .subscribe({ query: NotificationAddedDocument })
          .pipe(filter((e) => e.data?.notificationAdded?.kind !== "WELCOME")),
      );
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

  it("follows its inbox with inboxEvents and, after its socket drops, resumes from the last cursor", async () => {
    let token: string | undefined;
    // The test decides when the dropped socket may reconnect, so that events happen while it is away.
    let reopen: () => void = () => {};
    const { client, ws, close } = apolloClient(api.url, () => token, {
      retryAttempts: Number.POSITIVE_INFINITY,
      shouldRetry: () => true,
      retryWait: () => new Promise<void>((resolve) => (reopen = resolve)),
    });
    const events: StreamEvent[] = [];
    try {
      const registered = await client.mutate({
        mutation: RegisterDocument,
        variables: {
          input: {
            email: `resume.${Date.now()}@example.com`,
            password: "correct horse battery",
            displayName: "Resumer",
          },
        },
      });
      token = registered.data?.register.token;
      const userId = registered.data?.register.user.id;
      assert.ok(token && userId);
      const unread = async () =>
        (await client.query({ query: UnreadCountDocument, fetchPolicy: "network-only" })).data?.unreadCount;
      await eventually(async () => ((await unread()) === 1 ? true : undefined), {
        timeoutMs: 5000,
        what: "the welcome notification",
      });
      const send = (title: string) =>
        gqlOk(
          api.url,
          SendNotificationDocument,
          { input: { recipientIds: [userId], title, body: "b", idempotencyKey: `${userId}:${title}` } },
          { "x-api-key": TEST_SERVICE_KEY },
        );

      // Start-up without a gap: the page's streamCursor, then the subscription from it.
      const page = await client.query({
        query: InboxStartDocument,
        variables: { first: 20 },
        fetchPolicy: "network-only",
      });
      // Notifications already on the page may be heard of again: a client takes them as known.
      const known = new Set(page.data?.notifications.edges.map((e) => e.node.id));
      const subscription = client
        .subscribe({ query: InboxEventsDocument, variables: { after: page.data?.notifications.streamCursor ?? null } })
        .subscribe((result) => {
          const event = result.data?.inboxEvents;
          if (event && !(event.type === "ADDED" && known.has(event.notificationId ?? ""))) events.push(event);
        });
      await send("before the drop");
      await eventually(() => Promise.resolve(events.length === 1 || undefined), {
        timeoutMs: 5000,
        what: "a first event",
      });

      ws.terminate();
      for (const title of ["while away 1", "while away 2", "while away 3"]) await send(title);
      await eventually(async () => ((await unread()) === 5 ? true : undefined), {
        timeoutMs: 5000,
        what: "the notifications sent while away to be stored",
      });
      reopen();
      await eventually(() => Promise.resolve(events.length >= 4 || undefined), {
        timeoutMs: 10_000,
        what: "the events missed while away",
      });
      await send("after coming back");
      await eventually(() => Promise.resolve(events.length >= 5 || undefined), {
        timeoutMs: 5000,
        what: "a live event",
      });
      subscription.unsubscribe();
      assert.equal(events.length, 5, "nothing twice");
      assert.ok(events.every((e) => e.type === "ADDED"));
      assert.deepEqual(
        events.map((e) => e.unreadCount),
        [2, 3, 4, 5, 6],
        "none missing, in the order stored",
      );
      const titles = events.map((e) => e.notification?.title ?? "");
      assert.equal(titles[0], "before the drop");
      assert.deepEqual(titles.slice(1, 4).sort(), ["while away 1", "while away 2", "while away 3"]);
      assert.equal(titles[4], "after coming back");
    } finally {
      close();
    }
  });
});
