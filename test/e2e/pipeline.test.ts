import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import {
  MeDocument,
  NotificationAddedDocument,
  NotificationsDocument,
  RegisterDocument,
  SendNotificationDocument,
  UnreadCountChangedDocument,
  UnreadCountDocument,
} from "../generated/graphql.js";
import {
  bearer,
  connectWs,
  eventually,
  gql,
  gqlOk,
  Subscription,
  subscribedInRedis,
} from "../helpers/graphql-client.js";
import { baseEnv, startHerald, TEST_SERVICE_KEY, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";
import { testRedisUrl } from "../helpers/env.js";

const service = { "x-api-key": TEST_SERVICE_KEY };
let counter = 0;
const newUser = () => {
  counter += 1;
  return {
    email: `user${counter}.${Date.now()}@example.com`,
    password: "correct horse battery",
    displayName: `User ${counter}`,
  };
};

/**
 * The whole pipe across OS processes: one worker and two api instances on one database and Redis.
 * A mutation on one instance must reach a subscriber connected to the other.
 */
describe("walking skeleton: mutation to live notification", () => {
  let worker: HeraldProcess;
  let apiA: HeraldProcess;
  let apiB: HeraldProcess;
  let redis: Redis;

  before(async () => {
    const env = baseEnv(uniqueDatabase("e2e_pipeline"));
    worker = await startHerald({ ...env, ROLES: "worker" });
    [apiA, apiB] = await Promise.all([startHerald({ ...env, ROLES: "api" }), startHerald({ ...env, ROLES: "api" })]);
    redis = new Redis(testRedisUrl());
  });

  after(async () => {
    redis?.disconnect();
    const codes = await Promise.all([apiA, apiB, worker].filter(Boolean).map((p) => p.stop()));
    // A clean SIGTERM drain is part of the contract: every process exits 0.
    assert.deepEqual(
      codes,
      codes.map(() => 0),
      "every process exits 0 on SIGTERM",
    );
  });

  it("puts a WELCOME in a new user's inbox within a second of register", async () => {
    const { register } = await gqlOk(apiA.url, RegisterDocument, { input: newUser() });
    assert.ok(register.token);
    assert.equal(register.user.email?.endsWith("@example.com"), true, "the new user sees their own email");
    const welcome = await eventually(
      async () => {
        const { notifications } = await gqlOk(apiB.url, NotificationsDocument, { first: 10 }, bearer(register.token));
        return notifications.edges.find((e) => e.node.kind === "WELCOME")?.node;
      },
      { timeoutMs: 1000, what: "the WELCOME notification" },
    );
    assert.equal(welcome.title, "Welcome to Herald");
    assert.match(welcome.body, /User \d+/);
    assert.deepEqual(
      welcome.deliveries.map((d) => [d.channel, d.status]),
      [["IN_APP", "SENT"]],
    );
    const me = await gqlOk(apiA.url, MeDocument, {}, bearer(register.token));
    assert.equal(me.me?.id, register.user.id);
  });

  it("delivers sendNotification on api B to a subscriber on api A, once per idempotency key", async () => {
    const { register } = await gqlOk(apiA.url, RegisterDocument, { input: newUser() });
    const auth = bearer(register.token);
    const userId = register.user.id;
    // The welcome arrives first; wait for it so that later counts are about sendNotification only.
    await eventually(
      async () => ((await gqlOk(apiA.url, UnreadCountDocument, {}, auth)).unreadCount === 1 ? true : undefined),
      { timeoutMs: 5000, what: "the welcome notification" },
    );

    const ws = connectWs(apiA.url, { authorization: `Bearer ${register.token}` });
    const added = new Subscription(ws.client, NotificationAddedDocument);
    const counts = new Subscription(ws.client, UnreadCountChangedDocument);
    await subscribedInRedis(redis, `INBOX:${userId}`);
    await subscribedInRedis(redis, `INBOX:${userId}`);

    const input = {
      recipientIds: [userId],
      title: "Deploy finished",
      body: "v1.2.3 is live",
      idempotencyKey: `deploy-${userId}`,
    };
    const first = await gqlOk(apiB.url, SendNotificationDocument, { input }, service);
    assert.equal(first.sendNotification.replayed, false);
    assert.equal(first.sendNotification.recipientCount, 1);

    const event = await added.next();
    assert.equal(event.errors, undefined);
    const live = event.data?.notificationAdded;
    assert.ok(live);
    assert.equal(live.kind, "SYSTEM");
    assert.equal(live.title, "Deploy finished");
    assert.equal(live.body, "v1.2.3 is live");
    assert.equal(live.readAt, null);
    // The welcome's job stores, then announces: its own count (1) reaches this subscription when
    // the job looks for listeners after the subscription opened. It comes first if at all.
    let count = await counts.next();
    if (count.data?.unreadCountChanged === 1) count = await counts.next();
    assert.equal(count.data?.unreadCountChanged, 2);

    // What was pushed can be fetched again, through either instance.
    const { notifications } = await gqlOk(apiB.url, NotificationsDocument, { first: 10 }, auth);
    assert.deepEqual(
      notifications.edges.map((e) => e.node.kind),
      ["SYSTEM", "WELCOME"],
    );
    assert.deepEqual(notifications.edges[0]?.node, live);

    // The same key again: the first result, and nothing sent.
    const again = await gqlOk(apiB.url, SendNotificationDocument, { input }, service);
    assert.equal(again.sendNotification.id, first.sendNotification.id);
    assert.equal(again.sendNotification.replayed, true);
    const conflicting = await gql(apiB.url, SendNotificationDocument, { input: { ...input, body: "other" } }, service);
    assert.equal(conflicting.errors?.[0]?.extensions?.["code"], "CONFLICT");

    // A later, different notification is the next event: the repeat produced none in between.
    await gqlOk(
      apiA.url,
      SendNotificationDocument,
      { input: { ...input, title: "Second", idempotencyKey: `second-${userId}` } },
      service,
    );
    const next = await added.next();
    assert.equal(next.data?.notificationAdded.title, "Second");
    assert.equal((await counts.next()).data?.unreadCountChanged, 3);
    const inbox = await gqlOk(apiA.url, NotificationsDocument, { first: 10 }, auth);
    assert.deepEqual(
      inbox.notifications.edges.map((e) => e.node.title),
      ["Second", "Deploy finished", "Welcome to Herald"],
    );
    assert.equal(added.pending(), 0);
    await ws.dispose();
  });

  it("closes open sockets cleanly when an api instance stops", async () => {
    const { register } = await gqlOk(apiA.url, RegisterDocument, { input: newUser() });
    const extra = await startHerald({ ...baseEnvFrom(apiA), ROLES: "api" });
    const ws = connectWs(extra.url, { authorization: `Bearer ${register.token}` });
    const sub = new Subscription(ws.client, UnreadCountChangedDocument);
    await subscribedInRedis(redis, `INBOX:${register.user.id}`);
    assert.equal(await extra.stop(), 0);
    assert.equal(await ws.closed, 1001, "going away");
    await sub.done;
  });

  function baseEnvFrom(p: HeraldProcess): Record<string, string> {
    return p.env;
  }
});
