// The deletion scenario of `npm run bench`: a post that reached 10,000 inboxes is deleted, and an
// account with 100,000 notifications is deleted, each through the API as a client would, with a
// worker doing the batched removal. Each figure stands beside the write it undoes, timed in the
// same run: the post's fan-out, and the insert of the account's notifications.
import { MongoClient, ObjectId } from "mongodb";
import {
  BenchCreatePostDocument,
  BenchRegisterDocument,
  DeleteAccountDocument,
  DeletePostDocument,
} from "../generated/graphql.js";
import { bearer, eventually, gqlOk } from "../helpers/graphql-client.js";
import type { HeraldProcess } from "../helpers/herald.js";
import { seedFollowers, seedNotifications } from "../helpers/seed.js";

export interface DeletionResult {
  inboxes: number;
  /** From createPost to the post's fan-out recorded complete. */
  fanoutMs: number;
  /** The deletePost request alone. */
  deletePostRequestMs: number;
  /** From deletePost to the post gone, with every notification about it. */
  deletePostMs: number;
  notifications: number;
  /** The notifications inserted straight into the database, 5,000 a write. */
  insertMs: number;
  deleteAccountRequestMs: number;
  /** From deleteAccount to the user gone, with every notification of theirs. */
  deleteAccountMs: number;
}

const TIMEOUT_MS = 600_000;
const PASSWORD = "correct horse battery";

export async function measureDeletion(options: {
  api: HeraldProcess;
  mongoUrl: string;
  inboxes: number;
  notifications: number;
  log: (message: string) => void;
  onCleanup: (name: string, stop: () => Promise<unknown>) => void;
}): Promise<DeletionResult> {
  const mongo = new MongoClient(options.mongoUrl);
  options.onCleanup("seed connection", () => mongo.close());
  const db = mongo.db();
  const register = async (name: string) =>
    (
      await gqlOk(options.api.url, BenchRegisterDocument, {
        input: {
          email: `${name}.${new ObjectId().toHexString()}@bench.example`,
          password: PASSWORD,
          displayName: name,
        },
      })
    ).register;

  // A post that reaches `inboxes` followers' inboxes.
  const author = await register("Author");
  await seedFollowers(db, new ObjectId(author.user.id), options.inboxes);
  options.log(`deletion: seeded ${options.inboxes} followers; posting …`);
  const postedWall = Date.now();
  const { createPost } = await gqlOk(
    options.api.url,
    BenchCreatePostDocument,
    { input: { title: "Soon deleted", body: "…" } },
    bearer(author.token),
  );
  const postId = new ObjectId(createPost.id);
  const completedAt = await eventually(
    async () => {
      const post = await db.collection("posts").findOne({ _id: postId });
      return post?.["fanoutCompletedAt"] instanceof Date ? post["fanoutCompletedAt"] : undefined;
    },
    { timeoutMs: TIMEOUT_MS, what: "the fan-out to complete", intervalMs: 50 },
  );
  options.log("deletion: deleting the post …");
  let started = performance.now();
  await gqlOk(options.api.url, DeletePostDocument, { id: createPost.id }, bearer(author.token));
  const deletePostRequestMs = performance.now() - started;
  await eventually(
    async () =>
      (await db.collection("posts").countDocuments({ _id: postId })) === 0 &&
      (await db.collection("notifications").countDocuments({ postId })) === 0
        ? true
        : undefined,
    { timeoutMs: TIMEOUT_MS, what: "the post's deletion", intervalMs: 50 },
  );
  const deletePostMs = performance.now() - started;

  // An account with `notifications` of its own.
  const leaver = await register("Leaver");
  const leaverId = new ObjectId(leaver.user.id);
  options.log(`deletion: inserting ${options.notifications} notifications …`);
  started = performance.now();
  await seedNotifications(db, leaverId, options.notifications, 0.5);
  const insertMs = performance.now() - started;
  options.log("deletion: deleting the account …");
  started = performance.now();
  await gqlOk(options.api.url, DeleteAccountDocument, { password: PASSWORD }, bearer(leaver.token));
  const deleteAccountRequestMs = performance.now() - started;
  await eventually(
    async () => ((await db.collection("users").countDocuments({ _id: leaverId })) === 0 ? true : undefined),
    { timeoutMs: TIMEOUT_MS, what: "the account's deletion", intervalMs: 50 },
  );
  const deleteAccountMs = performance.now() - started;
  const left = await db.collection("notifications").countDocuments({ recipientId: leaverId });
  if (left > 0) throw new Error(`the account is gone but ${left} of its notifications are left`);
  return {
    inboxes: options.inboxes,
    fanoutMs: completedAt.getTime() - postedWall,
    deletePostRequestMs,
    deletePostMs,
    notifications: options.notifications,
    insertMs,
    deleteAccountRequestMs,
    deleteAccountMs,
  };
}

export function reportDeletion(r: DeletionResult): string[] {
  const perSecond = (n: number, ms: number) => Math.round((n / ms) * 1000).toLocaleString("en-US");
  return [
    `Deletion (one api, one worker)`,
    `post that reached ${r.inboxes.toLocaleString("en-US")} inboxes: deletePost answered in ` +
      `${r.deletePostRequestMs.toFixed(1)} ms; every notification out of its inbox (DELETED events, counts ` +
      `corrected) in ${(r.deletePostMs / 1000).toFixed(2)} s (${perSecond(r.inboxes, r.deletePostMs)}/s), ` +
      `against ${(r.fanoutMs / 1000).toFixed(2)} s for its fan-out (${(r.deletePostMs / r.fanoutMs).toFixed(2)}x)`,
    `account with ${r.notifications.toLocaleString("en-US")} notifications: deleteAccount answered in ` +
      `${r.deleteAccountRequestMs.toFixed(1)} ms; everything removed in ${(r.deleteAccountMs / 1000).toFixed(2)} s ` +
      `(${perSecond(r.notifications, r.deleteAccountMs)}/s), against ${(r.insertMs / 1000).toFixed(2)} s to insert ` +
      `them in bulk (${(r.deleteAccountMs / r.insertMs).toFixed(2)}x)`,
  ];
}
