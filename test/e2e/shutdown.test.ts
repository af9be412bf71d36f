import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { CreatePostDocument, FollowDocument, SendNotificationDocument } from "../generated/graphql.js";
import { eventually, gql, gqlOk } from "../helpers/graphql-client.js";
import { startCluster, startHerald, TEST_SERVICE_KEY, type HeraldProcess } from "../helpers/herald.js";
import { testRedisUrl } from "../helpers/env.js";
import { wholeInbox } from "../helpers/inbox-pages.js";
import { signUp } from "../helpers/users.js";

const service = { "x-api-key": TEST_SERVICE_KEY };

/**
 * Jobs a worker runs at once. Small, so that under the load below a backlog forms and the worker
 * holds due jobs locked in its own queue, waiting for a free slot, as any worker does in a burst:
 * SIGTERM must hand those back as well as finish the ones running.
 */
const WORKER_CONCURRENCY = 2;
const FOLLOWERS = 4;
/** Requests the load keeps in flight, across the two api processes. */
const IN_FLIGHT = 8;
/** sendNotification requests acknowledged before SIGTERM, at least. */
const MIN_ACKNOWLEDGED = 100;

/** Every job of the database `database` in the Redis job store that still carries a lock. */
async function lockedJobs(redis: Redis, database: string): Promise<string[]> {
  const prefix = `herald:{jobs:${database}}:`;
  const ids = await redis.smembers(`${prefix}jobs:all`);
  const locked: string[] = [];
  for (const id of ids) {
    const [name, lockedAtMs] = await redis.hmget(`${prefix}job:${id}`, "name", "lockedAtMs");
    if (name !== null && lockedAtMs !== null && lockedAtMs !== "null") locked.push(`${name} ${id}`);
  }
  for (const key of await redis.keys(`${prefix}jobs:locked:*`)) {
    for (const id of await redis.zrange(key, 0, -1)) locked.push(`${key.slice(prefix.length)} ${id}`);
  }
  return locked;
}

/** The database a MongoDB URL names: the job store's namespace. */
function databaseOf(mongoUrl: string): string {
  return new URL(mongoUrl).pathname.slice(1);
}

/**
 * SIGTERM while jobs are in flight: one worker and two api instances, as separate OS processes,
 * under a load of sendNotification requests and posts whose fan-out reaches followers. Every
 * process must drain and exit 0, hand back every job it held, and lose nothing it acknowledged.
 */
describe("SIGTERM under load", () => {
  const started: HeraldProcess[] = [];
  const redis = new Redis(testRedisUrl());

  after(() => {
    redis.disconnect();
    // Only what a failed assertion left running.
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  });

  it("drains every process to exit 0, leaves no job locked, and a new cluster delivers all acknowledged", async (t) => {
    const cluster = await startCluster("e2e_shutdown", 2, { WORKER_CONCURRENCY: String(WORKER_CONCURRENCY) });
    started.push(cluster.worker, ...cluster.apis);
    const [apiA, apiB] = cluster.apis as [HeraldProcess, HeraldProcess];
    const database = databaseOf(cluster.env["MONGO_URL"] ?? "");

    const author = await signUp(apiA.url, "Author");
    const followers = await Promise.all(Array.from({ length: FOLLOWERS }, (_, i) => signUp(apiB.url, `Follower ${i}`)));
    for (const follower of followers) await gqlOk(apiA.url, FollowDocument, { userId: author.id }, follower.auth);
    const recipients = [author, ...followers];

    // The load: requests one after another on each of IN_FLIGHT lanes, alternating between the
    // api processes; each lane sends a notification to everyone, and every fourth request is a post.
    const sent: string[] = [];
    const posted: string[] = [];
    const failures: string[] = [];
    let terminating = false;
    let sequence = 0;
    const lane = async (api: HeraldProcess) => {
      while (!terminating) {
        sequence += 1;
        const n = sequence;
        try {
          if (n % 4 === 0) {
            const result = await gql(
              api.url,
              CreatePostDocument,
              { input: { title: `Post ${n}`, body: "under load" } },
              author.auth,
            );
            if (result.data?.createPost) posted.push(result.data.createPost.id);
            else if (!terminating) failures.push(`createPost ${n}: ${JSON.stringify(result.errors)}`);
          } else {
            const title = `Load ${n}`;
            const result = await gql(
              api.url,
              SendNotificationDocument,
              {
                input: {
                  recipientIds: recipients.map((u) => u.id),
                  title,
                  body: "under load",
                  idempotencyKey: `shutdown-${n}`,
                },
              },
              service,
            );
            if (result.data?.sendNotification) sent.push(title);
            else if (!terminating) failures.push(`sendNotification ${n}: ${JSON.stringify(result.errors)}`);
          }
        } catch (err) {
          // Once the processes are told to stop, a refused connection is an answer like any other.
          if (!terminating) failures.push(`request ${n}: ${String(err)}`);
        }
      }
    };
    const loadStartedAt = Date.now();
    const load = Promise.all(Array.from({ length: IN_FLIGHT }, (_, i) => lane(i % 2 === 0 ? apiA : apiB)));

    // In flight: a good many requests acknowledged, and more notification jobs locked than the
    // worker runs at once, so that some wait in its queue.
    await eventually(
      async () => {
        const count = await redis.zcard(`herald:{jobs:${database}}:jobs:locked:notification.deliver`);
        return count > WORKER_CONCURRENCY && sent.length >= MIN_ACKNOWLEDGED && posted.length > 0 ? true : undefined;
      },
      { timeoutMs: 20_000, what: "a backlog of locked notification jobs in the worker" },
    );

    const signalledAt = Date.now();
    const stops = [...cluster.apis, cluster.worker].map((p) => p.stop());
    terminating = true;
    const codes = await Promise.all(stops);
    const drainMs = Date.now() - signalledAt;
    await load;
    assert.deepEqual(
      codes,
      codes.map(() => 0),
      `every process exits 0 on SIGTERM:\n${[...cluster.apis, cluster.worker].map((p) => p.output()).join("\n")}`,
    );
    assert.deepEqual(failures, [], "every request before SIGTERM succeeds");
    assert.deepEqual(await lockedJobs(redis, database), [], "no job is left locked once every process has exited");

    // Whatever was acknowledged is delivered by the next processes at once, not after a lock expires
    // (AGENDA_LOCK_LIFETIME_MS, a minute) nor after the recovery sweep's grace (a minute too).
    const { WORKER_CONCURRENCY: _small, ...env } = cluster.env;
    const restartedAt = Date.now();
    const [worker, api] = await Promise.all([
      startHerald({ ...env, ROLES: "worker" }),
      startHerald({ ...env, ROLES: "api" }),
    ]);
    started.push(worker, api);
    const readyMs = Date.now() - restartedAt;
    for (const user of recipients) {
      await eventually(
        async () => {
          const titles = new Set((await wholeInbox(api.url, user, "SYSTEM")).map((n) => n.title));
          return sent.every((title) => titles.has(title)) ? true : undefined;
        },
        { timeoutMs: 30_000, what: `the ${sent.length} acknowledged notifications in the inbox of ${user.name}` },
      );
    }
    for (const follower of followers) {
      await eventually(
        async () => {
          const posts = new Set((await wholeInbox(api.url, follower, "NEW_POST")).map((n) => n.post?.id));
          return posted.every((id) => posts.has(id)) ? true : undefined;
        },
        { timeoutMs: 30_000, what: `a NEW_POST for each of the ${posted.length} posts for ${follower.name}` },
      );
    }
    const deliveredMs = Date.now() - restartedAt;
    const restartCodes = await Promise.all([api.stop(), worker.stop()]);
    assert.deepEqual(restartCodes, [0, 0], `${api.output()}\n${worker.output()}`);
    t.diagnostic(
      `${sent.length} notifications and ${posted.length} posts acknowledged in ${signalledAt - loadStartedAt} ms; ` +
        `every process exited ${drainMs} ms after SIGTERM; a new worker and api ready in ${readyMs} ms, ` +
        `all delivered ${deliveredMs} ms after the restart`,
    );
  });
});
