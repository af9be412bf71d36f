// Times Herald's hot equality and `$in` queries on one FerretDB binary, on collections of many
// documents: run it on two builds to compare them (with and without patches/sqlite-eq-pushdown.mjs,
// say).
//
//   node tools/ferretdb/measure-pushdown.mjs <ferretdb binary> [--docs=100000] [--runs=10] [--only=TEXT]
//
// It starts the binary on a free port with a throwaway SQLite directory, writes `docs` notifications
// (100 per recipient, half of them unread), `docs` users, `docs` follows (100 per followee) and
// `docs` comments (50 of them not yet notified, for the recovery sweep) with Herald's indexes, then prints the median and the slowest of `runs` runs of each query (of those
// whose name contains TEXT, with --only), in ms.
// Run it from the project directory (it uses the project's mongodb driver).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { MongoClient, ObjectId } from "mongodb";

const args = process.argv.slice(2);
const binary = args.find((arg) => !arg.startsWith("--"));
const option = (name, fallback) => Number(args.find((arg) => arg.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const docs = option("docs", 100_000);
const runs = option("runs", 10);
const only = args.find((arg) => arg.startsWith("--only="))?.slice("--only=".length) ?? "";
if (!binary || !(docs >= 100) || !(runs >= 1)) {
  process.stderr.write(
    "usage: node tools/ferretdb/measure-pushdown.mjs <ferretdb binary> [--docs=N] [--runs=N] [--only=TEXT]\n",
  );
  process.exit(2);
}

const PER_OWNER = 100;
const BATCH = 1000;

const port = await new Promise((resolve, reject) => {
  const server = createServer().listen(0, "127.0.0.1", () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
  server.on("error", reject);
});
const dataDir = mkdtempSync(path.join(tmpdir(), "ferretdb-measure-"));
const sqliteUrl = `${pathToFileURL(dataDir + path.sep).href}?_pragma=synchronous(normal)`;
const child = spawn(
  path.resolve(binary),
  [`-listen-addr=127.0.0.1:${port}`, `-sqlite-url=${sqliteUrl}`, "-log-level=warn"],
  { stdio: ["ignore", "ignore", "pipe"] },
);
// FerretDB warns about every command it lacks (endSessions at each close): shown only on failure.
let serverLog = "";
child.stderr.setEncoding("utf8").on("data", (chunk) => (serverLog = (serverLog + chunk).slice(-4000)));
const exited = new Promise((resolve) => child.on("exit", resolve));

let client;
try {
  client = await connect(`mongodb://127.0.0.1:${port}/measure`);
  const db = client.db();
  const owners = Array.from({ length: Math.ceil(docs / PER_OWNER) }, () => new ObjectId());

  const notifications = db.collection("notifications");
  await notifications.createIndex({ recipientId: 1, createdAt: 1, _id: 1 });
  await notifications.createIndex({ recipientId: 1, readAt: 1, archivedAt: 1 });
  const users = db.collection("users");
  await users.createIndex({ email: 1 }, { unique: true });
  const follows = db.collection("follows");
  await follows.createIndex({ followerId: 1, followeeId: 1 }, { unique: true });
  await follows.createIndex({ followeeId: 1, _id: 1 });
  const comments = db.collection("comments");
  await comments.createIndex({ notifiedAt: 1, createdAt: 1 });

  const started = performance.now();
  const t0 = Date.UTC(2025, 0, 1);
  const notificationIds = Array.from({ length: docs }, () => new ObjectId());
  const userIds = Array.from({ length: docs }, () => new ObjectId());
  await fill(notifications, (i) => ({
    _id: notificationIds[i],
    recipientId: owners[i % owners.length],
    kind: "SYSTEM",
    title: `Notification ${i}`,
    body: "A body of some length, as notifications have one. ".repeat(2),
    createdAt: new Date(t0 + i * 1000),
    readAt: i % 2 === 0 ? null : new Date(t0 + i * 1000 + 500),
    archivedAt: null,
  }));
  await fill(users, (i) => ({
    _id: userIds[i],
    email: `user${i}@example.com`,
    name: `User ${i}`,
    passwordHash: "scrypt$unused",
    createdAt: new Date(t0 + i),
  }));
  const followers = Array.from({ length: docs }, () => new ObjectId());
  await fill(follows, (i) => ({
    _id: new ObjectId(),
    followerId: followers[i],
    followeeId: owners[i % owners.length],
    createdAt: new Date(t0 + i),
  }));
  // 50 comments not yet notified, spread over the collection; the others notified a second after.
  const UNNOTIFIED = 50;
  await fill(comments, (i) => ({
    _id: new ObjectId(),
    postId: owners[i % owners.length],
    authorId: followers[i],
    body: "A comment of some length. ".repeat(3),
    createdAt: new Date(t0 + i * 1000),
    notifiedAt: i % Math.floor(docs / UNNOTIFIED) === 0 ? null : new Date(t0 + i * 1000 + 1000),
  }));
  const cutoff = new Date(t0 + docs * 1000);
  process.stdout.write(
    `${binary}: wrote ${docs} notifications, users, follows and comments in ${seconds(started)} s\n`,
  );

  // Follow i is of owner i % owners.length.
  const ownerIndex = (run) => (run * 7919) % owners.length;
  const owner = (run) => owners[ownerIndex(run)];
  // n ids of a list spread over the collection, different for each run.
  const some = (list, n, run) => Array.from({ length: n }, (_, j) => list[(run * 7919 + j * 997) % list.length]);
  const queries = [
    [
      "notifications: find({ recipientId }), 100 documents",
      (r) => notifications.find({ recipientId: owner(r) }).toArray(),
    ],
    [
      "notifications: inbox page, { recipientId } by createdAt desc, 20",
      (r) =>
        notifications
          .find({ recipientId: owner(r), archivedAt: null })
          .sort({ createdAt: -1, _id: -1 })
          .limit(20)
          .toArray(),
    ],
    [
      "notifications: unread count, { recipientId, readAt: null, archivedAt: null }",
      (r) => notifications.countDocuments({ recipientId: owner(r), readAt: null, archivedAt: null }),
    ],
    [
      "notifications: mark all read, updateMany({ recipientId, readAt: null })",
      (r) => notifications.updateMany({ recipientId: owner(r + runs), readAt: null }, { $set: { readAt: new Date() } }),
    ],
    ["users: login, findOne({ email })", (r) => users.findOne({ email: `user${(r * 7919) % docs}@example.com` })],
    [
      "follows: fan-out page, find({ followeeId }) by _id",
      (r) =>
        follows
          .find({ followeeId: owner(r) })
          .sort({ _id: 1 })
          .toArray(),
    ],
    [
      "follows: follow lookup, findOne({ followerId, followeeId })",
      (r) => {
        const i = ownerIndex(r) + owners.length * ((r * 31) % PER_OWNER); // one of owner(r)'s follows
        return follows.findOne({ followerId: followers[i % docs], followeeId: owner(r) });
      },
    ],
    [
      "notifications: find({ _id: { $in: 100 ids } })",
      (r) => notifications.find({ _id: { $in: some(notificationIds, 100, r) } }).toArray(),
    ],
    [
      "notifications: updateMany({ _id: { $in: 100 ids } })",
      (r) => notifications.updateMany({ _id: { $in: some(notificationIds, 100, r + runs) } }, { $set: { marked: r } }),
    ],
    [
      "users: find({ _id: { $in: 1,000 ids } }) (the delivery planner's preferences read)",
      (r) => users.find({ _id: { $in: some(userIds, 1000, r) } }).toArray(),
    ],
    [
      "notifications: unread counts of 50 recipients, aggregate $match { recipientId: { $in }, readAt: null, archivedAt: null }, $group",
      (r) =>
        notifications
          .aggregate([
            { $match: { recipientId: { $in: some(owners, 50, r) }, readAt: null, archivedAt: null } },
            { $group: { _id: "$recipientId", count: { $sum: 1 } } },
          ])
          .toArray(),
    ],
    [
      "notifications: countDocuments({ kind }) (pushed down, no index, every document matches)",
      () => notifications.countDocuments({ kind: "SYSTEM" }),
    ],
    [
      "notifications: countDocuments({ readAt: null }) (pushed down, no index, half the documents match)",
      () => notifications.countDocuments({ readAt: null }),
    ],
    [
      `comments: recovery sweep, find({ notifiedAt: null, createdAt: { $lt } }), ${UNNOTIFIED} documents`,
      async () => {
        const found = await comments.find({ notifiedAt: null, createdAt: { $lt: cutoff } }).toArray();
        if (found.length !== UNNOTIFIED) throw new Error(`the sweep found ${found.length} comments`);
      },
    ],
  ];

  for (const [name, query] of queries.filter(([name]) => name.includes(only))) {
    await query(runs * 2); // warm-up
    const times = [];
    for (let r = 0; r < runs; r++) {
      const t = performance.now();
      await query(r);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    process.stdout.write(`  ${name}: median ${ms(median)} ms, max ${ms(times.at(-1))} ms\n`);
  }
} catch (error) {
  process.stderr.write(`${serverLog}\n`);
  throw error;
} finally {
  await client?.close();
  child.kill("SIGTERM");
  await exited;
  rmSync(dataDir, { recursive: true, force: true });
}

async function fill(collection, make) {
  for (let i = 0; i < docs; i += BATCH) {
    await collection.insertMany(Array.from({ length: Math.min(BATCH, docs - i) }, (_, j) => make(i + j)));
  }
}

async function connect(url) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const c = await MongoClient.connect(url, { serverSelectionTimeoutMS: 500 });
      await c.db().command({ ping: 1 });
      return c;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(200);
    }
  }
}

function seconds(since) {
  return ((performance.now() - since) / 1000).toFixed(1);
}

function ms(value) {
  return value < 10 ? value.toFixed(2) : value.toFixed(0);
}
