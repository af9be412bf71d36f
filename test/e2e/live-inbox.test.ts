import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { print } from "graphql";
import {
  ArchiveNotificationDocument,
  DeleteNotificationDocument,
  InboxEventsDocument,
  InboxStartDocument,
  MarkAllNotificationsReadDocument,
  MarkNotificationReadDocument,
  MarkNotificationUnreadDocument,
  SendNotificationDocument,
  UnreadCountDocument,
  type InboxStartQuery,
} from "../generated/graphql.js";
import { connectWs, gqlOk } from "../helpers/graphql-client.js";
import { LiveInbox, type StreamEvent } from "../helpers/inbox-stream.js";
import { signUp, untilUnread, type TestUser } from "../helpers/users.js";
import { TEST_SERVICE_KEY } from "../helpers/herald.js";
import { twoApiCluster } from "../helpers/cluster-fixture.js";

const service = { "x-api-key": TEST_SERVICE_KEY };

type Item = InboxStartQuery["notifications"]["edges"][number]["node"];

/** What a client holds of its inbox: each notification's read and archived state, by id. */
type View = Map<string, { read: boolean; archived: boolean }>;

/** Applies events as a client does: each carries the state after it, so applying one twice is harmless. */
function apply(view: View, events: readonly StreamEvent[]): View {
  for (const e of events) {
    if (e.type === "DELETED") view.delete(e.notificationId ?? "");
    else if (e.type === "ALL_READ") for (const state of view.values()) state.read = true;
    else if (e.notification) {
      view.set(e.notification.id, { read: e.notification.readAt != null, archived: e.notification.archivedAt != null });
    }
  }
  return view;
}

function viewOf(items: readonly Item[]): View {
  return new Map(items.map((n) => [n.id, { read: n.readAt != null, archived: n.archivedAt != null }]));
}

describe("live inbox: resumable, gap-free", () => {
  const fx = twoApiCluster("e2e_stream");
  let sent = 0;

  /** A SYSTEM notification to `user`, asked for the way another backend does; a job writes it. */
  async function send(user: TestUser, title: string, api = fx.apiB): Promise<void> {
    sent += 1;
    const input = { recipientIds: [user.id], title, body: `${title}, the body`, idempotencyKey: `${user.id}:${sent}` };
    await gqlOk(api.url, SendNotificationDocument, { input }, service);
  }

  /** Every notification of the user as the server has it, archived ones included, and the stream's position. */
  async function server(user: TestUser): Promise<{ view: View; streamCursor: string; unread: number }> {
    const [live, archived, count] = await Promise.all([
      gqlOk(fx.apiA.url, InboxStartDocument, { first: 100 }, user.auth),
      gqlOk(fx.apiA.url, InboxStartDocument, { first: 100, filter: { archived: true } }, user.auth),
      gqlOk(fx.apiA.url, UnreadCountDocument, {}, user.auth),
    ]);
    assert.equal(live.notifications.pageInfo.hasNextPage, false);
    return {
      view: viewOf([...live.notifications.edges, ...archived.notifications.edges].map((e) => e.node)),
      streamCursor: live.notifications.streamCursor,
      unread: count.unreadCount,
    };
  }

  function device(user: TestUser, api: () => string, after: string | null, known?: View): LiveInbox {
    const inbox = new LiveInbox(api, user.token, after, new Set(known?.keys()));
    fx.sockets.push({ client: inbox.client, closed: new Promise(() => {}), dispose: () => inbox.close() });
    return inbox;
  }

  it("starts from a page's streamCursor and then hears every change", async () => {
    const user = await signUp(fx.apiA.url, "Starter");
    await untilUnread(fx.apiA.url, user, 1);
    const start = await server(user);
    const phone = device(user, () => fx.apiA.url, start.streamCursor, start.view);
    await send(user, "first");
    const [added] = await phone.untilCount(1, "the notification sent after the page");
    assert.equal(added?.type, "ADDED");
    assert.equal(added?.notification?.title, "first");
    assert.equal(added?.unreadCount, 2);
    assert.deepEqual(apply(start.view, phone.events), (await server(user)).view);
  });

  it("replays exactly the 100 changes a client missed, in order, on the other instance, then goes on live", async () => {
    const user = await signUp(fx.apiA.url, "Traveller");
    await untilUnread(fx.apiA.url, user, 1);
    const start = await server(user);
    const phone = device(user, () => fx.apiA.url, start.streamCursor, start.view);
    await send(user, "before leaving");
    await phone.untilCount(1, "a first event");
    await phone.close();
    const cursor = phone.last?.cursor ?? "";

    // While it is away: 30 arrivals, then 70 changes of every other kind, each a real change.
    const titles = Array.from({ length: 30 }, (_, i) => `away ${i}`);
    await Promise.all(titles.map((t, i) => send(user, t, i % 2 ? fx.apiA : fx.apiB)));
    await untilUnread(fx.apiA.url, user, 32);
    const state = (await server(user)).view;
    const expected: { type: string; id: string | null }[] = [];
    const pick = (want: (s: { read: boolean; archived: boolean }) => boolean) =>
      [...state].find(([, s]) => want(s))?.[0];
    for (let i = 0; expected.length < 70; i += 1) {
      const api = i % 2 ? fx.apiA.url : fx.apiB.url;
      const step = i % 6;
      const unread = pick((s) => !s.read);
      const read = pick((s) => s.read);
      const shown = pick((s) => !s.archived);
      if (step === 0 && unread) {
        await gqlOk(api, MarkNotificationReadDocument, { id: unread }, user.auth);
        state.set(unread, { ...state.get(unread), read: true, archived: state.get(unread)?.archived ?? false });
        expected.push({ type: "READ", id: unread });
      } else if ((step === 1 || step === 4) && read) {
        await gqlOk(api, MarkNotificationUnreadDocument, { id: read }, user.auth);
        state.set(read, { read: false, archived: state.get(read)?.archived ?? false });
        expected.push({ type: "UNREAD", id: read });
      } else if (step === 2 && shown) {
        await gqlOk(api, ArchiveNotificationDocument, { id: shown }, user.auth);
        state.set(shown, { read: state.get(shown)?.read ?? false, archived: true });
        expected.push({ type: "ARCHIVED", id: shown });
      } else if (step === 3 && state.size > 10) {
        const id = [...state.keys()][i % state.size] ?? "";
        await gqlOk(api, DeleteNotificationDocument, { id }, user.auth);
        state.delete(id);
        expected.push({ type: "DELETED", id });
      } else if (step === 5 && unread) {
        await gqlOk(api, MarkAllNotificationsReadDocument, {}, user.auth);
        for (const s of state.values()) s.read = true;
        expected.push({ type: "ALL_READ", id: null });
      }
    }

    // Back, on the other instance, from its cursor.
    const back = device(user, () => fx.apiB.url, cursor);
    const replayed = await back.untilCount(100, "the missed changes");
    const arrivals = replayed.slice(0, 30);
    assert.ok(
      arrivals.every((e) => e.type === "ADDED"),
      "the arrivals first, as they were stored",
    );
    assert.deepEqual(arrivals.map((e) => e.notification?.title).sort(), [...titles].sort());
    assert.deepEqual(
      arrivals.map((e) => e.unreadCount),
      Array.from({ length: 30 }, (_, i) => 3 + i),
      "each arrival's count, one more each time",
    );
    assert.deepEqual(
      replayed.slice(30, 100).map((e) => ({ type: e.type, id: e.notificationId ?? null })),
      expected,
    );
    const now = await server(user);
    assert.equal(replayed.at(-1)?.unreadCount, now.unread);
    assert.deepEqual(apply(new Map([...start.view, ...apply(new Map(), phone.events)]), replayed), now.view);

    await send(user, "welcome back");
    const [live] = (await back.untilCount(101, "a live event after the replay")).slice(100);
    assert.equal(live?.notification?.title, "welcome back");
    assert.equal(back.events.length, 101, "nothing twice");
  });

  it("resumes during a burst of 500 arrivals: each exactly once, in the order stored", async () => {
    const user = await signUp(fx.apiA.url, "Popular");
    await untilUnread(fx.apiA.url, user, 1);
    const start = await server(user);
    const phone = device(user, () => fx.apiA.url, start.streamCursor, start.view);
    const titles = Array.from({ length: 500 }, (_, i) => `burst ${i}`);
    const burst = (async () => {
      for (let i = 0; i < titles.length; i += 25) {
        await Promise.all(titles.slice(i, i + 25).map((t, j) => send(user, t, j % 2 ? fx.apiA : fx.apiB)));
      }
    })();
    // Mid-burst, the phone drops and comes back on the other instance.
    await phone.untilCount(100, "the first part of the burst", 60_000);
    await phone.close();
    const before = [...phone.events];
    const back = device(user, () => fx.apiB.url, before.at(-1)?.cursor ?? null);
    await burst;
    const after = await back.untilCount(500 - before.length, "the rest of the burst", 60_000);
    const all = [...before, ...after];
    assert.equal(all.length, 500);
    assert.equal(new Set(all.map((e) => e.notificationId)).size, 500, "no notification twice");
    assert.deepEqual(new Set(all.map((e) => e.notification?.title)), new Set(titles));
    assert.deepEqual(
      all.map((e) => e.unreadCount),
      Array.from({ length: 500 }, (_, i) => 2 + i),
      "in the order stored, none missing: the count goes up by one each time",
    );
  });

  it("answers a malformed cursor with BAD_USER_INPUT, and another user's cursor with RESET", async () => {
    const [me, other] = await Promise.all([signUp(fx.apiA.url, "Me"), signUp(fx.apiA.url, "Other")]);
    await Promise.all([untilUnread(fx.apiA.url, me, 1), untilUnread(fx.apiA.url, other, 1)]);
    const ws = connectWs(fx.apiA.url, { authorization: `Bearer ${me.token}` });
    fx.sockets.push(ws);
    const refused = await new Promise<unknown>((resolve) =>
      ws.client.subscribe(
        { query: print(InboxEventsDocument), variables: { after: "not-a-cursor" } },
        { next: resolve, error: resolve, complete: () => resolve("completed") },
      ),
    );
    assert.equal(
      (refused as { errors?: { extensions?: { code?: string } }[] }).errors?.[0]?.extensions?.code,
      "BAD_USER_INPUT",
      JSON.stringify(refused),
    );

    const theirs = (await server(other)).streamCursor;
    const mine = await server(me);
    const phone = device(me, () => fx.apiA.url, theirs, mine.view);
    const [reset] = await phone.untilCount(1, "the RESET");
    assert.equal(reset?.type, "RESET");
    assert.equal(reset?.unreadCount, 1, "the caller's own count");
    assert.equal(reset?.notification, null);
    await send(me, "after the reset");
    const [, next] = await phone.untilCount(2, "a live event after the RESET");
    assert.equal(next?.notification?.title, "after the reset");
    assert.equal(next?.unreadCount, 2);
  });
});
