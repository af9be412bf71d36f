import "reflect-metadata";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ObjectId, type EntityManager } from "@mikro-orm/mongodb";
import type { JobScheduler } from "../../src/infra/agenda.js";
import { createLogger } from "../../src/infra/logger.js";
import { EMAIL_BATCH_SIZE, emailBatches } from "../../src/modules/email/email.jobs.js";
import { Comment, Post, type CommentNotice } from "../../src/modules/post/post.entity.js";
import {
  FANOUT_LIVE_BATCH,
  FANOUT_READ_PAGE,
  FANOUT_WRITE_BATCH,
  fanoutBatches,
  inOrderAtMost,
} from "../../src/modules/post/post.jobs.js";
import {
  COMMENT_JOB,
  COMMENTS_PER_JOB,
  FANOUT_JOB,
  postSubscribers,
  type CommentJobData,
} from "../../src/modules/post/post.subscriber.js";
import { offlineEntityManager } from "../helpers/offline-orm.js";

function ids(count: number, prefix = "f"): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

/** The sizes `total` items split into, at most `size` each, in order. */
function sizes(total: number, size: number): number[] {
  const out: number[] = [];
  for (let left = total; left > 0; left -= size) out.push(Math.min(size, left));
  return out;
}

/** Lets every promise that can settle settle. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

interface Deferred {
  resolve(): void;
  reject(err: unknown): void;
  promise: Promise<void>;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { resolve, reject, promise };
}

describe("fan-out batches of a page of followers", () => {
  it("an empty page: no batch", () => {
    assert.deepEqual(fanoutBatches([], new Set()), []);
    assert.deepEqual(fanoutBatches([], new Set(["f1"])), []);
  });

  it("nobody listening: batches of FANOUT_WRITE_BATCH, the last one partial", () => {
    for (const count of [
      1,
      FANOUT_WRITE_BATCH - 1,
      FANOUT_WRITE_BATCH,
      FANOUT_WRITE_BATCH + 1,
      3 * FANOUT_WRITE_BATCH,
    ]) {
      const followers = ids(count);
      const batches = fanoutBatches(followers, new Set());
      assert.deepEqual(
        batches.map((b) => b.length),
        sizes(count, FANOUT_WRITE_BATCH),
        `${count} followers`,
      );
      assert.deepEqual(batches.flat(), followers, "every follower once, in page order");
    }
  });

  it("everybody listening: batches of FANOUT_LIVE_BATCH, the last one partial", () => {
    for (const count of [1, FANOUT_LIVE_BATCH, FANOUT_LIVE_BATCH + 1, 2 * FANOUT_LIVE_BATCH + 7]) {
      const followers = ids(count);
      const batches = fanoutBatches(followers, new Set(followers));
      assert.deepEqual(
        batches.map((b) => b.length),
        sizes(count, FANOUT_LIVE_BATCH),
        `${count} followers`,
      );
      assert.deepEqual(batches.flat(), followers);
    }
  });

  it("a full page, some listening: the listening ones first in small batches, then the rest in large ones", () => {
    const followers = ids(FANOUT_READ_PAGE);
    // Scattered through the page, so that grouping them is what puts them first.
    const listening = followers.filter((_, i) => i % 21 === 5);
    const live = new Set([...listening, "not-a-follower"]);
    const rest = followers.filter((f) => !live.has(f));
    const batches = fanoutBatches(followers, live);
    const liveSizes = sizes(listening.length, FANOUT_LIVE_BATCH);
    assert.deepEqual(
      batches.map((b) => b.length),
      [...liveSizes, ...sizes(rest.length, FANOUT_WRITE_BATCH)],
    );
    assert.deepEqual(batches.slice(0, liveSizes.length).flat(), listening);
    assert.deepEqual(batches.slice(liveSizes.length).flat(), rest);
    assert.ok(!batches.flat().includes("not-a-follower"), "only followers of the page are written");
  });

  it("one listening follower is a batch of its own, ahead of the rest", () => {
    const followers = ids(FANOUT_WRITE_BATCH + 1);
    const last = followers.at(-1) ?? "";
    const batches = fanoutBatches(followers, new Set([last]));
    assert.deepEqual(batches[0], [last]);
    assert.deepEqual(
      batches.slice(1).map((b) => b.length),
      [FANOUT_WRITE_BATCH],
    );
  });
});

describe("fan-out batches in flight (inOrderAtMost)", () => {
  it("starts the items in order, never more than the limit at once, and runs each once", async () => {
    const items = ids(7, "b");
    const started: string[] = [];
    const pending = new Map<string, Deferred>();
    let running = 0;
    let most = 0;
    const done = inOrderAtMost(2, items, async (item) => {
      started.push(item);
      running += 1;
      most = Math.max(most, running);
      const d = deferred();
      pending.set(item, d);
      await d.promise;
      running -= 1;
    });
    await settle();
    assert.deepEqual(started, ["b0", "b1"]);
    // The later of the two finishing first frees a place for the next item all the same.
    pending.get("b1")?.resolve();
    await settle();
    assert.deepEqual(started, ["b0", "b1", "b2"]);
    // Bounded, so that an implementation which stops starting items fails instead of hanging.
    for (let round = 0; round <= items.length && (started.length < items.length || running > 0); round += 1) {
      for (const [item, d] of pending) {
        pending.delete(item);
        d.resolve();
      }
      await settle();
    }
    await done;
    assert.deepEqual(started, items);
    assert.equal(most, 2);
  });

  it("fewer items than the limit all start at once; none is no work at all", async () => {
    const started: number[] = [];
    const gate = deferred();
    const done = inOrderAtMost(5, [1, 2, 3], async (item) => {
      started.push(item);
      await gate.promise;
    });
    await settle();
    assert.deepEqual(started, [1, 2, 3]);
    gate.resolve();
    await done;
    let calls = 0;
    await inOrderAtMost(2, [], () => {
      calls += 1;
      return Promise.resolve();
    });
    assert.equal(calls, 0);
  });

  it("after a failure starts nothing more, waits for the running ones, and rejects with the first failure", async () => {
    const items = ids(6, "b");
    const started: string[] = [];
    const pending = new Map<string, Deferred>();
    const done = inOrderAtMost(2, items, (item) => {
      started.push(item);
      const d = deferred();
      pending.set(item, d);
      return d.promise;
    });
    const outcome: { rejected: boolean; err?: unknown } = { rejected: false };
    done.catch((err: unknown) => Object.assign(outcome, { rejected: true, err }));
    await settle();
    const first = new Error("first");
    pending.get("b0")?.reject(first);
    await settle();
    assert.deepEqual(started, ["b0", "b1"], "nothing starts after the failure");
    assert.equal(outcome.rejected, false, "not while b1 is still running");
    pending.get("b1")?.reject(new Error("second"));
    await settle();
    assert.deepEqual(started, ["b0", "b1"]);
    assert.equal(outcome.rejected, true);
    assert.equal(outcome.err, first);
  });
});

describe("email jobs (emailBatches)", () => {
  it("no notifications: no job", () => {
    assert.deepEqual(emailBatches([]), []);
  });

  it("at most EMAIL_BATCH_SIZE emails a job, every id once and in order", () => {
    for (const count of [
      1,
      EMAIL_BATCH_SIZE - 1,
      EMAIL_BATCH_SIZE,
      EMAIL_BATCH_SIZE + 1,
      2 * EMAIL_BATCH_SIZE,
      40_001,
    ]) {
      const notificationIds = ids(count, "n");
      const jobs = emailBatches(notificationIds);
      assert.deepEqual(
        jobs.map((j) => j.notificationIds.length),
        sizes(count, EMAIL_BATCH_SIZE),
        `${count} emails`,
      );
      assert.deepEqual(
        jobs.flatMap((j) => j.notificationIds),
        notificationIds,
      );
    }
  });

  it("leaves the ids it was given as they were", () => {
    const notificationIds = ids(EMAIL_BATCH_SIZE + 1, "n");
    const copy = [...notificationIds];
    const [first] = emailBatches(notificationIds);
    first?.notificationIds.push("extra");
    assert.deepEqual(notificationIds, copy);
  });
});

describe("comment jobs of a flush (COMMENTS_PER_JOB)", () => {
  const em = offlineEntityManager([Post, Comment]);
  const logger = createLogger({ level: "silent" });

  /** The jobs the post subscribers schedule once a flush has written what `persist` persisted. */
  async function jobsAfterFlush(persist: (flush: EntityManager) => void): Promise<{ name: string; data: unknown }[]> {
    const flush = em.fork();
    const scheduled: { name: string; data: unknown }[] = [];
    const scheduler: JobScheduler = {
      now: (name, data) => {
        scheduled.push({ name, data });
        return Promise.resolve();
      },
      at: () => Promise.reject(new Error("nothing written here is scheduled for later")),
    };
    persist(flush);
    const uow = flush.getUnitOfWork();
    uow.computeChangeSets();
    for (const subscriber of postSubscribers(scheduler, logger)) await subscriber.afterFlush?.({ em: flush, uow });
    return scheduled;
  }

  function newComments(flush: EntityManager, count: number): Comment[] {
    const comments = Array.from({ length: count }, (_, i) => new Comment(new ObjectId(), new ObjectId(), `c${i}`));
    flush.persist(comments);
    return comments;
  }

  function commentJobs(jobs: { name: string; data: unknown }[]): CommentJobData[] {
    return jobs.filter((j) => j.name === COMMENT_JOB).map((j) => j.data as CommentJobData);
  }

  it("a flush without new comments schedules no comment job", async () => {
    const jobs = await jobsAfterFlush((flush) => {
      const existing = flush.map(Comment, {
        _id: new ObjectId(),
        postId: new ObjectId(),
        authorId: new ObjectId(),
        body: "old",
        createdAt: new Date(),
      });
      existing.notifiedAt = new Date();
    });
    assert.deepEqual(commentJobs(jobs), []);
  });

  it("up to COMMENTS_PER_JOB comments go in one job; one more starts a second", async () => {
    for (const count of [1, COMMENTS_PER_JOB, COMMENTS_PER_JOB + 1, 10 * COMMENTS_PER_JOB + 7]) {
      let comments: Comment[] = [];
      const jobs = commentJobs(await jobsAfterFlush((flush) => (comments = newComments(flush, count))));
      assert.deepEqual(
        jobs.map((j) => j.comments.length),
        sizes(count, COMMENTS_PER_JOB),
        `${count} comments`,
      );
      assert.deepEqual(
        jobs.flatMap((j) => j.comments.map((c) => c.commentId)),
        comments.map((c) => c._id.toHexString()),
        "every comment once, in the order written",
      );
    }
  });

  it("a comment brings its notice when the request gave it one, and no notice key otherwise", async () => {
    const notice: CommentNotice = {
      postId: new ObjectId().toHexString(),
      commenterId: new ObjectId().toHexString(),
      commenterName: "Ada",
      recipientId: new ObjectId().toHexString(),
      postTitle: "Hello",
      excerpt: "Nice",
    };
    const jobs = commentJobs(
      await jobsAfterFlush((flush) => {
        const [withNotice] = newComments(flush, 2);
        if (withNotice) withNotice.notice = notice;
      }),
    );
    const refs = jobs.flatMap((j) => j.comments);
    assert.equal(refs.length, 2);
    assert.deepEqual(refs[0]?.notice, notice);
    assert.ok(refs[1] && !("notice" in refs[1]));
  });

  it("posts written in the same flush each get a fan-out job, and never ride in a comment job", async () => {
    let posts: Post[] = [];
    const jobs = await jobsAfterFlush((flush) => {
      newComments(flush, 3);
      posts = [new Post(new ObjectId(), "a", "b"), new Post(new ObjectId(), "c", "d")];
      flush.persist(posts);
    });
    assert.deepEqual(
      jobs.filter((j) => j.name === FANOUT_JOB).map((j) => j.data),
      posts.map((p) => ({ postId: p._id.toHexString() })),
    );
    assert.deepEqual(
      commentJobs(jobs).map((j) => j.comments.length),
      [3],
    );
  });
});
