import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import {
  InboxStartDocument,
  RefreshDocument,
  RegisterDocument,
  SendNotificationDocument,
} from "../generated/graphql.js";
import { bearer, eventually, gqlOk } from "../helpers/graphql-client.js";
import { baseEnv, startHerald, TEST_SERVICE_KEY, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";
import { subscribeInbox, type StreamEvent } from "../helpers/inbox-stream.js";

/**
 * Short-lived access tokens close sockets as they expire. A client following the recipe of
 * docs/clients.md (refresh in connectionParams, resume inboxEvents from its last cursor) goes
 * through every expiry without missing or repeating a notification.
 */
describe("a socket outlives no token, and the client misses nothing", () => {
  let herald: HeraldProcess;

  before(async () => {
    herald = await startHerald({
      ...baseEnv(uniqueDatabase("e2e_token_expiry")),
      ROLES: "api,worker",
      JWT_TTL_SECONDS: "2",
    });
  });

  after(async () => {
    assert.equal(await herald.stop(), 0, herald.output());
  });

  it("refreshes on each reconnect after an expiry and resumes the inbox stream exactly", async () => {
    const { register } = await gqlOk(herald.url, RegisterDocument, {
      input: {
        email: `expiring.${Date.now()}@example.com`,
        password: "correct horse battery",
        displayName: "Expiring",
      },
    });
    let session = { token: register.token, expiresAt: String(register.expiresAt), refreshToken: register.refreshToken };
    let refreshes = 0;
    let refreshing: Promise<void> | undefined;
    const refresh = (): Promise<void> => {
      refreshing ??= (async () => {
        const { refresh: next } = await gqlOk(herald.url, RefreshDocument, { refreshToken: session.refreshToken });
        session = { token: next.token, expiresAt: String(next.expiresAt), refreshToken: next.refreshToken };
        refreshes += 1;
      })().finally(() => (refreshing = undefined));
      return refreshing;
    };

    const closes: number[] = [];
    const client = createClient({
      url: `${herald.url.replace(/^http/, "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: async () => {
        if (Date.parse(session.expiresAt) - Date.now() < 1000) await refresh();
        return { authorization: `Bearer ${session.token}` };
      },
      retryAttempts: Number.POSITIVE_INFINITY,
      shouldRetry: () => true,
      retryWait: () => new Promise((resolve) => setTimeout(resolve, 20)),
      on: { closed: (event) => closes.push((event as { code: number }).code) },
    });
    // As the recipe says, the stream starts at a page's cursor: from `null` it would start whenever
    // the subscription reached the server, after the first notification perhaps.
    const start = await gqlOk(herald.url, InboxStartDocument, { first: 1 }, bearer(session.token));
    const events: StreamEvent[] = [];
    let failure: unknown;
    const stop = subscribeInbox(client, start.notifications.streamCursor, {
      next: (event) => events.push(event),
      error: (error) => (failure = error ?? "failed"),
    });

    const sent: string[] = [];
    const expiries = () => closes.filter((code) => code === 4403).length;
    const titles = () => events.filter((e) => e.type === "ADDED" && e.notification?.title.startsWith("round "));
    try {
      for (let round = 1; round <= 3; round += 1) {
        for (let i = 0; i < 5; i += 1) {
          const title = `round ${round} #${i}`;
          await gqlOk(
            herald.url,
            SendNotificationDocument,
            { input: { recipientIds: [register.user.id], title, body: "b", idempotencyKey: `${title}-${Date.now()}` } },
            { "x-api-key": TEST_SERVICE_KEY },
          );
          sent.push(title);
        }
        // The next expiry closes the socket, wherever the deliveries are: they arrive around it.
        await eventually(() => Promise.resolve(expiries() >= round ? true : undefined), {
          timeoutMs: 10_000,
          what: `expiry ${round} to close the socket`,
        });
      }
      await eventually(
        () => {
          if (failure) throw new Error(`the inbox subscription failed: ${JSON.stringify(failure)}`);
          return Promise.resolve(titles().length >= sent.length ? true : undefined);
        },
        { timeoutMs: 15_000, what: `all ${sent.length} notifications over the reconnects` },
      );
    } finally {
      // Completing the subscription closes the socket (1000, its last one), and dispose() then
      // rejects with that close: expected, not a failure. Done on failure too: a client that keeps
      // reconnecting would keep the test's process alive.
      stop();
      await Promise.resolve(client.dispose()).catch(() => undefined);
    }

    const received = titles().map((e) => e.notification?.title ?? "");
    assert.deepEqual([...received].sort(), [...sent].sort(), "each once, none missing");
    assert.ok(expiries() >= 3, `the socket closed at each expiry (${closes.join(", ")})`);
    // Every expiry but the last was followed by a reconnect (the next expiry closed it), which refreshed.
    assert.ok(refreshes >= expiries() - 1, `each reconnect after an expiry refreshed first (${refreshes})`);
  });
});
