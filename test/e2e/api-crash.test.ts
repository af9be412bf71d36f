import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { InboxStartDocument, SendNotificationDocument } from "../generated/graphql.js";
import { eventually, gql, gqlOk } from "../helpers/graphql-client.js";
import { LiveInbox } from "../helpers/inbox-stream.js";
import { signUp, untilUnread, type TestUser } from "../helpers/users.js";
import { startCluster, TEST_SERVICE_KEY, type Cluster } from "../helpers/herald.js";

const service = { "x-api-key": TEST_SERVICE_KEY };
const USERS = 50;
const DEVICES_PER_USER = 4;

/**
 * An api instance holding 200 subscribed clients is SIGKILLed during a steady stream: each client
 * reconnects to the other instance with the recipe of docs/clients.md and resumes from its last cursor.
 * Counted per client: nothing lost, nothing twice.
 */
describe("live inbox across an api instance's crash", () => {
  let cluster: Cluster;
  let users: TestUser[] = [];
  const devices: { user: TestUser; inbox: LiveInbox }[] = [];

  before(async () => {
    cluster = await startCluster("e2e_api_crash", 2);
  });
  after(async () => {
    await Promise.all(devices.map((d) => d.inbox.close()));
    // The killed instance is gone; the others must still stop cleanly.
    const [, survivor] = cluster.apis;
    const codes = await Promise.all([survivor?.stop(), cluster.worker.stop()]);
    assert.deepEqual(codes, [0, 0]);
  });

  it("every client resumes on the other instance, missing nothing and repeating nothing", async () => {
    const [doomed, survivor] = cluster.apis;
    assert.ok(doomed && survivor);
    users = [];
    for (let i = 0; i < USERS; i += 10) {
      users.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => signUp(survivor.url, `Crowd ${i + j}`)))));
    }
    await Promise.all(users.map((u) => untilUnread(survivor.url, u, 1, 30_000)));
    // Every device starts on the instance about to die; the recipe's url says where to reconnect.
    let target = doomed.url;
    for (const user of users) {
      const { notifications } = await gqlOk(survivor.url, InboxStartDocument, { first: 1 }, user.auth);
      const known = new Set(notifications.edges.map((e) => e.node.id));
      for (let d = 0; d < DEVICES_PER_USER; d += 1) {
        devices.push({ user, inbox: new LiveInbox(() => target, user.token, notifications.streamCursor, known) });
      }
    }

    let round = 0;
    let sending = true;
    const acknowledged: string[] = [];
    const stream = (async () => {
      while (sending) {
        round += 1;
        const title = `round ${round}`;
        const input = { recipientIds: users.map((u) => u.id), title, body: "steady", idempotencyKey: title };
        const r = await gql(survivor.url, SendNotificationDocument, { input }, service);
        if (!r.errors) acknowledged.push(title);
      }
    })();
    await Promise.all(devices.map((d) => d.inbox.untilCount(3, "the first rounds", 60_000)));

    target = survivor.url;
    doomed.child.kill("SIGKILL");
    const killedAt = acknowledged.length;
    await eventually(() => Promise.resolve(acknowledged.length >= killedAt + 5 ? true : undefined), {
      timeoutMs: 60_000,
      what: "five more rounds after the crash",
    });
    sending = false;
    await stream;

    const rounds = acknowledged.length;
    await Promise.all(devices.map((d) => d.inbox.untilCount(rounds, "every round", 60_000)));
    for (const { user, inbox } of devices) {
      const titles = inbox.events.map((e) => e.notification?.title);
      assert.equal(inbox.events.length, rounds, `${user.name}: one event per round, none twice`);
      assert.deepEqual(new Set(titles), new Set(acknowledged), `${user.name}: every round`);
      assert.ok(
        inbox.events.every((e) => e.type === "ADDED"),
        "no RESET",
      );
      assert.deepEqual(
        inbox.events.map((e) => e.unreadCount),
        inbox.events.map((_, k) => 2 + k),
        `${user.name}: in the order stored`,
      );
    }
  });
});
