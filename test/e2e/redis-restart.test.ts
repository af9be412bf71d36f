import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { InboxStartDocument, SendNotificationDocument, UnreadCountDocument } from "../generated/graphql.js";
import { eventually, gql, gqlOk } from "../helpers/graphql-client.js";
import { LiveInbox, type StreamEvent } from "../helpers/inbox-stream.js";
import { signUp, untilUnread, type TestUser } from "../helpers/users.js";
import { startCluster, TEST_SERVICE_KEY, type Cluster } from "../helpers/herald.js";
import { freePort, startRedis, type RunningServer } from "../../dev/local-stack.js";

const service = { "x-api-key": TEST_SERVICE_KEY };
const USERS = 6;

/**
 * Redis is SIGKILLed under a steady stream of notifications and started again on the same port.
 * With its append-only file, history survives: every client goes on with no RESET and misses
 * nothing. Without persistence, every client is told RESET and, after refetching, agrees with the
 * server.
 */
for (const persist of [true, false]) {
  describe(`live inbox across a Redis crash, ${persist ? "with" : "without"} persistence`, () => {
    let dir: string;
    let port: number;
    let redis: RunningServer;
    let cluster: Cluster;
    let users: TestUser[] = [];
    let devices: LiveInbox[] = [];
    let sent = 0;

    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), "herald-redis-"));
      port = await freePort();
      redis = await startRedis({ dataDir: dir, port, persist });
      // A job cut off by the crash runs again once its lock expires; work whose job was lost is
      // found by the recovery sweep after its grace (longer than a lock).
      cluster = await startCluster(`e2e_redis_${persist ? "aof" : "none"}`, 2, {
        REDIS_URL: redis.url,
        AGENDA_LOCK_LIFETIME_MS: "3000",
        RECOVERY_GRACE_MS: "6000",
      });
    });
    after(async () => {
      await Promise.all(devices.map((d) => d.close()));
      await cluster?.stop();
      await redis?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    const api = (i: number) => cluster.apis[i % 2]?.url ?? "";

    /** One SYSTEM notification to each user; true when the API acknowledged it. */
    async function sendRound(): Promise<boolean> {
      sent += 1;
      const input = {
        recipientIds: users.map((u) => u.id),
        title: `round ${sent}`,
        body: "a steady stream",
        idempotencyKey: `round-${sent}`,
      };
      const r = await gql(api(sent), SendNotificationDocument, { input }, service).catch(() => undefined);
      return r?.errors === undefined && r?.data?.sendNotification.recipientCount === users.length;
    }

    async function serverOf(user: TestUser) {
      const [page, count] = await Promise.all([
        gqlOk(api(0), InboxStartDocument, { first: 100 }, user.auth),
        gqlOk(api(1), UnreadCountDocument, {}, user.auth),
      ]);
      return { items: page.notifications.edges.map((e) => e.node), unread: count.unreadCount };
    }

    async function crashRedis(): Promise<void> {
      process.kill(redis.pid, "SIGKILL");
      await redis.stop();
      redis = await startRedis({ dataDir: dir, port, persist });
    }

    const added = (events: readonly StreamEvent[]) => events.filter((e) => e.type === "ADDED");

    it("keeps every client's stream whole, or tells each to start again", async () => {
      users = await Promise.all(Array.from({ length: USERS }, (_, i) => signUp(api(i), `Sleeper ${i}`)));
      await Promise.all(users.map((u, i) => untilUnread(api(i), u, 1)));
      const starts = await Promise.all(users.map((u) => gqlOk(api(0), InboxStartDocument, { first: 1 }, u.auth)));
      devices = users.map(
        (u, i) =>
          new LiveInbox(
            () => api(i),
            u.token,
            starts[i]?.notifications.streamCursor ?? null,
            new Set(starts[i]?.notifications.edges.map((e) => e.node.id)),
          ),
      );

      const acknowledged: string[] = [];
      for (let i = 0; i < 10; i += 1) if (await sendRound()) acknowledged.push(`round ${sent}`);
      await Promise.all(devices.map((d) => d.untilCount(10, "the rounds before the crash")));

      // A steady stream meanwhile: requests that fail while Redis is away are not acknowledged.
      let sending = true;
      const stream = (async () => {
        while (sending) if (await sendRound()) acknowledged.push(`round ${sent}`);
      })();
      await crashRedis();
      // Without persistence, each device is told RESET, and refetches its inbox, as a client does.
      const snapshots = persist
        ? []
        : await Promise.all(
            devices.map(async (device, i) => {
              await eventually(() => Promise.resolve(device.events.some((e) => e.type === "RESET") || undefined), {
                timeoutMs: 15_000,
                what: `a RESET for ${users[i]?.name}`,
              });
              const user = users[i];
              assert.ok(user);
              return (await serverOf(user)).items.map((n) => n.id);
            }),
          );
      const afterRestart = acknowledged.length;
      await eventually(() => Promise.resolve(acknowledged.length >= afterRestart + 10 ? true : undefined), {
        timeoutMs: 30_000,
        what: "ten rounds acknowledged after the restart",
      });
      sending = false;
      await stream;

      for (const [i, user] of users.entries()) {
        const device = devices[i];
        assert.ok(device);
        // Converged: the device has heard of every notification the server now holds.
        const server = await eventually(
          async () => {
            const s = await serverOf(user);
            const heard = new Set(added(device.events).map((e) => e.notificationId));
            const fresh = s.items.filter((n) => n.title.startsWith("round"));
            // With persistence, every acknowledged round is stored, if need be by the recovery sweep.
            const titles = new Set(s.items.map((n) => n.title));
            const complete = !persist || acknowledged.every((t) => titles.has(t));
            return complete && fresh.every((n) => heard.has(n.id)) && device.last?.unreadCount === s.unread
              ? s
              : undefined;
          },
          { timeoutMs: 60_000, what: `${user.name}'s device to hear every stored notification` },
        );
        // Without persistence, requests whose job was queued in Redis when it crashed wait for the
        // recovery sweep (see below); with it, every acknowledged one is stored.
        const titles = new Set(server.items.map((n) => n.title));
        if (persist)
          for (const title of acknowledged) assert.ok(titles.has(title), `${title}, acknowledged, is stored`);
        const resets = device.events.filter((e) => e.type === "RESET");
        const ids = added(device.events).map((e) => e.notificationId);
        if (persist) {
          assert.equal(resets.length, 0, "no RESET: the history survived");
          assert.equal(new Set(ids).size, ids.length, "nothing twice");
          assert.deepEqual(
            device.events.map((e) => e.unreadCount),
            device.events.map((_, k) => 2 + k),
            "every arrival, in order: the count goes up by one each time",
          );
        } else {
          assert.equal(resets.length, 1, "told once to start again");
          // The refetched inbox, and the arrivals after the RESET: exactly the server's inbox.
          const afterReset = device.events.slice(device.events.findIndex((e) => e.type === "RESET") + 1);
          const laterIds = afterReset.map((e) => e.notificationId ?? "");
          assert.equal(new Set(laterIds).size, laterIds.length, "nothing twice after the RESET");
          assert.deepEqual(new Set([...(snapshots[i] ?? []), ...laterIds]), new Set(server.items.map((n) => n.id)));
          assert.equal(device.last?.unreadCount, server.unread);
        }
      }
      if (!persist) {
        // The recurring jobs, the recovery sweep among them, were lost with Redis's data: the
        // worker schedules them again once Redis is back.
        const client = new Redis(redis.url);
        try {
          await eventually(
            async () => {
              const [, keys] = await client.scan("0", "MATCH", "*jobs:by_name:recovery.sweep", "COUNT", 10_000);
              return keys.length > 0 ? true : undefined;
            },
            { timeoutMs: 15_000, what: "the recovery sweep to be scheduled again" },
          );
        } finally {
          client.disconnect();
        }
      }
    });
  });
}
