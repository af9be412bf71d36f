import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  InboxEventsDocument,
  InboxStartDocument,
  LoginDocument,
  SendNotificationDocument,
  UnreadCountDocument,
} from "../generated/graphql.js";
import { connectWs, eventually, gql, gqlOk, Subscription } from "../helpers/graphql-client.js";
import { baseEnv, startHerald, TEST_SERVICE_KEY, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";
import { signUp } from "../helpers/users.js";

const METRICS_TOKEN = "metrics-token-for-tests-0123";

/** One sample of the exposition text: the value of the series with exactly these labels (role aside). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const m of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[m[1] ?? ""] = m[2] ?? "";
    delete found["role"];
    const wanted = Object.entries(labels);
    if (wanted.length === Object.keys(found).length && wanted.every(([k, v]) => found[k] === v)) {
      return Number(match[3]);
    }
  }
  return undefined;
}

/** The log lines a process printed, as the JSON objects they are. */
function logLines(proc: HeraldProcess): Record<string, unknown>[] {
  return proc
    .output()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("metrics and logs, as an operator scrapes and reads them", () => {
  let herald: HeraldProcess;

  before(async () => {
    herald = await startHerald({
      ...baseEnv(uniqueDatabase("observability")),
      METRICS_TOKEN,
      LOG_LEVEL: "info",
      LIMIT_LOGINS_PER_ADDRESS: "2",
    });
  });
  after(async () => {
    await herald.stop();
  });

  /** Waits for a line: the process's output reaches this one through a pipe, after its answers may. */
  const logged = (match: (line: Record<string, unknown>) => boolean, what: string) =>
    eventually(() => Promise.resolve(logLines(herald).find(match)), { timeoutMs: 5000, what });

  const scrape = async () => {
    const res = await fetch(`${herald.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    assert.equal(res.status, 200);
    return res.text();
  };

  it("refuses /metrics without the token", async () => {
    const res = await fetch(`${herald.url}/metrics`);
    assert.equal(res.status, 401);
    await logged((l) => l["msg"] === "request refused" && l["path"] === "/metrics", "the refusal's log line");
  });

  it("counts operations, sockets, subscriptions, pushes, jobs and refusals", async () => {
    const ada = await signUp(herald.url, "Ada");
    const start = await gqlOk(herald.url, InboxStartDocument, { first: 5 }, ada.auth);
    const ws = connectWs(herald.url, ada.auth);
    const live = new Subscription(ws.client, InboxEventsDocument, { after: start.notifications.streamCursor });
    try {
      const sent = await gqlOk(
        herald.url,
        SendNotificationDocument,
        { input: { recipientIds: [ada.id], title: "Deploy finished", body: "v2 is live", idempotencyKey: "obs-1" } },
        { "x-api-key": TEST_SERVICE_KEY },
      );
      assert.equal(sent.sendNotification.recipientCount, 1);
      // The WELCOME may come first: wait for the notification this test sent.
      await eventually(
        async () => {
          const event = await live.next(10_000);
          return event.data?.inboxEvents.notification?.title === "Deploy finished" ? true : undefined;
        },
        { timeoutMs: 15_000, what: "the notification pushed over inboxEvents" },
      );
      const unauthenticated = await gql(herald.url, UnreadCountDocument, {}, { authorization: "Bearer nonsense" });
      assert.equal(unauthenticated.errors?.[0]?.extensions?.["code"], "UNAUTHENTICATED");
      const logins = [];
      for (let i = 0; i < 3; i += 1) {
        logins.push(await gql(herald.url, LoginDocument, { input: { email: ada.email, password: "wrong password" } }));
      }
      assert.equal(logins[2]?.errors?.[0]?.extensions?.["code"], "RATE_LIMITED");

      const text = await scrape();
      const ok = { type: "mutation", transport: "http", outcome: "ok" };
      assert.equal(sample(text, "herald_graphql_operations_total", { operation: "Register", ...ok }), 1);
      assert.equal(sample(text, "herald_graphql_operations_total", { operation: "SendNotification", ...ok }), 1);
      assert.equal(
        sample(text, "herald_graphql_operations_total", {
          operation: "UnreadCount",
          type: "query",
          transport: "http",
          outcome: "UNAUTHENTICATED",
        }),
        1,
        `a request refused before any resolver ran still counts, under its name:\n${text}`,
      );
      const refused = { operation: "Login", type: "mutation", transport: "http", outcome: "RATE_LIMITED" };
      assert.equal(sample(text, "herald_graphql_operations_total", refused), 1);
      const subscribed = { operation: "InboxEvents", type: "subscription", transport: "ws", outcome: "ok" };
      assert.equal(sample(text, "herald_graphql_operations_total", subscribed), 1);
      assert.ok(
        (sample(text, "herald_graphql_operation_duration_seconds_count", { ...ok, operation: "Register" }) ?? 0) >= 1,
      );
      assert.equal(sample(text, "herald_websocket_connections"), 1);
      assert.equal(sample(text, "herald_subscriptions_active", { subscription: "inboxEvents" }), 1);
      assert.ok((sample(text, "herald_push_delay_seconds_count", { subscription: "inboxEvents" }) ?? 0) >= 1);
      assert.equal(sample(text, "herald_rate_limited_total", { limit: "login-address" }), 1);
      assert.ok((sample(text, "herald_jobs_total", { job: "notification.deliver", outcome: "done" }) ?? 0) >= 1);
      assert.equal(sample(text, "herald_dependency_up", { dependency: "mongodb" }), 1);
      assert.equal(sample(text, "herald_dependency_up", { dependency: "redis" }), 1);
      assert.notEqual(sample(text, "herald_job_queue_lag_seconds", { job: "post.fanout" }), undefined);
      assert.notEqual(sample(text, "process_resident_memory_bytes"), undefined);
    } finally {
      await ws.dispose();
    }
    // The socket's close reaches the gauges.
    await eventually(
      async () => {
        const text = await scrape();
        return sample(text, "herald_websocket_connections") === 0 &&
          sample(text, "herald_subscriptions_active", { subscription: "inboxEvents" }) === 0
          ? true
          : undefined;
      },
      { timeoutMs: 5000, what: "the socket and its subscription to leave the gauges" },
    );
  });

  it("leaves one log line per job run and per refused request, with their ids", async () => {
    const request = await logged(
      (l) => l["msg"] === "job finished" && l["job"] === "notification.deliver",
      "a line for the request's job",
    );
    await logged((l) => l["msg"] === "request refused" && l["code"] === "RATE_LIMITED", "the rate limit's line");
    const lines = logLines(herald);
    assert.equal(typeof request["requestId"], "string");
    assert.equal(request["outcome"], "done");
    assert.equal(typeof request["ms"], "number");
    const limited = lines.filter((l) => l["msg"] === "request refused" && l["code"] === "RATE_LIMITED");
    assert.equal(limited.length, 1);
    assert.equal(limited[0]?.["operation"], "Login");
    assert.equal(typeof limited[0]?.["requestId"], "string");
    const unauthenticated = lines.filter((l) => l["msg"] === "request refused" && l["code"] === "UNAUTHENTICATED");
    assert.ok(unauthenticated.some((l) => l["operation"] === "UnreadCount"));
  });
});
