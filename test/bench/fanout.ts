// The fan-out scenario of `npm run bench`: one post by an author with many followers, some of them
// holding an open subscription. How long until every notification is stored, and how long each
// connected follower waits for its NEW_POST event.
import { print } from "graphql";
import { MongoClient, ObjectId, type Db } from "mongodb";
import { Redis } from "ioredis";
import { BenchCreatePostDocument, NotificationAddedDocument } from "../generated/graphql.js";
import { bearer, connectWs, eventually, gqlOk, type WsConnection } from "../helpers/graphql-client.js";
import { testRedisUrl } from "../helpers/env.js";
import { seedLogins, type HeraldProcess } from "../helpers/herald.js";
import { summarize, type Summary } from "./stats.js";

export interface FanoutResult {
  followers: number;
  connected: number;
  /** From the createPost request to the moment the post records its fan-out as complete. */
  storedMs: number;
  stored: number;
  /** From the createPost request to each connected follower's event. */
  delivery: Summary;
}

const SEED_BATCH = 1000;
const FANOUT_TIMEOUT_MS = 180_000;

/**
 * Seeds users and follows straight into the database (signing up 10,000 users through the API
 * would spend minutes hashing passwords, which is not what is measured), connects the subscribers,
 * then creates the post through the API like any client.
 */
export async function measureFanout(options: {
  api: HeraldProcess;
  mongoUrl: string;
  followers: number;
  connected: number;
  log: (message: string) => void;
  onCleanup: (name: string, stop: () => Promise<unknown>) => void;
}): Promise<FanoutResult> {
  const mongo = new MongoClient(options.mongoUrl);
  options.onCleanup("seed connection", () => mongo.close());
  const db = mongo.db();
  const { authorId, followerIds } = await seed(db, options.followers);
  options.log(`fan-out: seeded ${options.followers} followers; connecting ${options.connected} subscribers …`);

  const arrivals = new Map<string, number>();
  const sockets: WsConnection[] = [];
  options.onCleanup("fan-out subscribers", () => Promise.all(sockets.map((s) => s.dispose())));
  // Spread over the whole follower list: the fan-out pages through followers in order, so the
  // first thousand alone would all be served by its first page.
  const step = followerIds.length / options.connected;
  const connected = Array.from({ length: options.connected }, (_, i) => followerIds[Math.floor(i * step)] ?? "");
  const [authorToken = "", ...followerTokens] = await seedLogins(db, [authorId, ...connected]);
  for (const [i, followerId] of connected.entries()) {
    const ws = connectWs(options.api.url, { authorization: `Bearer ${followerTokens[i] ?? ""}` });
    sockets.push(ws);
    ws.client.subscribe(
      { query: print(NotificationAddedDocument) },
      {
        next: (result) => {
          const data = result.data as { notificationAdded?: { kind?: string } } | undefined;
          if (data?.notificationAdded?.kind === "NEW_POST" && !arrivals.has(followerId)) {
            arrivals.set(followerId, performance.now());
          }
        },
        error: () => undefined,
        complete: () => undefined,
      },
    );
  }
  await allSubscribed(connected);

  options.log("fan-out: creating the post …");
  const startedWall = Date.now();
  const started = performance.now();
  const { createPost } = await gqlOk(
    options.api.url,
    BenchCreatePostDocument,
    { input: { title: "Fan-out benchmark", body: "One post, many followers." } },
    bearer(authorToken),
  );
  const completedAt = await eventually(
    async () => {
      const post = await db.collection("posts").findOne({ _id: new ObjectId(createPost.id) });
      return post?.["fanoutCompletedAt"] instanceof Date ? post["fanoutCompletedAt"] : undefined;
    },
    { timeoutMs: FANOUT_TIMEOUT_MS, what: "the fan-out to complete", intervalMs: 100 },
  );
  await eventually(() => Promise.resolve(arrivals.size === options.connected ? true : undefined), {
    timeoutMs: FANOUT_TIMEOUT_MS,
    what: `${options.connected} subscribers to receive the post (${arrivals.size} so far)`,
    intervalMs: 100,
  });
  const stored = await db.collection("notifications").countDocuments({ postId: new ObjectId(createPost.id) });
  return {
    followers: options.followers,
    connected: options.connected,
    storedMs: completedAt.getTime() - startedWall,
    stored,
    delivery: summarize([...arrivals.values()].map((at) => at - started)),
  };
}

/** A user as seeded straight into the database: no password anyone can log in with, past the welcome. */
export function seededUser(name: string, now: Date) {
  return {
    _id: new ObjectId(),
    email: `${name}.${new ObjectId().toHexString()}@bench.example`,
    displayName: name,
    passwordHash: "scrypt$seeded",
    createdAt: now,
    // Seeded users are past their welcome: the recovery sweep must leave them alone.
    welcomedAt: now,
  };
}

async function seed(db: Db, followers: number): Promise<{ authorId: string; followerIds: string[] }> {
  const now = new Date();
  const user = (name: string) => seededUser(name, now);
  const author = user("Author");
  await db.collection("users").insertOne(author);
  const followerIds: string[] = [];
  for (let i = 0; i < followers; i += SEED_BATCH) {
    const batch = Array.from({ length: Math.min(SEED_BATCH, followers - i) }, (_, j) => user(`Follower ${i + j}`));
    await db.collection("users").insertMany(batch);
    await db.collection("follows").insertMany(
      batch.map((f) => ({
        _id: new ObjectId(),
        followerId: f._id,
        followeeId: author._id,
        createdAt: now,
        notifiedAt: now,
      })),
    );
    followerIds.push(...batch.map((f) => f._id.toHexString()));
  }
  return { authorId: author._id.toHexString(), followerIds };
}

/** Every subscriber's channel has reached Redis: the post cannot outrun a subscription. */
async function allSubscribed(userIds: readonly string[]): Promise<void> {
  const redis = new Redis(testRedisUrl());
  try {
    await eventually(
      async () => {
        const reply = await redis.pubsub("NUMSUB", ...userIds.map((id) => `INBOX:${id}`));
        const missing = userIds.filter((_, i) => Number(reply[2 * i + 1]) === 0).length;
        return missing === 0 ? true : undefined;
      },
      { timeoutMs: 60_000, what: "every subscriber to reach Redis", intervalMs: 100 },
    );
  } finally {
    redis.disconnect();
  }
}
