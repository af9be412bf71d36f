import { ObjectId } from "@mikro-orm/mongodb";
import type { Collection, Document } from "mongodb";
import { insertNew, type EntityManager } from "../../infra/orm.js";
import type { TopicListeners } from "../../infra/pubsub.js";
import { PendingAnnouncement, PendingWithdrawal } from "./announcement.entity.js";
import { Notification } from "./notification.entity.js";
import { DeliveryStatus, NotificationChannel, NotificationKind } from "./notification.enums.js";
import type { Topics } from "../../infra/pubsub.js";
import { INBOX, InboxEventType, type InboxPosition, type StoredInboxEvent } from "./inbox-events.js";
import { GroupCommit } from "../../infra/group-commit.js";
import { toNotificationView, type NotificationView } from "./notification.types.js";
import type { InboxCommit, InboxLog, Recount } from "./inbox-log.js";

/** One notification to write; `dedupeKey` identifies it across re-runs of the job that writes it. */
export interface NotificationDraft {
  recipientId: ObjectId;
  dedupeKey: string;
  kind: NotificationKind;
  title: string;
  body: string;
  actorId?: ObjectId | null;
  postId?: ObjectId | null;
  commentId?: ObjectId | null;
  /** Where its email goes instead of the recipient's address (see Notification.emailTo). */
  emailTo?: string;
}

export interface DeliverySummary {
  /** Newly written and announced by this call (a re-run writes none). */
  inserted: number;
  published: number;
}

/** Notifications deleted per write by `withdraw`. */
const WITHDRAW_BATCH = 500;
/** Single notifications written in one batch at most (see NotificationService.deliver). */
const SINGLES_PER_WRITE = 100;
/** Batches of singles in flight at once. */
const SINGLE_WRITES_IN_FLIGHT = 1;

/** How one recipient wants one notification: in the inbox or not, and by email at once, in a digest or not. */
export interface DeliveryPlan {
  inApp: boolean;
  email: "now" | "digest" | "none";
}

/** What follows a stored notification by email (the email module's outbox). */
export interface EmailOutbox {
  /**
   * Email jobs for the notifications' emails (a batch each), after they are stored: transactional
   * for a notification written on its own, bulk for a batch.
   */
  schedule(notificationIds: string[], transactional: boolean): Promise<void>;
  /** Keeps stored notifications for their recipients' next digest email; keeping one twice keeps it once. */
  gather(em: EntityManager, items: { userId: ObjectId; notificationId: ObjectId }[]): Promise<void>;
  /** Those of the notifications that a digest already holds. */
  inDigests(em: EntityManager, notificationIds: ObjectId[]): Promise<ObjectId[]>;
}

/** Where each recipient wants a notification of a kind: asked before anything is written. */
export interface DeliveryPlanner {
  plan(em: EntityManager, recipientIds: ObjectId[], kind: NotificationKind): Promise<Map<string, DeliveryPlan>>;
}

/**
 * Writes notifications, and logs and announces every change to an inbox with the unread count
 * after it (see InboxLog).
 */
export class NotificationService {
  constructor(
    private readonly topics: TopicListeners<Topics>,
    private readonly log: InboxLog,
    private readonly planner: DeliveryPlanner,
    /** Absent when email is not configured: notifications are then in-app only. */
    private readonly email?: EmailOutbox,
  ) {}

  /**
   * Persists, then announces, then schedules the emails and keeps the digest items. Safe to repeat
   * and to run concurrently: the unique dedupe key lets exactly one writer insert each notification,
   * and only that writer follows it up. A writer that stops half-way leaves its PendingAnnouncement
   * behind, and the recovery sweep finishes the work for it.
   *
   * A single notification (a comment, a follow, a welcome, …) is written together with the other
   * single ones in flight in this process (see GroupCommit), and its email is transactional.
   */
  async deliver(em: EntityManager, drafts: NotificationDraft[]): Promise<DeliverySummary> {
    const [draft] = drafts;
    if (drafts.length === 1 && draft) return this.singles.submit({ em, draft });
    const written = await this.write(em, drafts, false);
    return { inserted: written.inserted.size, published: written.published.size };
  }

  /** Singles in flight are written in one batch, each caller told what became of its own. */
  private readonly singles = new GroupCommit<{ em: EntityManager; draft: NotificationDraft }, DeliverySummary>(
    async (items) => {
      const first = items[0];
      if (!first) return [];
      // A unit of work of its own: the batch is no single caller's.
      const written = await this.write(
        first.em.fork(),
        items.map((i) => i.draft),
        true,
      );
      return items.map(({ draft }) => ({
        inserted: written.inserted.has(draft.dedupeKey) ? 1 : 0,
        published: written.published.has(draft.dedupeKey) ? 1 : 0,
      }));
    },
    { maxItems: SINGLES_PER_WRITE, parallel: SINGLE_WRITES_IN_FLIGHT },
  );

  /** The dedupe keys this call inserted, and those of them it announced in the inbox. */
  private async write(
    em: EntityManager,
    drafts: NotificationDraft[],
    transactional: boolean,
  ): Promise<{ inserted: Set<string>; published: Set<string> }> {
    // The ids are drawn first, so that the pending announcement names them while the plans are
    // read: one round trip to the database before the insert instead of two.
    const ids = new Map(drafts.map((d) => [d.dedupeKey, new ObjectId()]));
    const pending = new PendingAnnouncement([...ids.values()]);
    const recipients = [...new Set(drafts.map((d) => d.recipientId.toHexString()))];
    let plans = new Map<string, DeliveryPlan>();
    // Written before the notifications (until it is gone, the sweep finishes for this writer),
    // while the recipients' preferences are read and the write is announced to the counters.
    await Promise.all([
      this.log.begin(recipients),
      (async () => {
        [plans] = await Promise.all([this.plans(em, drafts), em.insert(PendingAnnouncement, pending)]);
      })(),
    ]);
    let inserted: NotificationView[];
    let docs: NotificationDocument[];
    try {
      // Nobody is told of a notification its recipient wants neither in-app nor by email.
      const wanted = drafts.filter((d) => {
        const plan = plans.get(d.dedupeKey);
        return plan && (plan.inApp || plan.email !== "none");
      });
      docs = toDocuments(wanted, plans, ids);
      const digestIds = docs.filter((d) => plans.get(d.dedupeKey)?.email === "digest").map((d) => d._id);
      // Before any is stored, so that a sweep finishing for this writer keeps their digest items.
      if (digestIds.length > 0) await em.nativeUpdate(PendingAnnouncement, { _id: pending._id }, { digestIds });
      inserted = docs.length > 0 ? await this.insertIgnoringDuplicates(em, docs) : [];
    } catch (err) {
      // What was stored is unknown: the counters are counted anew; the sweep announces the rest.
      await this.log
        .commit(
          recipients.map((userId) => ({ userId, changes: [], forget: true })),
          this.recount(em),
        )
        .catch(() => undefined);
      throw err;
    }
    // Stored, so logged and announced at once, each recipient's count moved by one per unread one.
    const shown = inserted.filter((v) => v.inApp);
    const added = new Map<string, InboxCommit["changes"]>(recipients.map((id) => [id, []]));
    for (const view of shown) {
      added.get(view.recipientId)?.push({ delta: 1, change: { type: InboxEventType.ADDED, notification: view } });
    }
    await this.log.commit(
      [...added].map(([userId, changes]) => ({ userId, changes })),
      this.recount(em),
    );
    // Email goes out after the in-app notification is stored and announced, never before it.
    const keys = new Map(docs.map((d) => [d._id.toHexString(), d.dedupeKey]));
    const planOf = (v: NotificationView) => plans.get(keys.get(v.id) ?? "")?.email;
    const toEmail = inserted.filter((v) => planOf(v) === "now").map((v) => v.id);
    const toDigest = inserted.filter((v) => planOf(v) === "digest");
    if (toEmail.length + toDigest.length > 0) {
      // So that a sweep finishing for this writer does not announce a second time.
      await em.nativeUpdate(PendingAnnouncement, { _id: pending._id }, { announcedAt: new Date() });
      await this.followUp(em, toEmail, toDigest, transactional);
    }
    // Last: until it is gone, the recovery sweep finishes what this writer started.
    await em.nativeDelete(PendingAnnouncement, { _id: pending._id });
    const keyOf = (v: NotificationView) => keys.get(v.id) ?? "";
    return { inserted: new Set(inserted.map(keyOf)), published: new Set(shown.map(keyOf)) };
  }

  /** Schedules the emails and keeps the digest's share of stored notifications (both idempotent). */
  private async followUp(
    em: EntityManager,
    toEmail: string[],
    toDigest: NotificationView[],
    /** A notification written on its own: its email takes the transactional lane. */
    transactional = false,
  ): Promise<void> {
    if (toEmail.length > 0) await this.email?.schedule(toEmail, transactional);
    await this.email?.gather(
      em,
      toDigest.map((v) => ({ userId: new ObjectId(v.recipientId), notificationId: new ObjectId(v.id) })),
    );
  }

  /**
   * Finishes what writers that stopped half-way promised: announces their stored notifications,
   * schedules their emails and keeps their digest items. Returns how many notifications.
   */
  async announceAbandoned(em: EntityManager, olderThan: Date, limit: number): Promise<number> {
    const abandoned = await em.find(
      PendingAnnouncement,
      { createdAt: { $lt: olderThan } },
      { orderBy: { createdAt: "asc" }, limit },
    );
    let announced = 0;
    for (const pending of abandoned) {
      const stored = (
        await em.find(
          Notification,
          { _id: { $in: pending.notificationIds } },
          { orderBy: { createdAt: "asc", _id: "asc" } },
        )
      ).map(toNotificationView);
      if (!pending.announcedAt)
        await this.logMissing(
          em,
          pending.createdAt,
          stored.filter((v) => v.inApp),
        );
      const digestIds = new Set((pending.digestIds ?? []).map((id) => id.toHexString()));
      await this.followUp(
        em,
        stored.filter((v) => v.deliveries.some(neverTriedEmail)).map((v) => v.id),
        await this.notInADigest(
          em,
          stored.filter((v) => digestIds.has(v.id)),
        ),
      );
      await em.nativeDelete(PendingAnnouncement, { _id: pending._id });
      announced += stored.length;
    }
    return announced;
  }

  /**
   * Leaves out notifications a digest already holds: the writer may have kept them before it
   * stopped, and that digest may have gone out and dropped its items since.
   */
  private async notInADigest(em: EntityManager, views: NotificationView[]): Promise<NotificationView[]> {
    if (views.length === 0 || !this.email) return views;
    const held = new Set(
      (
        await this.email.inDigests(
          em,
          views.map((v) => new ObjectId(v.id)),
        )
      ).map((id) => id.toHexString()),
    );
    return views.filter((v) => !held.has(v.id));
  }

  /**
   * Logs the ADDED events of stored notifications that a writer which stopped did not log (it may
   * have stopped before or after its commit). Their counters are counted anew: whether the writer
   * applied its share is unknown.
   */
  private async logMissing(em: EntityManager, since: Date, views: readonly NotificationView[]): Promise<void> {
    const byUser = new Map<string, NotificationView[]>();
    for (const v of views) byUser.set(v.recipientId, [...(byUser.get(v.recipientId) ?? []), v]);
    const commits: InboxCommit[] = [];
    for (const [userId, ofUser] of byUser) {
      const logged = await this.log.addedSince(userId, since);
      const missing = ofUser.filter((v) => !logged.has(v.id));
      if (missing.length === 0) continue;
      commits.push({
        userId,
        forget: true,
        changes: missing.map((notification) => ({ delta: 0, change: { type: InboxEventType.ADDED, notification } })),
      });
    }
    if (commits.length > 0) await this.log.commit(commits, this.recount(em));
  }

  /**
   * Runs a change to one user's existing notifications under the user's inbox lock (see InboxLog),
   * then logs and announces the events it reports with their effect on the unread count.
   */
  async changeInbox<T>(
    em: EntityManager,
    userId: string,
    write: () => Promise<{ result: T; changes: InboxCommit["changes"] }>,
  ): Promise<T> {
    const lock = await this.log.lock(userId);
    let done: { result: T; changes: InboxCommit["changes"] };
    try {
      done = await write();
    } catch (err) {
      // The write's effect is unknown: the counter is dropped, to be counted anew.
      await this.log.commit([{ userId, lock, changes: [], forget: true }], this.recount(em)).catch(() => undefined);
      throw err;
    }
    await this.log.commit([{ userId, lock, changes: done.changes }], this.recount(em));
    return done.result;
  }

  /**
   * Takes the notifications `where` finds out of their recipients' inboxes, `batch` at a time until
   * none is left. Each batch locks its recipients' inboxes (see changeInbox), reads the
   * notifications' state under the locks, deletes them and logs a DELETED event for each one that
   * was in an inbox, with the unread count corrected, before the next batch starts. A
   * PendingWithdrawal covers the time between the delete and the log: if the process stops there,
   * the recovery sweep logs the events and has the counts counted anew.
   *
   * A notification whose writer has not announced it yet (its PendingAnnouncement is still there) is
   * held back, not deleted: its ADDED event would come after the DELETED one and leave it in live
   * views. `held` says how many; the caller runs again later for them.
   */
  async withdraw(
    em: EntityManager,
    where: Document,
    options: { batch?: number; between?: () => Promise<void> } = {},
  ): Promise<{ removed: number; held: number }> {
    const notifications = notificationCollection(em);
    const batch = options.batch ?? WITHDRAW_BATCH;
    const held: ObjectId[] = [];
    let removed = 0;
    for (;;) {
      const found = await notifications
        .find(held.length > 0 ? { ...where, _id: { $nin: held } } : where, {
          projection: { _id: 1, recipientId: 1 },
          limit: batch,
          batchSize: batch,
        })
        .toArray();
      if (found.length === 0) return { removed, held: held.length };
      const recipients = new Set(found.map((d) => String(d["recipientId"])));
      const locks = await this.log.lockAll(recipients);
      const changes = new Map<string, InboxCommit["changes"]>([...recipients].map((id) => [id, []]));
      let pending: PendingWithdrawal | undefined;
      try {
        // Read again under the locks: the state they were deleted in is the one the counts moved by.
        const ids = found.map((d) => d["_id"]);
        const [docs, announcing] = await Promise.all([
          notifications
            .find({ _id: { $in: ids } }, { projection: { recipientId: 1, readAt: 1, archivedAt: 1, inApp: 1 } })
            .toArray(),
          em.find(PendingAnnouncement, { notificationIds: { $in: ids } }, { fields: ["notificationIds"] }),
        ]);
        const unannounced = new Set(announcing.flatMap((p) => p.notificationIds.map((id) => id.toHexString())));
        const going = docs.filter((d) => !unannounced.has(String(d["_id"])));
        held.push(...docs.filter((d) => unannounced.has(String(d["_id"]))).map((d) => d["_id"]));
        // One kept out of the inbox was never in a client's view: its going is no event.
        const shown = going.filter((d) => d["inApp"] !== false);
        // A batch held back whole deletes nothing: no promise to keep.
        if (going.length > 0) {
          pending = new PendingWithdrawal({
            notificationIds: shown.map((d) => d["_id"]),
            recipientIds: shown.map((d) => d["recipientId"] as ObjectId),
            userIds: [...recipients].map((id) => new ObjectId(id)),
          });
          await em.insert(PendingWithdrawal, pending);
          await notifications.deleteMany({ _id: { $in: going.map((d) => d["_id"]) } });
        }
        for (const doc of shown) {
          const counted = doc["readAt"] == null && doc["archivedAt"] == null;
          changes.get(String(doc["recipientId"]))?.push({
            delta: counted ? -1 : 0,
            change: { type: InboxEventType.DELETED, notificationId: String(doc["_id"]) },
          });
        }
        removed += going.length;
      } catch (err) {
        // What was deleted is unknown: the counters are counted anew (the sweep logs the events).
        await this.log
          .commit(
            [...locks].map(([userId, lock]) => ({ userId, lock, changes: [], forget: true })),
            this.recount(em),
          )
          .catch(() => undefined);
        throw err;
      }
      await this.log.commit(
        [...locks].map(([userId, lock]) => ({ userId, lock, changes: changes.get(userId) ?? [] })),
        this.recount(em),
      );
      if (pending) await em.nativeDelete(PendingWithdrawal, { _id: pending._id });
      await options.between?.();
      if (found.length < batch) return { removed, held: held.length };
    }
  }

  /**
   * Finishes withdrawals whose writer stopped between its delete and its log: logs the DELETED
   * events of the notifications that are gone, and drops the counters of the batch's recipients,
   * to be counted anew (whether the writer moved them is unknown). An event logged twice is
   * harmless: a client drops a notification it no longer has. Answers how many notifications.
   */
  async finishWithdrawals(em: EntityManager, olderThan: Date, limit: number): Promise<number> {
    const abandoned = await em.find(
      PendingWithdrawal,
      { createdAt: { $lt: olderThan } },
      { orderBy: { createdAt: "asc" }, limit },
    );
    let finished = 0;
    for (const pending of abandoned) {
      const still = new Set(
        (await em.find(Notification, { _id: { $in: pending.notificationIds } }, { fields: ["_id"] })).map((n) => n.id),
      );
      const byUser = new Map<string, InboxCommit["changes"]>(pending.userIds.map((id) => [id.toHexString(), []]));
      pending.notificationIds.forEach((id, i) => {
        const recipient = pending.recipientIds[i]?.toHexString();
        if (!recipient || still.has(id.toHexString())) return;
        byUser.get(recipient)?.push({
          delta: 0,
          change: { type: InboxEventType.DELETED, notificationId: id.toHexString() },
        });
      });
      await this.log.commit(
        [...byUser].map(([userId, changes]) => ({ userId, changes, forget: true })),
        this.recount(em),
      );
      if (pending) await em.nativeDelete(PendingWithdrawal, { _id: pending._id });
      finished += pending.notificationIds.length - still.size;
    }
    return finished;
  }

  /** Drops what Redis keeps of a deleted account's inbox (its notifications are gone). */
  forget(userId: string): Promise<void> {
    return this.log.forget(userId);
  }

  /** What the log counts a user's unread notifications with when its counter is missing. */
  private recount(em: EntityManager): Recount {
    return (ids) => this.unreadCounts(em.fork(), ids);
  }

  /** Each draft's plan, by dedupe key; without email configured, nothing is emailed. */
  private async plans(em: EntityManager, drafts: NotificationDraft[]): Promise<Map<string, DeliveryPlan>> {
    const plans = new Map<string, DeliveryPlan>();
    for (const kind of new Set(drafts.map((d) => d.kind))) {
      const ofKind = drafts.filter((d) => d.kind === kind);
      const byUser = await this.planner.plan(em, [...new Set(ofKind.map((d) => d.recipientId))], kind);
      for (const d of ofKind) {
        const plan = byUser.get(d.recipientId.toHexString()) ?? { inApp: true, email: "none" };
        plans.set(d.dedupeKey, this.email ? plan : { ...plan, email: "none" });
      }
    }
    return plans;
  }

  /** Whether this process plans and schedules emails (SMTP_URL is set). */
  get sendsEmail(): boolean {
    return this.email !== undefined;
  }

  /** Those of `userIds` listening to their inbox right now (any subscription), on any instance. */
  listeningForNew(userIds: readonly string[]): Promise<string[]> {
    return this.topics.listening(INBOX, userIds);
  }

  /** Where the user's inbox stream ends now (see inboxEvents). */
  position(userId: string): Promise<InboxPosition> {
    return this.log.position(userId);
  }

  /** The user's logged events after `from`, or null when the log cannot serve it (see InboxLog). */
  eventsAfter(userId: string, from: InboxPosition, limit: number): Promise<StoredInboxEvent[] | null> {
    return this.log.after(userId, from, limit);
  }

  /** Unread and not archived: what a badge shows. */
  async unreadCount(em: EntityManager, userId: string): Promise<number> {
    const counts = await this.log.read([userId], this.recount(em));
    return counts.get(userId) ?? 0;
  }

  /** Unread counts of many users in one query: what the counters are rebuilt from. */
  private async unreadCounts(em: EntityManager, userIds: readonly string[]): Promise<Map<string, number>> {
    if (userIds.length === 1 && userIds[0]) {
      const count = await em.count(Notification, {
        recipientId: new ObjectId(userIds[0]),
        readAt: null,
        archivedAt: null,
      });
      return new Map([[userIds[0], count]]);
    }
    const rows = (await em.aggregate(Notification, [
      { $match: { recipientId: { $in: userIds.map((id) => new ObjectId(id)) }, readAt: null, archivedAt: null } },
      { $group: { _id: "$recipientId", count: { $sum: 1 } } },
    ])) as { _id: ObjectId; count: number }[];
    return new Map(rows.map((r) => [r._id.toHexString(), r.count]));
  }

  /** Inserts the documents whose dedupe key is new; returns those it inserted. */
  private async insertIgnoringDuplicates(em: EntityManager, docs: NotificationDocument[]): Promise<NotificationView[]> {
    const insertedIndexes = await insertNew(notificationCollection(em), docs);
    return insertedIndexes.flatMap((i) => {
      const doc = docs[i];
      return doc ? [docToView(doc)] : [];
    });
  }
}

type NotificationDocument = ReturnType<typeof toDocuments>[number];

export function toDocuments(
  drafts: NotificationDraft[],
  plans: Map<string, DeliveryPlan>,
  /** Each draft's id, by dedupe key. */
  ids: ReadonlyMap<string, ObjectId>,
) {
  const now = new Date();
  return drafts.map((d) => {
    const plan = plans.get(d.dedupeKey);
    const inApp = plan?.inApp ?? true;
    return {
      _id: ids.get(d.dedupeKey) ?? new ObjectId(),
      recipientId: d.recipientId,
      dedupeKey: d.dedupeKey,
      kind: d.kind,
      title: d.title,
      body: d.body,
      actorId: d.actorId ?? null,
      postId: d.postId ?? null,
      commentId: d.commentId ?? null,
      ...(d.emailTo ? { emailTo: d.emailTo } : {}),
      createdAt: now,
      // Kept out of the inbox: stored read, so that no unread count ever includes it.
      readAt: inApp ? null : now,
      archivedAt: null,
      inApp,
      deliveries: [
        // In-app delivery is the write itself: once stored, the notification is in the inbox.
        inApp
          ? {
              channel: NotificationChannel.IN_APP,
              status: DeliveryStatus.SENT,
              attempts: 1,
              lastError: null,
              deliveredAt: now,
              nextAttemptAt: null,
            }
          : {
              channel: NotificationChannel.IN_APP,
              status: DeliveryStatus.SKIPPED,
              attempts: 0,
              lastError: null,
              deliveredAt: null,
              nextAttemptAt: null,
            },
        ...(plan?.email === "now" ? [pendingEmail()] : []),
      ],
    };
  });
}

export function docToView(doc: NotificationDocument): NotificationView {
  return {
    id: doc._id.toHexString(),
    recipientId: doc.recipientId.toHexString(),
    kind: doc.kind,
    title: doc.title,
    body: doc.body,
    actorId: doc.actorId?.toHexString() ?? null,
    postId: doc.postId?.toHexString() ?? null,
    commentId: doc.commentId?.toHexString() ?? null,
    createdAt: doc.createdAt,
    readAt: doc.readAt,
    archivedAt: null,
    deliveries: doc.deliveries,
    inApp: doc.inApp,
  };
}

function neverTriedEmail(d: { channel: NotificationChannel; status: DeliveryStatus; attempts: number }): boolean {
  return d.channel === NotificationChannel.EMAIL && d.status === DeliveryStatus.PENDING && d.attempts === 0;
}

function pendingEmail() {
  const status: DeliveryStatus = DeliveryStatus.PENDING;
  return {
    channel: NotificationChannel.EMAIL,
    status,
    attempts: 0,
    lastError: null,
    deliveredAt: null as Date | null,
    nextAttemptAt: null,
  };
}

/**
 * The raw collection, for what MikroORM's unit of work does not express: an unordered batch insert,
 * an update or delete that answers the document as it was.
 */
export function notificationCollection(em: EntityManager): Collection<Document> {
  return em.getCollection(Notification) as unknown as Collection<Document>;
}
