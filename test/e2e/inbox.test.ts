import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parse, print } from "graphql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import type { Client } from "graphql-ws";
import { Redis } from "ioredis";
import {
  ArchiveNotificationDocument,
  DeleteNotificationDocument,
  FollowDocument,
  InboxNotificationDocument,
  InboxPageDocument,
  MarkAllNotificationsReadDocument,
  MarkNotificationReadDocument,
  MarkNotificationUnreadDocument,
  NotificationAddedDocument,
  SendNotificationDocument,
  UnreadCountChangedDocument,
  UnreadCountDocument,
  type InboxPageQuery,
  type NotificationFilter,
} from "../generated/graphql.js";
import {
  connectWs,
  eventually,
  gql,
  gqlOk,
  postRaw,
  Subscription,
  type WsConnection,
  subscribedInRedis,
} from "../helpers/graphql-client.js";
import { testRedisUrl } from "../helpers/env.js";
import { signUp, untilUnread as untilUnreadOn, type TestUser } from "../helpers/users.js";
import { TEST_SERVICE_KEY, type HeraldProcess } from "../helpers/herald.js";
import { twoApiCluster } from "../helpers/cluster-fixture.js";
import { MAX_ALIASES, MAX_DEPTH } from "../../src/graphql/limits.js";

type Item = InboxPageQuery["notifications"]["edges"][number]["node"];

const service = { "x-api-key": TEST_SERVICE_KEY };
/** Well formed, and no notification has it. */
const UNKNOWN_ID = "6b04dd3b8252ce855395bab6";

const codeOf = (r: { errors?: readonly { extensions?: Record<string, unknown> }[] | undefined }) =>
  r.errors?.[0]?.extensions?.["code"];
const fieldOf = (r: { errors?: readonly { extensions?: Record<string, unknown> }[] | undefined }) =>
  r.errors?.[0]?.extensions?.["field"];

function pick(items: Map<string, Item>, title: string): Item {
  const item = items.get(title);
  assert.ok(item, `a notification titled ${title}`);
  return item;
}

/** The error a subscription over graphql-ws fails with (graphql-ws passes the errors array). */
function subscribeError(client: Client, query: string): Promise<{ message: string; extensions?: { code?: string } }[]> {
  return new Promise((resolve, reject) =>
    client.subscribe(
      { query },
      {
        next: () => reject(new Error("the subscription was accepted")),
        // graphql-ws passes a list of errors for a refused operation, a close event when the server
        // gave up on the whole socket instead.
        error: (err) =>
          resolve(
            Array.isArray(err)
              ? (err as { message: string; extensions?: { code?: string } }[])
              : [{ message: `the socket was closed: ${(err as { code?: number }).code}` }],
          ),
        complete: () => reject(new Error("the subscription completed without an error")),
      },
    ),
  );
}

/**
 * One user's inbox over HTTP and graphql-ws, with one worker and two api instances as separate OS
 * processes: ownership, read/unread/archive/delete, filters, live unread counts on several devices,
 * counts under concurrent changes, pagination under concurrent inserts, and the document limits.
 */
describe("the inbox", () => {
  const fx = twoApiCluster("e2e_inbox");

  /** A new user whose WELCOME is in the inbox already (unread count 1). */
  async function register(): Promise<TestUser> {
    const user = await signUp(fx.apiA.url, "Reader");
    await untilUnread(user, 1);
    return user;
  }

  async function unreadCount(user: TestUser, api = fx.apiA): Promise<number> {
    return (await gqlOk(api.url, UnreadCountDocument, {}, user.auth)).unreadCount;
  }

  const untilUnread = (user: TestUser, expected: number) => untilUnreadOn(fx.apiA.url, user, expected);

  /** Asks another backend's way for a SYSTEM notification to `user`; it is written by a job. */
  async function send(user: TestUser, title: string, api = fx.apiB): Promise<void> {
    const input = { recipientIds: [user.id], title, body: `${title}, the body`, idempotencyKey: `${user.id}:${title}` };
    const r = await gqlOk(api.url, SendNotificationDocument, { input }, service);
    assert.equal(r.sendNotification.replayed, false);
  }

  async function list(user: TestUser, filter?: NotificationFilter, api = fx.apiA): Promise<Item[]> {
    const { notifications } = await gqlOk(
      api.url,
      InboxPageDocument,
      { first: 100, ...(filter ? { filter } : {}) },
      user.auth,
    );
    return notifications.edges.map((e) => e.node);
  }

  /** Sends SYSTEM notifications titled `titles` and waits until all are stored; returns them by title. */
  async function stock(user: TestUser, titles: string[]): Promise<Map<string, Item>> {
    const before = await unreadCount(user);
    await Promise.all(titles.map((t, i) => send(user, t, i % 2 === 0 ? fx.apiA : fx.apiB)));
    await untilUnread(user, before + titles.length);
    const items = await list(user);
    return new Map(items.map((n) => [n.title, n]));
  }

  function connect(user: TestUser, api: HeraldProcess): WsConnection {
    const ws = connectWs(api.url, { authorization: `Bearer ${user.token}` });
    fx.sockets.push(ws);
    return ws;
  }

  interface Device {
    /** Every count shown, in order. */
    values: number[];
    latest(): number | undefined;
    failure?: unknown;
  }

  /** The unread counts one device is shown, as they arrive. */
  function watchCounts(client: Client): Device {
    const device: Device = { values: [], latest: () => device.values.at(-1) };
    client.subscribe<{ unreadCountChanged: number }>(
      { query: print(UnreadCountChangedDocument) },
      {
        next: (r) => {
          if (r.errors) device.failure = r.errors;
          if (r.data) device.values.push(r.data.unreadCountChanged);
        },
        error: (err) => (device.failure = err),
        complete: () => {},
      },
    );
    return device;
  }

  function untilShown(device: Device, expected: number, what: string) {
    return eventually(
      async () => {
        if (device.failure) throw new Error(`${what}: unreadCountChanged failed: ${JSON.stringify(device.failure)}`);
        return Promise.resolve(device.latest() === expected ? true : undefined);
      },
      { timeoutMs: 5000, what: `${what} to show ${expected} (shown: ${JSON.stringify(device.values)})` },
    );
  }

  describe("ownership", () => {
    let owner: TestUser;
    let intruder: TestUser;
    let mine: Item;

    before(async () => {
      [owner, intruder] = await Promise.all([register(), register()]);
      mine = pick(await stock(owner, ["Owner's secret"]), "Owner's secret");
    });

    /** Every operation on one notification id, as `user`. */
    const operations = (user: TestUser, id: string) =>
      [
        ["notification", () => gql(fx.apiB.url, InboxNotificationDocument, { id }, user.auth)],
        ["markNotificationRead", () => gql(fx.apiB.url, MarkNotificationReadDocument, { id }, user.auth)],
        ["markNotificationUnread", () => gql(fx.apiB.url, MarkNotificationUnreadDocument, { id }, user.auth)],
        ["archiveNotification", () => gql(fx.apiB.url, ArchiveNotificationDocument, { id }, user.auth)],
        ["deleteNotification", () => gql(fx.apiB.url, DeleteNotificationDocument, { id }, user.auth)],
      ] as const;

    it("answers NOT_FOUND, never FORBIDDEN, for another user's notification, and leaves it alone", async () => {
      // Read first, so that a markNotificationUnread that reached it would show.
      await gqlOk(fx.apiA.url, MarkNotificationReadDocument, { id: mine.id }, owner.auth);
      const before = (await gqlOk(fx.apiA.url, InboxNotificationDocument, { id: mine.id }, owner.auth)).notification;
      assert.ok(before?.readAt);

      for (const [name, run] of operations(intruder, mine.id)) {
        const r = await run();
        assert.equal(codeOf(r), "NOT_FOUND", `${name}: ${JSON.stringify(r.errors)}`);
        assert.doesNotMatch(JSON.stringify(r), /Owner's secret/);
      }
      // Once more while it is unread, for markNotificationRead and archiveNotification to matter.
      await gqlOk(fx.apiA.url, MarkNotificationUnreadDocument, { id: mine.id }, owner.auth);
      for (const [name, run] of operations(intruder, mine.id)) {
        assert.equal(codeOf(await run()), "NOT_FOUND", name);
      }

      const after = (await gqlOk(fx.apiA.url, InboxNotificationDocument, { id: mine.id }, owner.auth)).notification;
      assert.deepEqual(after, { ...before, readAt: null }, "the owner's notification is as the owner left it");
      assert.equal(await unreadCount(owner), 2);
      assert.equal(await unreadCount(intruder), 1);
      assert.deepEqual(
        (await list(intruder)).map((n) => n.kind),
        ["WELCOME"],
      );
    });

    it("answers NOT_FOUND for an id nobody has and BAD_USER_INPUT (id) for a malformed one", async () => {
      for (const [name, run] of operations(owner, UNKNOWN_ID)) {
        assert.equal(codeOf(await run()), "NOT_FOUND", name);
      }
      for (const [name, run] of operations(owner, "not-an-id")) {
        const r = await run();
        assert.equal(codeOf(r), "BAD_USER_INPUT", name);
        assert.equal(fieldOf(r), "id", name);
      }
    });
  });

  describe("read, unread, archive, delete", () => {
    it("changes readAt and the unread count, live, and tolerates repeats", async () => {
      const user = await register();
      const items = await stock(user, ["one", "two", "three"]);
      const [one, two, three] = [pick(items, "one"), pick(items, "two"), pick(items, "three")];
      const device = watchCounts(connect(user, fx.apiA).client);
      await subscribedInRedis(fx.redis, `INBOX:${user.id}`);
      assert.equal(await unreadCount(user), 4);

      const read = (await gqlOk(fx.apiB.url, MarkNotificationReadDocument, { id: one.id }, user.auth))
        .markNotificationRead;
      assert.equal(read.id, one.id);
      assert.ok(read.readAt);
      assert.equal(await unreadCount(user), 3);
      await untilShown(device, 3, "the device");
      const again = await gqlOk(fx.apiB.url, MarkNotificationReadDocument, { id: one.id }, user.auth);
      assert.ok(again.markNotificationRead.readAt, "marking read twice is not an error");
      assert.equal(await unreadCount(user), 3);

      const unread = (await gqlOk(fx.apiA.url, MarkNotificationUnreadDocument, { id: one.id }, user.auth))
        .markNotificationUnread;
      assert.equal(unread.readAt, null);
      assert.equal(await unreadCount(user), 4);
      await untilShown(device, 4, "the device");
      const unreadAgain = await gqlOk(fx.apiA.url, MarkNotificationUnreadDocument, { id: one.id }, user.auth);
      assert.equal(unreadAgain.markNotificationUnread.readAt, null, "marking unread twice is not an error");
      assert.deepEqual((await list(user, { status: "UNREAD" })).map((n) => n.title).sort(), [
        "Welcome to Herald",
        "one",
        "three",
        "two",
      ]);

      // Archived: out of the default list and of the count, in the archive, still fetchable.
      const archived = (await gqlOk(fx.apiB.url, ArchiveNotificationDocument, { id: two.id }, user.auth))
        .archiveNotification;
      assert.ok(archived.archivedAt);
      assert.equal(archived.readAt, null);
      assert.equal(await unreadCount(user), 3, "archived notifications are not counted");
      await untilShown(device, 3, "the device");
      assert.ok(!(await list(user)).some((n) => n.id === two.id), "archived is hidden by default");
      assert.ok(!(await list(user, { archived: false })).some((n) => n.id === two.id));
      assert.deepEqual(
        (await list(user, { archived: true })).map((n) => n.id),
        [two.id],
      );
      const fetched = (await gqlOk(fx.apiA.url, InboxNotificationDocument, { id: two.id }, user.auth)).notification;
      assert.equal(fetched?.archivedAt, archived.archivedAt);
      const archivedAgain = await gql(fx.apiB.url, ArchiveNotificationDocument, { id: two.id }, user.auth);
      assert.equal(archivedAgain.errors, undefined, "archiving twice is not an error");

      // Deleted: gone everywhere.
      assert.equal(
        (await gqlOk(fx.apiA.url, DeleteNotificationDocument, { id: three.id }, user.auth)).deleteNotification,
        true,
      );
      assert.equal(await unreadCount(user), 2);
      await untilShown(device, 2, "the device");
      assert.equal(codeOf(await gql(fx.apiB.url, InboxNotificationDocument, { id: three.id }, user.auth)), "NOT_FOUND");
      assert.equal(
        codeOf(await gql(fx.apiB.url, DeleteNotificationDocument, { id: three.id }, user.auth)),
        "NOT_FOUND",
      );
      assert.equal(
        codeOf(await gql(fx.apiB.url, MarkNotificationReadDocument, { id: three.id }, user.auth)),
        "NOT_FOUND",
      );
      assert.ok(!(await list(user)).some((n) => n.id === three.id));
      assert.ok(!(await list(user, { archived: true })).some((n) => n.id === three.id));

      // Unread now: the welcome, "one", and the archived "two".
      const changed = await gqlOk(fx.apiB.url, MarkAllNotificationsReadDocument, {}, user.auth);
      assert.equal(changed.markAllNotificationsRead, 3, "every unread one, the archived one included");
      assert.equal(await unreadCount(user), 0);
      await untilShown(device, 0, "the device");
      assert.equal(
        (await gqlOk(fx.apiA.url, MarkAllNotificationsReadDocument, {}, user.auth)).markAllNotificationsRead,
        0,
      );
      assert.deepEqual(await list(user, { status: "UNREAD" }), []);
      assert.deepEqual(await list(user, { status: "UNREAD", archived: true }), []);
      assert.ok((await list(user, { archived: true }))[0]?.readAt, "the archived one was marked read too");
    });
  });

  describe("filters", () => {
    it("filters by status and kind, together and apart", async () => {
      const [user, fan] = await Promise.all([register(), register()]);
      const items = await stock(user, ["alpha", "beta", "gamma"]);
      await gqlOk(fx.apiA.url, FollowDocument, { userId: user.id }, fan.auth);
      await untilUnread(user, 5);
      const beta = pick(items, "beta");
      await gqlOk(fx.apiA.url, MarkNotificationReadDocument, { id: beta.id }, user.auth);

      const titles = async (filter?: NotificationFilter) => (await list(user, filter)).map((n) => n.title).sort();
      const kinds = async (filter?: NotificationFilter) => [...new Set((await list(user, filter)).map((n) => n.kind))];

      assert.equal((await list(user)).length, 5);
      assert.equal((await list(user, { status: "ALL" })).length, 5);
      assert.deepEqual(await titles({ status: "READ" }), ["beta"]);
      assert.equal((await list(user, { status: "UNREAD" })).length, 4);
      assert.ok(!(await list(user, { status: "UNREAD" })).some((n) => n.id === beta.id));
      assert.deepEqual(await titles({ kinds: ["SYSTEM"] }), ["alpha", "beta", "gamma"]);
      assert.deepEqual(await kinds({ kinds: ["WELCOME"] }), ["WELCOME"]);
      assert.deepEqual((await kinds({ kinds: ["NEW_FOLLOWER", "WELCOME"] })).sort(), ["NEW_FOLLOWER", "WELCOME"]);
      assert.equal((await list(user, { kinds: ["NEW_FOLLOWER", "WELCOME"] })).length, 2);
      assert.deepEqual(await list(user, { kinds: ["NEW_COMMENT"] }), []);
      assert.deepEqual(await titles({ kinds: ["SYSTEM"], status: "UNREAD" }), ["alpha", "gamma"]);
      assert.deepEqual(await list(user, { kinds: ["WELCOME"], status: "READ" }), []);
      assert.equal((await list(user, { kinds: [] })).length, 5, "an empty kinds list filters nothing");
    });
  });

  describe("live unread counts", () => {
    it("reaches every device of the user, on different instances, when one marks all read", async () => {
      const user = await register();
      await stock(user, ["a", "b"]);
      const phone = watchCounts(connect(user, fx.apiA).client);
      const laptop = watchCounts(connect(user, fx.apiB).client);
      // Subscribed from both instances: two Redis subscribers on the user's channel.
      await subscribedInRedis(fx.redis, `INBOX:${user.id}`, 2);

      const changed = await gqlOk(fx.apiB.url, MarkAllNotificationsReadDocument, {}, user.auth);
      assert.equal(changed.markAllNotificationsRead, 3);
      await untilShown(phone, 0, "the phone (api A)");
      await untilShown(laptop, 0, "the laptop (api B)");

      await send(user, "c");
      await untilShown(phone, 1, "the phone (api A)");
      await untilShown(laptop, 1, "the laptop (api B)");
    });

    it("ends on the true count after many concurrent changes, and never shows a late stale one", async () => {
      // Each change announces the count it read after writing. Changes running at the same time
      // (here on two api instances, each with many requests in flight) read their counts in one
      // order and may publish them in another: a count read before the last change can reach Redis
      // after the count read after it. A device that showed whatever arrived last would keep that
      // stale number, the final unreadCount query would never match it, and `eventually` below
      // times out. Such a race is rare on an idle machine, so each round also makes it happen for
      // certain: it replays, through Redis, an announcement from the start of the round, as an
      // instance paused between reading a count and publishing it would deliver it, and then makes
      // one real change. A device must go straight to the new count; one that takes counts in
      // arrival order shows the stale one first.
      const user = await register();
      const titles = Array.from({ length: 12 }, (_, i) => `n${i}`);
      const ids = [...(await stock(user, titles)).values()].map((n) => n.id);
      const channel = `INBOX:${user.id}`;
      const phone = watchCounts(connect(user, fx.apiA).client);
      const laptop = watchCounts(connect(user, fx.apiB).client);
      const announcements: string[] = [];
      const recorder = new Redis(testRedisUrl());
      recorder.on("message", (_channel: string, message: string) => announcements.push(message));
      await recorder.subscribe(channel);
      // Both instances and the recorder.
      await subscribedInRedis(fx.redis, channel, 3);

      /** Marks the notification read if it is unread and unread if it is read: always a change. */
      const flip = async (id: string) => {
        const { notification } = await gqlOk(fx.apiA.url, InboxNotificationDocument, { id }, user.auth);
        if (notification?.readAt) await gqlOk(fx.apiB.url, MarkNotificationUnreadDocument, { id }, user.auth);
        else await gqlOk(fx.apiB.url, MarkNotificationReadDocument, { id }, user.auth);
      };
      /** Both devices show the count a query answers. */
      const shown = (what: string) =>
        eventually(
          async () => {
            const count = await unreadCount(user, fx.apiB);
            return count === phone.latest() && count === laptop.latest() ? count : undefined;
          },
          { timeoutMs: 5000, what: `${what}: both devices to show the queried unread count` },
        );

      try {
        for (let round = 0; round < 5; round++) {
          const flipped = ids[round] ?? "";
          announcements.length = 0;
          await flip(flipped);
          // Soon stale: everything below is announced after it.
          const stale = await eventually(async () => Promise.resolve(announcements[0]), {
            timeoutMs: 5000,
            what: "an announcement",
          });

          const ops = Array.from({ length: 40 }, (_, i) => {
            const api = i % 2 === 0 ? fx.apiA : fx.apiB;
            const id = ids[(i * 7 + round) % ids.length] ?? "";
            if (i % 13 === 12) return gql(api.url, MarkAllNotificationsReadDocument, {}, user.auth);
            return (i + round) % 3 === 0
              ? gql(api.url, MarkNotificationReadDocument, { id }, user.auth)
              : gql(api.url, MarkNotificationUnreadDocument, { id }, user.auth);
          });
          const results = await Promise.all(ops);
          for (const r of results) assert.equal(r.errors, undefined, JSON.stringify(r.errors));
          const truth = await shown(`round ${round}, after ${ops.length} concurrent changes`);
          assert.equal(truth, (await list(user, { status: "UNREAD" })).length);

          // One more change, announced after everything above: once the devices show it, nothing
          // from the burst is still on its way to them.
          await flip(flipped);
          await shown(`round ${round}, after one more change`);
          const [phoneSeen, laptopSeen] = [phone.values.length, laptop.values.length];
          // The stale announcement arrives late, then one real change.
          await fx.redis.publish(channel, stale);
          await flip(flipped);
          const fresh = await shown(`round ${round}, after the late announcement`);
          assert.deepEqual(
            [phone.values.slice(phoneSeen), laptop.values.slice(laptopSeen)],
            [[fresh], [fresh]],
            `round ${round}: each device shows the new count ${fresh} and nothing else`,
          );
        }
      } finally {
        recorder.disconnect();
      }
    });
  });

  describe("pagination", () => {
    it("sees every notification once, newest first, while new ones keep arriving", async () => {
      const user = await register();
      const initialTitles = Array.from({ length: 45 }, (_, i) => `old ${i}`);
      // One request, and so one job, per notification, all at once: the worker runs them side by
      // side, and some share a createdAt millisecond, which only the id then orders.
      await Promise.all(initialTitles.map((t, i) => send(user, t, i % 2 === 0 ? fx.apiA : fx.apiB)));
      await untilUnread(user, 46);
      const existing = await list(user);
      assert.equal(existing.length, 46);

      const ws = connect(user, fx.apiA);
      const added = new Subscription(ws.client, NotificationAddedDocument);
      await subscribedInRedis(fx.redis, `INBOX:${user.id}`);

      const seen: Item[] = [];
      let after: string | null | undefined;
      let sentLater = 0;
      let arrived = 0;
      /** Each notification is pushed only after it is stored: once pushed, the next page could show it. */
      const allStored = async () => {
        for (; arrived < sentLater; arrived++) assert.equal((await added.next()).errors, undefined);
      };
      for (let page = 0; ; page++) {
        // One more arrives while the page is being read, as a client would experience it.
        const racing = send(user, `racing ${page}`);
        const r = await gqlOk(fx.apiB.url, InboxPageDocument, { first: 10, ...(after ? { after } : {}) }, user.auth);
        await racing;
        sentLater += 1;
        seen.push(...r.notifications.edges.map((e) => e.node));
        assert.equal(r.notifications.pageInfo.endCursor, r.notifications.edges.at(-1)?.cursor);
        if (!r.notifications.pageInfo.hasNextPage) break;
        after = r.notifications.pageInfo.endCursor;
        // And more are stored between pages, for certain.
        await Promise.all([0, 1, 2, 3].map((k) => send(user, `between ${page}.${k}`, k % 2 === 0 ? fx.apiA : fx.apiB)));
        sentLater += 4;
        await allStored();
        assert.ok(page < 20, "paging ends");
      }
      await allStored();
      assert.ok(sentLater >= 20, `${sentLater} notifications arrived while paging`);

      const ids = seen.map((n) => n.id);
      assert.equal(new Set(ids).size, ids.length, "no notification is repeated");
      const seenIds = new Set(ids);
      const missed = existing.filter((n) => !seenIds.has(n.id));
      assert.deepEqual(missed, [], "every notification that existed when paging started is seen");
      for (let i = 1; i < seen.length; i++) {
        const [a, b] = [seen[i - 1]!, seen[i]!];
        const newer = Date.parse(a.createdAt) > Date.parse(b.createdAt) || (a.createdAt === b.createdAt && a.id > b.id);
        assert.ok(newer, `newest first: ${JSON.stringify(a)} before ${JSON.stringify(b)}`);
      }
      assert.equal(await unreadCount(user), 46 + sentLater);

      // One at a time, every pair of neighbours is a page boundary: notifications sharing a
      // createdAt must still each be seen once.
      const all = await list(user);
      const oneByOne: string[] = [];
      for (let cursor: string | null | undefined, more = true; more;) {
        const r = await gqlOk(
          fx.apiA.url,
          InboxPageDocument,
          { first: 1, ...(cursor ? { after: cursor } : {}) },
          user.auth,
        );
        oneByOne.push(...r.notifications.edges.map((e) => e.node.id));
        [cursor, more] = [r.notifications.pageInfo.endCursor, r.notifications.pageInfo.hasNextPage];
      }
      assert.deepEqual(
        oneByOne,
        all.map((n) => n.id),
      );
    });
  });

  describe("limits", () => {
    let user: TestUser;
    before(async () => {
      user = await register();
    });

    it("refuses first over 100 with BAD_USER_INPUT on first", async () => {
      const r = await gql(fx.apiA.url, InboxPageDocument, { first: 101 }, user.auth);
      assert.equal(codeOf(r), "BAD_USER_INPUT");
      assert.equal(fieldOf(r), "first");
      const ok = await gqlOk(fx.apiA.url, InboxPageDocument, { first: 100 }, user.auth);
      assert.equal(ok.notifications.edges.length, 1);
    });

    /**
     * A document `levels` fields deep. No path through Herald's own types is deeper than seven
     * fields (notifications, edges, node, comment, post, author, id), so the deep one walks the
     * introspection types, as a hostile client would; only `__schema` is exempt from the limit.
     */
    const ofDepth = (levels: number) => {
      // __type, fields, type, then `ofType`s, then name.
      const nested = levels - 4;
      return `{ __type(name: "Notification") { fields { type { ${"ofType { ".repeat(nested)}name${" }".repeat(nested)} } } } }`;
    };

    it("refuses a document deeper than the limit over HTTP, and accepts one at the limit", async () => {
      const deepestInbox = await postRaw(
        fx.apiA.url,
        { query: "{ notifications { edges { node { comment { post { author { id } } } } } } }" },
        user.auth,
      );
      assert.equal(deepestInbox.errors, undefined, JSON.stringify(deepestInbox.errors));
      assert.deepEqual(deepestInbox.data, { notifications: { edges: [{ node: { comment: null } }] } });
      const atLimit = await postRaw<{ __type: { fields: unknown[] } }>(fx.apiA.url, { query: ofDepth(MAX_DEPTH) });
      assert.equal(atLimit.errors, undefined, JSON.stringify(atLimit.errors));
      assert.ok(atLimit.data?.__type.fields.length);

      const tooDeep = await postRaw(fx.apiA.url, { query: ofDepth(MAX_DEPTH + 1) }, user.auth);
      assert.equal(codeOf(tooDeep), "GRAPHQL_VALIDATION_FAILED", JSON.stringify(tooDeep));
      assert.equal(tooDeep.status, 400);
      assert.match(tooDeep.errors?.[0]?.message ?? "", /depth/i);
      assert.equal(tooDeep.data, undefined);
    });

    it("refuses too many aliases over HTTP, and accepts the limit", async () => {
      const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `c${i}: unreadCount`).join(" ")} }`;
      const atLimit = await postRaw<Record<string, number>>(fx.apiB.url, { query: aliases(MAX_ALIASES) }, user.auth);
      assert.equal(atLimit.errors, undefined);
      assert.equal(Object.keys(atLimit.data ?? {}).length, MAX_ALIASES);
      const tooMany = await postRaw(fx.apiB.url, { query: aliases(MAX_ALIASES + 1) }, user.auth);
      assert.equal(codeOf(tooMany), "GRAPHQL_VALIDATION_FAILED", JSON.stringify(tooMany));
      assert.equal(tooMany.status, 400);
      assert.match(tooMany.errors?.[0]?.message ?? "", /alias/i);
    });

    it("refuses a document that costs too much, and accepts a modest one", async () => {
      // A page of 100 written inline multiplies the cost of everything below it, deep down.
      const page = (alias: string) =>
        `${alias}: notifications(first: 100) { edges { node { id title comment { post { author { id displayName followerCount createdAt } } } } } }`;
      const modest = await postRaw(fx.apiA.url, { query: `{ ${page("a")} }` }, user.auth);
      assert.equal(modest.errors, undefined, JSON.stringify(modest.errors));
      // Two such pages cost about 18,800, over MAX_COST.
      const costly = await postRaw(fx.apiA.url, { query: `{ ${page("a")} ${page("b")} }` }, user.auth);
      assert.equal(codeOf(costly), "GRAPHQL_VALIDATION_FAILED", JSON.stringify(costly));
      assert.match(costly.errors?.[0]?.message ?? "", /cost/i);
      assert.equal(costly.status, 400);
    });

    it("accepts an inbox query written with nested fragments, as Apollo Client apps write them", async () => {
      // Five levels of data (notifications, edges, node, post, author, id): well within the limit,
      // whether the selection is written inline or split into colocated fragments.
      const query = `query Inbox { notifications { edges { node { ...Item } } } }
        fragment Person on User { id displayName }
        fragment PostCard on Post { id title author { ...Person } }
        fragment Item on Notification { id title actor { ...Person } post { ...PostCard } }`;
      const r = await postRaw(fx.apiA.url, { query }, user.auth);
      assert.equal(r.errors, undefined, JSON.stringify(r.errors));
      assert.equal(r.status, 200);
    });

    it("accepts first: 100 with the usual inbox selection, as a literal as well as a variable", async () => {
      // The selection of test/operations/notification.graphql (NotificationFields), inline.
      const selection = `edges { cursor node { id kind title body createdAt readAt archivedAt
        actor { id displayName } deliveries { channel status attempts deliveredAt } } }
        pageInfo { hasNextPage endCursor }`;
      const asVariable = await postRaw(
        fx.apiA.url,
        { query: `query ($first: Int) { notifications(first: $first) { ${selection} } }`, variables: { first: 100 } },
        user.auth,
      );
      assert.equal(asVariable.errors, undefined, JSON.stringify(asVariable.errors));
      const asLiteral = await postRaw(
        fx.apiA.url,
        { query: `{ notifications(first: 100) { ${selection} } }` },
        user.auth,
      );
      assert.equal(asLiteral.errors, undefined, JSON.stringify(asLiteral.errors));
      assert.deepEqual(asLiteral.data, asVariable.data);
    });

    it("refuses the same documents over WebSocket, and the socket lives on", async () => {
      const ws = connect(user, fx.apiB);
      // graphql-ws carries queries too: the deep document is the one refused over HTTP above.
      const deep = await subscribeError(ws.client, ofDepth(MAX_DEPTH + 1));
      assert.equal(deep[0]?.extensions?.code, "GRAPHQL_VALIDATION_FAILED", JSON.stringify(deep));
      assert.match(deep[0]?.message ?? "", /depth/i);

      const aliased = (n: number) =>
        `subscription { notificationAdded { ${Array.from({ length: n }, (_, i) => `f${i}: id`).join(" ")} } }`;
      const aliases = await subscribeError(ws.client, aliased(MAX_ALIASES + 1));
      assert.equal(aliases[0]?.extensions?.code, "GRAPHQL_VALIDATION_FAILED", JSON.stringify(aliases));
      assert.match(aliases[0]?.message ?? "", /alias/i);

      // At the limit, on the same socket, the subscription is accepted and delivers.
      const atLimit = parse(aliased(MAX_ALIASES)) as TypedDocumentNode<{ notificationAdded: Record<string, string> }>;
      const live = new Subscription(ws.client, atLimit);
      await subscribedInRedis(fx.redis, `INBOX:${user.id}`);
      await send(user, "within limits");
      const event = await live.next();
      assert.equal(event.errors, undefined, JSON.stringify(event.errors));
      const fields = event.data?.notificationAdded ?? {};
      assert.equal(Object.keys(fields).length, MAX_ALIASES);
      assert.equal(new Set(Object.values(fields)).size, 1, "every alias is the one notification's id");
    });
  });
});
