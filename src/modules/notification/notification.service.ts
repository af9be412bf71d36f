import { ObjectId } from "@mikro-orm/mongodb";
import type { Collection, Document } from "mongodb";
import { insertNew, type EntityManager } from "../../infra/orm.js";
import type { TopicPublisher } from "../../infra/pubsub.js";
import type { EmailOutbox } from "../email/email.outbox.js";
import type { DeliveryPlan } from "../preferences/preferences.service.js";
import { PendingAnnouncement } from "./announcement.entity.js";
import { Notification } from "./notification.entity.js";
import { DeliveryStatus, NotificationChannel, NotificationKind } from "./notification.enums.js";
import { NOTIFICATION_ADDED, UNREAD_COUNT_CHANGED, type Topics } from "./notification.topics.js";
import { GroupCommit } from "../../infra/group-commit.js";
import { toNotificationView, type NotificationView } from "./notification.types.js";
import type { CountAt, UnreadCounters } from "./unread-counters.js";

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
}

export interface DeliverySummary {
  /** Newly written and announced by this call (a re-run writes none). */
  inserted: number;
  published: number;
}

/** Single notifications written in one batch at most (see NotificationService.deliver). */
const SINGLES_PER_WRITE = 100;
/** Batches of singles in flight at once. */
const SINGLE_WRITES_IN_FLIGHT = 1;

/** Where each recipient wants a notification of a kind: asked before anything is written. */
export interface DeliveryPlanner {
  plan(em: EntityManager, recipientIds: ObjectId[], kind: NotificationKind): Promise<Map<string, DeliveryPlan>>;
}

/** Writes notifications and announces them, and announces unread counts after any change. */
export class NotificationService {
  constructor(
    private readonly topics: TopicPublisher<Topics>,
    private readonly counters: UnreadCounters,
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
    let plans = new Map<string, DeliveryPlan>();
    let docs: NotificationDocument[] = [];
    let shown: NotificationView[] = [];
    let added: Promise<unknown> = Promise.resolve();
    const { result: inserted, counts } = await this.changingUnread(
      [...new Set(drafts.map((d) => d.recipientId.toHexString()))],
      async () => {
        // Nobody is told of a notification its recipient wants neither in-app nor by email.
        const wanted = drafts.filter((d) => {
          const plan = plans.get(d.dedupeKey);
          return plan && (plan.inApp || plan.email !== "none");
        });
        docs = toDocuments(wanted, plans, ids);
        const digestIds = docs.filter((d) => plans.get(d.dedupeKey)?.email === "digest").map((d) => d._id);
        // Before any is stored, so that a sweep finishing for this writer keeps their digest items.
        if (digestIds.length > 0) await em.nativeUpdate(PendingAnnouncement, { _id: pending._id }, { digestIds });
        const views = docs.length > 0 ? await this.insertIgnoringDuplicates(em, docs) : [];
        shown = views.filter((v) => v.inApp);
        // Stored, so announced at once: the publishes share a round trip with the counters' update.
        added = this.publishAdded(shown);
        // Awaited below; a failure meanwhile must not count as unhandled.
        added.catch(() => undefined);
        return { result: views, deltas: tally(shown.map((v) => v.recipientId)) };
      },
      false,
      // Written before the notifications (until it is gone, the sweep finishes for this writer),
      // while the recipients' preferences are read.
      async () => {
        [plans] = await Promise.all([this.plans(em, drafts), em.insert(PendingAnnouncement, pending)]);
      },
    );
    await added;
    await this.publishCountsAfter(em, shown, counts);
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
      // The writer may have stopped between its write and its counters: count those users anew.
      await this.counters.forget(stored.filter((v) => v.inApp).map((v) => v.recipientId));
      if (!pending.announcedAt)
        await this.announce(
          em,
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

  private async announce(
    em: EntityManager,
    views: NotificationView[],
    counts: ReadonlyMap<string, CountAt | null> = new Map(),
  ): Promise<void> {
    if (views.length === 0) return;
    await this.publishAdded(views);
    await this.publishCountsAfter(em, views, counts);
  }

  /** The unread counts of the recipients of announced notifications, to those who listen. */
  private async publishCountsAfter(
    em: EntityManager,
    views: readonly NotificationView[],
    counts: ReadonlyMap<string, CountAt | null>,
  ): Promise<void> {
    if (views.length === 0) return;
    await this.publishUnreadCounts(em, [...new Set(views.map((v) => v.recipientId))], { onlyListening: true, counts });
  }

  /** Sent together: ioredis writes each command without waiting for the previous reply. */
  private async publishAdded(views: readonly NotificationView[]): Promise<void> {
    await Promise.all(views.map((view) => this.topics.publish(NOTIFICATION_ADDED, view.recipientId, view)));
  }

  /**
   * Runs a write that changes these users' unread notifications and applies the change it reports
   * to their counters (see UnreadCounters); answers the write's result and each user's new count,
   * where the counter knew it.
   */
  async changingUnread<T>(
    userIds: readonly string[],
    write: () => Promise<{ result: T; deltas: ReadonlyMap<string, number> }>,
    /** The deltas come from the results of conditional updates or deletes (see UnreadCounters). */
    fromUpdates = false,
    /** Another write that must precede this one, made alongside `begin`. */
    before: () => Promise<unknown> = () => Promise.resolve(),
  ): Promise<{ result: T; counts: Map<string, CountAt | null> }> {
    if (userIds.length === 0) {
      await before();
      return { result: (await write()).result, counts: new Map() };
    }
    await Promise.all([this.counters.begin(userIds), before()]);
    let done: { result: T; deltas: ReadonlyMap<string, number> };
    try {
      done = await write();
    } catch (err) {
      // The write's effect is unknown: the counters are dropped, to be counted anew.
      await this.applied(userIds, new Map(), true).catch(() => undefined);
      await this.counters.forget(userIds).catch(() => undefined);
      throw err;
    }
    return { result: done.result, counts: await this.applied(userIds, done.deltas, fromUpdates) };
  }

  private async applied(
    userIds: readonly string[],
    deltas: ReadonlyMap<string, number>,
    fromUpdates: boolean,
  ): Promise<Map<string, CountAt | null>> {
    const after = await this.counters.apply(new Map(userIds.map((id) => [id, deltas.get(id) ?? 0])), fromUpdates);
    return new Map([...after].map(([id, { count, version }]) => [id, count === null ? null : { count, version }]));
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

  /** Those of `userIds` with an open notificationAdded subscription right now, on any instance. */
  listeningForNew(userIds: readonly string[]): Promise<string[]> {
    return this.topics.listening(NOTIFICATION_ADDED, userIds);
  }

  /** Unread and not archived: what a badge shows. */
  async unreadCount(em: EntityManager, userId: string): Promise<number> {
    const counts = await this.counters.read([userId], (ids) => this.unreadCounts(em, ids));
    return counts.get(userId)?.count ?? 0;
  }

  /**
   * Announces each user's unread count after a change to it was written, with the version that
   * orders it (see unreadCountChanged): the count the change left in the counter when there is
   * one, else the counter's current one. With `onlyListening`, users with no open
   * unreadCountChanged subscription are skipped: a client reads the count when it connects.
   */
  async publishUnreadCounts(
    em: EntityManager,
    userIds: readonly string[],
    options: { onlyListening?: boolean; counts?: ReadonlyMap<string, CountAt | null> } = {},
  ): Promise<void> {
    const targets = options.onlyListening ? await this.topics.listening(UNREAD_COUNT_CHANGED, userIds) : userIds;
    if (targets.length === 0) return;
    const known = options.counts ?? new Map<string, CountAt | null>();
    const unknown = targets.filter((id) => !known.get(id));
    const read =
      unknown.length > 0
        ? await this.counters.read(unknown, (ids) => this.unreadCounts(em, ids))
        : new Map<string, CountAt>();
    await Promise.all(
      targets.map((userId) => {
        const at: CountAt = known.get(userId) ?? read.get(userId) ?? { count: 0, version: 0 };
        return this.topics.publish(UNREAD_COUNT_CHANGED, userId, at);
      }),
    );
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

function toDocuments(
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

function docToView(doc: NotificationDocument): NotificationView {
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

/** How many times each id occurs. */
function tally(ids: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
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
