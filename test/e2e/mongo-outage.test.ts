import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { freePort, startFerretDb, type RunningServer } from "../../dev/local-stack.js";
import {
  CreatePostDocument,
  FollowDocument,
  NotificationsDocument,
  PostTitleDocument,
  SendNotificationDocument,
  UnreadCountDocument,
} from "../generated/graphql.js";
import { eventually, gql, gqlOk, type HttpResult } from "../helpers/graphql-client.js";
import { baseEnv, startHerald, TEST_SERVICE_KEY, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";
import { wholeInbox } from "../helpers/inbox-pages.js";
import { signUp, untilUnread } from "../helpers/users.js";

const service = { "x-api-key": TEST_SERVICE_KEY };

/** How long one MongoDB operation may take here, everything included (MONGO_TIMEOUT_MS). */
const MONGO_TIMEOUT_MS = 1000;
/**
 * The longest a request may take while MongoDB is away, as documented: twice MONGO_TIMEOUT_MS (a
 * write may first wait for the batch in flight before it), plus room for a busy 2-core machine.
 */
const BOUND_MS = 2 * MONGO_TIMEOUT_MS + 2000;
/** Pause between two requests of one client, so that the traffic stays what a few users make. */
const THINK_MS = 50;
/** Requests of each kind that must succeed before the outage, and again after it. */
const SUCCESSES = 5;

type Kind = "sendNotification" | "createPost" | "notifications" | "unreadCount";
const KINDS: readonly Kind[] = ["sendNotification", "createPost", "notifications", "unreadCount"];
/** Those that cannot be answered without MongoDB (an unread count is a counter in Redis). */
const MONGO_KINDS: readonly Kind[] = ["sendNotification", "createPost", "notifications"];

interface Outcome {
  kind: Kind;
  startedAt: number;
  endedAt: number;
  /** The data the operation asked for came back. */
  ok: boolean;
  /** extensions.code of each GraphQL error, or what went wrong when no GraphQL answer came. */
  codes: string[];
}

function codesOf(result: HttpResult<unknown>): string[] {
  return (result.errors ?? []).map((e) => {
    const code = e.extensions?.["code"];
    return typeof code === "string" ? code : "no code";
  });
}

async function status(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as unknown };
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

/**
 * MongoDB goes away under traffic and comes back: one api and one worker, as separate OS processes,
 * on a FerretDB of this file's own. It first freezes (connections stay open, nothing answers), then
 * dies (connections are refused), and is started again on the same port with the same data.
 * Herald must answer every request in bounded time, with a coded error while MongoDB is away, say
 * so on /readyz, stay up, recover by itself, and lose nothing it acknowledged.
 */
describe("a MongoDB outage under traffic", () => {
  let tempDir: string;
  let port: number;
  let ferret: RunningServer | undefined;
  let worker: HeraldProcess;
  let api: HeraldProcess;

  const ferretPid = () => {
    if (!ferret) throw new Error("FerretDB is not running");
    return ferret.pid;
  };
  const startMongo = async () => {
    ferret = await startFerretDb({ dataDir: path.join(tempDir, "ferretdb"), port });
  };

  before(async () => {
    tempDir = await mkdtemp(path.join(tmpdir(), "herald-mongo-outage-"));
    // A port of its own, fixed for the file: FerretDB comes back where Herald expects it.
    port = await freePort();
    await startMongo();
    const database = uniqueDatabase("e2e_mongo_outage");
    const env = {
      ...baseEnv(database),
      MONGO_URL: `mongodb://127.0.0.1:${port}/${database}`,
      MONGO_TIMEOUT_MS: String(MONGO_TIMEOUT_MS),
    };
    [worker, api] = await Promise.all([
      startHerald({ ...env, ROLES: "worker" }),
      startHerald({ ...env, ROLES: "api" }),
    ]);
  });

  after(async () => {
    const procs = [api, worker].filter(Boolean);
    const codes = await Promise.all(procs.map((p) => p.stop()));
    await ferret?.stop();
    await rm(tempDir, { recursive: true, force: true });
    assert.deepEqual(
      codes,
      codes.map(() => 0),
      `every process exits 0 on SIGTERM:\n${procs.map((p) => p.output()).join("\n")}`,
    );
  });

  it("answers in bounded time with coded errors, reports not ready, recovers by itself and loses nothing acknowledged", async (t) => {
    const reader = await signUp(api.url, "Reader");
    const author = await signUp(api.url, "Author");
    await gqlOk(api.url, FollowDocument, { userId: author.id }, reader.auth);
    await untilUnread(api.url, reader, 1);

    // The traffic: a backend sending the reader notifications, the author posting (the reader
    // follows), and the reader reading the inbox and the badge, each one request after another.
    const outcomes: Outcome[] = [];
    const sent: string[] = [];
    const posted: string[] = [];
    let sequence = 0;
    let trafficOn = true;
    const request = async (kind: Kind, n: number): Promise<{ ok: boolean; codes: string[] }> => {
      switch (kind) {
        case "sendNotification": {
          const title = `Outage ${n}`;
          const input = { recipientIds: [reader.id], title, body: "MongoDB comes and goes", idempotencyKey: `mo-${n}` };
          const result = await gql(api.url, SendNotificationDocument, { input }, service);
          if (result.data?.sendNotification) sent.push(title);
          return { ok: Boolean(result.data?.sendNotification), codes: codesOf(result) };
        }
        case "createPost": {
          const input = { title: `Post ${n}`, body: "MongoDB comes and goes" };
          const result = await gql(api.url, CreatePostDocument, { input }, author.auth);
          if (result.data?.createPost) posted.push(result.data.createPost.id);
          return { ok: Boolean(result.data?.createPost), codes: codesOf(result) };
        }
        case "notifications": {
          const result = await gql(api.url, NotificationsDocument, { first: 10 }, reader.auth);
          return { ok: Boolean(result.data?.notifications), codes: codesOf(result) };
        }
        case "unreadCount": {
          const result = await gql(api.url, UnreadCountDocument, {}, reader.auth);
          return { ok: typeof result.data?.unreadCount === "number", codes: codesOf(result) };
        }
      }
    };
    const client = async (kind: Kind) => {
      while (trafficOn) {
        sequence += 1;
        const startedAt = Date.now();
        // A request still unanswered past twice the bound is recorded as a hang, and the client
        // goes on: the test fails on it instead of waiting with it.
        const hang = delay(2 * BOUND_MS, { ok: false, codes: [`no answer within ${2 * BOUND_MS} ms`] }, { ref: false });
        const { ok, codes } = await Promise.race([
          request(kind, sequence).catch((err: unknown) => ({
            ok: false,
            codes: [`no GraphQL answer: ${String(err)}`],
          })),
          hang,
        ]);
        outcomes.push({ kind, startedAt, endedAt: Date.now(), ok, codes });
        await delay(THINK_MS);
      }
    };
    const traffic = Promise.all(KINDS.map((kind) => client(kind)));
    // For eventually(): true once each kind of request has succeeded SUCCESSES times since `since`,
    // or once each that needs MongoDB has failed since `since`.
    const succeededSince = (since: number) =>
      Promise.resolve(
        KINDS.every(
          (kind) => outcomes.filter((o) => o.kind === kind && o.ok && o.startedAt >= since).length >= SUCCESSES,
        )
          ? true
          : undefined,
      );
    const failedSince = (since: number) =>
      Promise.resolve(
        MONGO_KINDS.every((kind) => outcomes.some((o) => o.kind === kind && !o.ok && o.startedAt > since))
          ? true
          : undefined,
      );

    /**
     * While MongoDB is away: both processes answer 503 on /readyz naming MongoDB and 200 on
     * /healthz, and every operation that needs MongoDB has failed at least once since `since`.
     */
    const notReadyAndFailing = async (since: number, state: string) => {
      for (const p of [api, worker]) {
        const body = await eventually(
          async () => {
            const ready = await status(`${p.url}/readyz`);
            return ready.status === 503 ? ready.body : undefined;
          },
          { timeoutMs: 5000, what: `/readyz to answer 503 on ${p.env["ROLES"]} while MongoDB is ${state}` },
        );
        assert.deepEqual(body, { status: "unavailable", checks: { mongodb: "failing", redis: "ok" } });
        assert.equal((await status(`${p.url}/healthz`)).status, 200, "the process itself is alive");
      }
      await eventually(() => failedSince(since), {
        timeoutMs: 3 * BOUND_MS,
        what: `requests answered while MongoDB is ${state}`,
      });
    };

    let frozenAt = 0;
    let restartedAt = 0;
    let recoveredAt = 0;
    try {
      await eventually(() => succeededSince(0), { timeoutMs: 10_000, what: "traffic flowing" });

      // FerretDB freezes first, as a hung server or one cut off by the network: connections stay
      // open and nothing answers. Then it dies, as in a crash: connections are refused.
      frozenAt = Date.now();
      process.kill(ferretPid(), "SIGSTOP");
      await notReadyAndFailing(frozenAt, "frozen");
      const killedAt = Date.now();
      process.kill(ferretPid(), "SIGKILL");
      // Waits for its end, which the test caused: not reported as an unexpected exit.
      await ferret?.stop();
      await eventually(async () => ((await refusesConnections(port)) ? true : undefined), {
        timeoutMs: 5000,
        what: "FerretDB to be gone",
      });
      await notReadyAndFailing(killedAt, "down");
      assert.equal(api.child.exitCode, null, "the api process survives the outage");
      assert.equal(worker.child.exitCode, null, "the worker survives the outage");

      // MongoDB comes back on the same address with the same data; Herald is not restarted.
      restartedAt = Date.now();
      await startMongo();
      for (const p of [api, worker]) {
        await eventually(async () => ((await status(`${p.url}/readyz`)).status === 200 ? true : undefined), {
          timeoutMs: 15_000,
          what: `/readyz to answer 200 again on ${p.env["ROLES"]}`,
        });
      }
      recoveredAt = Date.now();
      await eventually(() => succeededSince(recoveredAt), {
        timeoutMs: 10_000,
        what: "every kind of request to succeed again",
      });
    } finally {
      trafficOn = false;
      await traffic;
    }

    const failures = outcomes.filter((o) => !o.ok);
    const slowest = Math.max(...outcomes.map((o) => o.endedAt - o.startedAt));
    t.diagnostic(
      `${outcomes.length} requests; MongoDB away for ${restartedAt - frozenAt} ms, ready again ` +
        `${recoveredAt - restartedAt} ms after it restarted; slowest ${slowest} ms; failed: ` +
        failures.map((o) => `${o.kind} ${o.endedAt - o.startedAt} ms`).join(", "),
    );
    assert.ok(slowest <= BOUND_MS, `every request is answered within ${BOUND_MS} ms; the slowest took ${slowest} ms`);
    assert.deepEqual(
      [...new Set(failures.map((o) => o.codes.join(",")))],
      ["INTERNAL_SERVER_ERROR"],
      "a request that fails gets one coded GraphQL error",
    );
    assert.deepEqual(
      failures.filter((o) => o.endedAt < frozenAt || o.startedAt >= recoveredAt),
      [],
      "requests fail only while MongoDB is away",
    );
    assert.equal(api.child.exitCode, null, "the api process is still up");
    assert.equal(worker.child.exitCode, null, "the worker is still up");

    // Nothing acknowledged is lost: each notification sent reaches the inbox, and each post can be
    // read and reaches its author's follower.
    await eventually(
      async () => {
        const titles = new Set((await wholeInbox(api.url, reader, "SYSTEM")).map((n) => n.title));
        return sent.every((title) => titles.has(title)) ? true : undefined;
      },
      { timeoutMs: 30_000, what: `the ${sent.length} acknowledged notifications in the inbox` },
    );
    await eventually(
      async () => {
        const posts = new Set((await wholeInbox(api.url, reader, "NEW_POST")).map((n) => n.post?.id));
        return posted.every((id) => posts.has(id)) ? true : undefined;
      },
      { timeoutMs: 30_000, what: `a NEW_POST for each of the ${posted.length} acknowledged posts` },
    );
    for (const id of posted) {
      const { post } = await gqlOk(api.url, PostTitleDocument, { id }, author.auth);
      assert.equal(post?.id, id, "an acknowledged post can be read");
    }
  });
});
