import { chunks } from "../../common/chunks.js";
import { ObjectId } from "@mikro-orm/mongodb";
import type { Collection } from "mongodb";
import type { Agenda } from "agenda";
import { defineJob, keepGoing, type JobOutcome, type JobRun, type JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { findBatched, findById, markBatched, type EntityManager, type MikroORM } from "../../infra/orm.js";
import type { ActivityService } from "../activity/activity.service.js";
import { Follow } from "../follow/follow.entity.js";
import { NotificationKind } from "../notification/notification.enums.js";
import type { NotificationService } from "../notification/notification.service.js";
import { User } from "../user/user.entity.js";
import { Comment, Post, commentExcerpt, type CommentNotice } from "./post.entity.js";
import {
  COMMENT_DELETE_JOB,
  COMMENT_JOB,
  DELETE_JOB,
  EDIT_JOB,
  FANOUT_JOB,
  type CommentDeleteJobData,
  type CommentJobData,
  type DeleteJobData,
  type CommentRef,
  type EditJobData,
  type FanoutJobData,
} from "./post.subscriber.js";
import { PostEdit } from "./post-edit.entity.js";
import { notificationCollection } from "../notification/notification.service.js";

export interface PostJobDeps {
  orm: MikroORM;
  notifications: NotificationService;
  activity: ActivityService;
  scheduler: JobScheduler;
  logger: Logger;
}

/**
 * Follows read per query: FerretDB v1 sorts in Go, so each read of a page costs as much as
 * reading all the author's follows, whatever its limit; few large reads win.
 */
export const FANOUT_READ_PAGE = 10_000;
/** Notifications per bulk insert. */
export const FANOUT_WRITE_BATCH = 1000;
/**
 * Notifications per bulk insert for followers with a subscription open: smaller, so that the api
 * instances push the first ones while the next are written, instead of after all of them. Not much
 * smaller: each batch also costs a pending announcement's insert and delete and a preferences read.
 * For 1,000 subscribed followers (median of 3 posts, one sitting each): 100 a batch 733-742 ms to
 * the last, 200 a batch 574 ms, 250 a batch 601 ms with the first 100 ms later.
 */
export const FANOUT_LIVE_BATCH = 200;
/** Fan-out batches written and announced at once. */
export const FANOUT_BATCHES_IN_FLIGHT = 2;

/**
 * NEW_POST to every follower of the author. Follows are read in pages ordered by follow id; within
 * a page the followers with an open subscription are written (and so told) first, then the rest,
 * in bulk inserts. After each page the post records how far it got, so a run that stopped (crash,
 * deploy) resumes at that page; what it had already written is skipped by the dedupe key
 * `post:<post>:<follower>`, so no follower is notified twice.
 */
export async function fanout(deps: PostJobDeps, data: FanoutJobData): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  const post = await findById(em, Post, data.postId);
  if (post?.fanoutCompletedAt) return "skipped";
  // A run again after a failure may have written as the post's deletion took its notifications out.
  if (!post || post.deletedAt) return stopForDeletion(deps, data.postId);
  const author = await em.findOne(User, { _id: post.authorId });
  const draft = (followerId: string) => ({
    recipientId: new ObjectId(followerId),
    dedupeKey: `post:${post.id}:${followerId}`,
    kind: NotificationKind.NEW_POST,
    title: `New post from ${author?.displayName ?? "Someone"}`,
    body: post.title,
    actorId: post.authorId,
    postId: post._id,
  });
  let cursor = post.fanoutCursor ?? null;
  for (;;) {
    const page = await followsAfter(em, post.authorId, cursor);
    const last = page.at(-1);
    if (!last) break;
    const followerIds = page.map((f) => f.followerId.toHexString());
    const live = new Set(await deps.notifications.listeningForNew(followerIds));
    const batches = fanoutBatches(followerIds, live);
    // A few at once, in order of start: while one batch is written, the one before it is announced.
    // Each starts only while the post is there: a deletion stops the fan-out within a batch.
    let deleted = false;
    await inOrderAtMost(FANOUT_BATCHES_IN_FLIGHT, batches, async (followers) => {
      if (deleted || (deleted = await isDeleted(em, post._id))) return;
      await deps.notifications.deliver(em.fork(), followers.map(draft));
    });
    if (deleted || (await isDeleted(em, post._id))) return stopForDeletion(deps, post.id);
    cursor = last._id;
    await em.nativeUpdate(Post, { _id: post._id }, { fanoutCursor: cursor });
    deps.logger.debug({ post: post.id, followers: page.length, live: live.size }, "fan-out page done");
    if (page.length < FANOUT_READ_PAGE) break;
  }
  await deps.activity.record(em, {
    dedupeKey: `post.created:${post.id}`,
    verb: "post.created",
    actorId: post.authorId,
    targetType: "Post",
    targetId: post._id,
  });
  await em.nativeUpdate(Post, { _id: post._id }, { fanoutCompletedAt: new Date() });
  return "done";
}

/** Whether the post was deleted (or is gone): read from the database, not the identity map. */
async function isDeleted(em: EntityManager, postId: ObjectId): Promise<boolean> {
  const found = await em.getCollection(Post).findOne({ _id: postId }, { projection: { deletedAt: 1 } });
  return !found || found["deletedAt"] != null;
}

/**
 * A fan-out that finds its post deleted after it wrote: the deletion's job may have taken the
 * post's notifications out before these were written, so it runs again, after them. (A write
 * that saw the post still there came before the deletion, and its job finds it.)
 */
async function stopForDeletion(deps: PostJobDeps, postId: string): Promise<JobOutcome> {
  await deps.scheduler.now(DELETE_JOB, { postId });
  return "skipped";
}

/**
 * A page's followers in the batches they are written in: those with a subscription open first, in
 * batches of FANOUT_LIVE_BATCH, then the rest in batches of FANOUT_WRITE_BATCH, each in page order.
 */
export function fanoutBatches(followerIds: readonly string[], live: ReadonlySet<string>): string[][] {
  return [
    ...chunks(
      followerIds.filter((f) => live.has(f)),
      FANOUT_LIVE_BATCH,
    ),
    ...chunks(
      followerIds.filter((f) => !live.has(f)),
      FANOUT_WRITE_BATCH,
    ),
  ];
}

/**
 * Runs `run` on each item, starting them in order with at most `limit` running; rejects with the
 * first failure once the running ones have settled (none starts after it).
 */
export async function inOrderAtMost<T>(
  limit: number,
  items: readonly T[],
  run: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const lane = async () => {
    while (!failure && next < items.length) {
      const item = items[next++] as T;
      try {
        await run(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure) throw failure.err;
}

interface FollowRow {
  _id: ObjectId;
  followerId: ObjectId;
}

/** The next page of an author's follows after `cursor`, as plain rows: no entities to track. */
function followsAfter(em: EntityManager, authorId: ObjectId, cursor: ObjectId | null): Promise<FollowRow[]> {
  const follows = em.getCollection(Follow) as unknown as Collection<FollowRow & { followeeId: ObjectId }>;
  return follows
    .find(
      { followeeId: authorId, ...(cursor ? { _id: { $gt: cursor } } : {}) },
      // The whole page in one reply, instead of the driver's first batch of 101 and getMores.
      { projection: { _id: 1, followerId: 1 }, sort: { _id: 1 }, limit: FANOUT_READ_PAGE, batchSize: FANOUT_READ_PAGE },
    )
    .toArray();
}

/**
 * NEW_COMMENT to each comment's post author, unless they wrote the comment themselves. The
 * comments go together (their deliveries, activities and marks share writes); when one fails, the
 * job fails after the others are done, and its retry repeats them all: a comment that brings its
 * notice finds its notification, activity and mark already there (their dedupe keys) and changes
 * nothing, one without reads that it is notified.
 */
export async function notifyComments(deps: PostJobDeps, data: CommentJobData): Promise<JobOutcome> {
  const outcomes = await Promise.allSettled(data.comments.map((ref) => notifyComment(deps, ref)));
  const failed = outcomes.find((o) => o.status === "rejected");
  if (failed) throw failed.reason;
  return outcomes.some((o) => o.status === "fulfilled" && o.value === "done") ? "done" : "skipped";
}

async function notifyComment(deps: PostJobDeps, ref: CommentRef): Promise<JobOutcome> {
  const notice = ref.notice ?? (await readNotice(deps, ref.commentId));
  if (!notice) return "skipped";
  const em = deps.orm.em.fork();
  const commentId = new ObjectId(ref.commentId);
  const commenterId = new ObjectId(notice.commenterId);
  if (notice.recipientId !== notice.commenterId) {
    await deps.notifications.deliver(em, [
      {
        recipientId: new ObjectId(notice.recipientId),
        dedupeKey: `comment:${ref.commentId}`,
        kind: NotificationKind.NEW_COMMENT,
        title: `${notice.commenterName} commented on "${notice.postTitle}"`,
        body: notice.excerpt,
        actorId: commenterId,
        postId: new ObjectId(notice.postId),
        commentId,
      },
    ]);
  }
  await deps.activity.record(em, {
    dedupeKey: `comment.added:${ref.commentId}`,
    verb: "comment.added",
    actorId: commenterId,
    targetType: "Comment",
    targetId: commentId,
  });
  // Marked after the write, and so checked: a comment deleted since the notice was taken, on its
  // own or with its post (whose deletion removes its comments before its notifications), may have
  // had its notifications swept before this one was written. Its deletion then runs again.
  if (!(await markBatched(deps.orm.em, Comment, "notifiedAt", commentId, "deletedAt"))) {
    await deps.scheduler.now(COMMENT_DELETE_JOB, { commentId: ref.commentId });
    return "skipped";
  }
  return "done";
}

/**
 * The notice of a comment not yet notified, from the comment, its post and its author; null when
 * there is none. A comment left behind by its deleted post has its post's deletion run again,
 * which removes it.
 */
async function readNotice(deps: PostJobDeps, commentId: string): Promise<CommentNotice | null> {
  const comment = await findBatched(deps.orm.em, Comment, commentId);
  if (!comment || comment.notifiedAt || comment.deletedAt) return null;
  const [post, commenter] = await Promise.all([
    findBatched(deps.orm.em, Post, comment.postId.toHexString()),
    findBatched(deps.orm.em, User, comment.authorId.toHexString()),
  ]);
  if (!post || post.deletedAt) {
    await stopForDeletion(deps, comment.postId.toHexString());
    return null;
  }
  return {
    postId: post.id,
    commenterId: comment.authorId.toHexString(),
    commenterName: commenter?.displayName ?? "Someone",
    recipientId: post.authorId.toHexString(),
    postTitle: post.title,
    excerpt: commentExcerpt(comment.body),
  };
}

/** Notifications about a post retitled per write, at most. */
const RETITLE_BATCH = 500;

/**
 * After an edit: the activity entry `post.edited` naming the fields that changed, and, when the
 * title changed, every notification quoting it (the NEW_POST in each follower's inbox, the
 * NEW_COMMENTs in the author's) shows the post's title as it is now. Safe to run again: the entry
 * has a dedupe key, and a notification already showing the current title is left as it is.
 */
export async function recordEdit(deps: PostJobDeps, data: EditJobData): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  const edit = await findById(em, PostEdit, data.editId);
  if (!edit || edit.doneAt) return "skipped";
  const post = await em.findOne(Post, { _id: edit.postId });
  if (post) {
    await deps.activity.record(em, {
      dedupeKey: `post.edited:${edit.id}`,
      verb: "post.edited",
      actorId: edit.authorId,
      targetType: "Post",
      targetId: post._id,
      fields: edit.fields,
    });
    if (edit.fields.includes("title") && edit.oldTitle !== post.title) await retitle(em, post, edit.oldTitle);
  }
  await em.nativeUpdate(PostEdit, { _id: edit._id }, { doneAt: new Date() });
  return "done";
}

async function retitle(em: EntityManager, post: Post, oldTitle: string): Promise<void> {
  const notifications = notificationCollection(em);
  // A NEW_POST shows the title as its body; every one gets the current title in one statement.
  await notifications.updateMany({ postId: post._id, kind: NotificationKind.NEW_POST }, { $set: { body: post.title } });
  // A NEW_COMMENT quotes it in its title, after the commenter's name: each is rewritten.
  const quoted = `"${oldTitle}"`;
  let after: ObjectId | null = null;
  for (;;) {
    const page: { _id: ObjectId; title: string }[] = (await notifications
      .find(
        { postId: post._id, kind: NotificationKind.NEW_COMMENT, ...(after ? { _id: { $gt: after } } : {}) },
        { projection: { title: 1 }, sort: { _id: 1 }, limit: RETITLE_BATCH },
      )
      .toArray()) as never;
    const changes = page
      .filter((n) => n.title.endsWith(quoted))
      .map((n) => ({
        updateOne: {
          filter: { _id: n._id },
          update: { $set: { title: `${n.title.slice(0, -quoted.length)}"${post.title}"` } },
        },
      }));
    if (changes.length > 0) await notifications.bulkWrite(changes, { ordered: false });
    const last = page.at(-1);
    if (!last || page.length < RETITLE_BATCH) return;
    after = last._id;
  }
}

/**
 * After deletePost: the post's notifications (NEW_POST in its author's followers' inboxes,
 * NEW_COMMENT in the author's) leave the inboxes a batch at a time, with DELETED events and the
 * counts corrected; its comments go; the activity log records post.deleted; the post goes last.
 * Every step is safe to repeat and starts where a run that stopped left off (what it removed is
 * gone), so the recovery sweep, which finds the post still here, simply runs it again. It runs for
 * a post already gone too: a fan-out or a comment that wrote after the first run asks for another.
 */
export async function deletePost(deps: PostJobDeps, data: DeleteJobData, run: JobRun): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  if (!ObjectId.isValid(data.postId)) return "skipped";
  const postId = new ObjectId(data.postId);
  const post = await em.findOne(Post, { _id: postId });
  if (post && !post.deletedAt) return "skipped";
  if (await removeContent(deps, em, postId, run)) return "done";
  if (!post) return "done";
  // Scheduled before the post goes: a crash in between reruns this run, which schedules it again.
  if (!data.late) await scheduleLateRun(deps, postId);
  await deps.activity.record(em, {
    dedupeKey: `post.deleted:${post.id}`,
    verb: "post.deleted",
    actorId: post.authorId,
    targetType: "Post",
    targetId: post._id,
  });
  await em.nativeDelete(Post, { _id: postId });
  return "done";
}

/**
 * A deleted post's notifications, out of every inbox, and its comments. Answers true when some
 * notifications were held back (their writer has yet to announce them): the deletion then runs
 * again a little later, and the post stays, marked, until it does.
 */
async function removeContent(deps: PostJobDeps, em: EntityManager, postId: ObjectId, run: JobRun): Promise<boolean> {
  // Comments first: a comment's notification written after this finds its comment gone when it
  // marks it, and has the comment's deletion run again (see notifyComment).
  await em.nativeDelete(Comment, { postId });
  const { held } = await deps.notifications.withdraw(em, { postId }, { between: () => keepGoing(run) });
  if (held === 0) return false;
  await deps.scheduler.at(new Date(Date.now() + HELD_RETRY_MS), DELETE_JOB, { postId: postId.toHexString() });
  return true;
}

/** The deletion's run once more a while after the post went (see LATE_RUN_DELAY_MS). */
function scheduleLateRun(deps: PostJobDeps, postId: ObjectId): Promise<void> {
  return deps.scheduler.at(new Date(Date.now() + LATE_RUN_DELAY_MS), DELETE_JOB, {
    postId: postId.toHexString(),
    late: true,
  });
}

/** How long a deletion waits for the writers of notifications it held back. */
const HELD_RETRY_MS = 2000;
/** The late run of a post's deletion: well after any request that read the post before it went. */
const LATE_RUN_DELAY_MS = 60_000;

/** Posts, and comments, removed per step of a deleted account's erasure. */
const ERASE_BATCH = 100;

/**
 * A deleted account's posts and comments, removed as their deletions remove them, with their
 * notifications out of every inbox, but with no activity recorded: the account's goes too.
 * Each post is marked first, so a fan-out under way stops (see deletePost for what follows).
 */
export async function eraseAuthor(deps: PostJobDeps, authorId: ObjectId, run: JobRun): Promise<void> {
  const em = deps.orm.em.fork();
  // Posts whose deletion waits for a writer: left, marked, to their own post.deleted run.
  const later: ObjectId[] = [];
  for (;;) {
    const posts = await em.find(Post, later.length > 0 ? { authorId, _id: { $nin: later } } : { authorId }, {
      fields: ["_id"],
      limit: ERASE_BATCH,
    });
    if (posts.length === 0) break;
    const ids = posts.map((p) => p._id);
    await em.nativeUpdate(Post, { _id: { $in: ids }, deletedAt: null }, { deletedAt: new Date() });
    for (const id of ids) {
      if (await removeContent(deps, em, id, run)) later.push(id);
      else {
        await scheduleLateRun(deps, id);
        await em.nativeDelete(Post, { _id: id });
      }
      await keepGoing(run);
    }
  }
  for (;;) {
    const comments = await em.find(Comment, { authorId }, { fields: ["_id"], limit: ERASE_BATCH });
    if (comments.length === 0) return;
    const ids = comments.map((c) => c._id);
    await deps.notifications.withdraw(em, { dedupeKey: { $in: ids.map((id) => `comment:${id.toHexString()}`) } });
    await em.nativeDelete(Comment, { _id: { $in: ids } });
    await keepGoing(run);
  }
}

/** After deleteComment: its NEW_COMMENT leaves the inbox, comment.deleted is recorded, the comment goes. */
export async function deleteComment(deps: PostJobDeps, data: CommentDeleteJobData): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  if (!ObjectId.isValid(data.commentId)) return "skipped";
  const commentId = new ObjectId(data.commentId);
  const comment = await em.findOne(Comment, { _id: commentId });
  if (comment && !comment.deletedAt) return "skipped";
  // Found by its dedupe key, which is indexed (unique), rather than by commentId, which is not.
  const { held } = await deps.notifications.withdraw(em, { dedupeKey: `comment:${data.commentId}` });
  if (held > 0) {
    await deps.scheduler.at(new Date(Date.now() + HELD_RETRY_MS), COMMENT_DELETE_JOB, { commentId: data.commentId });
    return "done";
  }
  if (!comment) return "done";
  await deps.activity.record(em, {
    dedupeKey: `comment.deleted:${comment.id}`,
    verb: "comment.deleted",
    actorId: comment.authorId,
    targetType: "Comment",
    targetId: comment._id,
  });
  await em.nativeDelete(Comment, { _id: commentId });
  return "done";
}

export function definePostJobs(agenda: Agenda, deps: PostJobDeps): void {
  defineJob(agenda, deps.logger, DELETE_JOB, (data: DeleteJobData, run) => deletePost(deps, data, run));
  defineJob(agenda, deps.logger, COMMENT_DELETE_JOB, (data: CommentDeleteJobData) => deleteComment(deps, data));
  defineJob(agenda, deps.logger, FANOUT_JOB, (data: FanoutJobData) => fanout(deps, data));
  defineJob(agenda, deps.logger, COMMENT_JOB, (data: CommentJobData) => notifyComments(deps, data));
  defineJob(agenda, deps.logger, EDIT_JOB, (data: EditJobData) => recordEdit(deps, data));
}
