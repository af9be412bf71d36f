import { ObjectId } from "@mikro-orm/mongodb";
import type { Collection, Document } from "mongodb";
import type { EntityManager } from "../../infra/orm.js";
import { isDuplicateKeyError } from "../../infra/orm.js";
import type { TopicPublisher } from "../../infra/pubsub.js";
import { badInput, conflict } from "../../graphql/errors.js";
import { User } from "../user/user.entity.js";
import { Notification } from "./notification.entity.js";
import { NotificationRequest, requestIdFor } from "./notification-request.entity.js";
import { DeliveryStatus, NotificationChannel, NotificationKind, NotificationStatus } from "./notification.enums.js";
import { afterCursor, decodeCursor, encodeCursor } from "./cursor.js";
import { NOTIFICATION_ADDED, UNREAD_COUNT_CHANGED, type Topics } from "./notification.topics.js";
import {
  toNotificationView,
  type DeliveryView,
  type NotificationConnection,
  type NotificationView,
  type NotificationFilter,
  type SendNotificationInput,
  type SendNotificationResult,
} from "./notification.types.js";

export const MAX_PAGE_SIZE = 100;

/** One notification to write; `dedupeKey` identifies it across re-runs of the job that writes it. */
export interface NotificationDraft {
  recipientId: ObjectId;
  dedupeKey: string;
  kind: NotificationKind;
  title: string;
  body: string;
  actorId?: ObjectId | null;
}

export interface DeliverySummary {
  /** Newly written and announced by this call (a re-run writes none). */
  inserted: number;
  published: number;
}

export class NotificationService {
  constructor(private readonly topics: TopicPublisher<Topics>) {}

  /**
   * Persists, then announces. Safe to repeat and to run concurrently: the unique dedupe key lets
   * exactly one writer insert each notification, and only that writer announces it. A writer that
   * dies between the two leaves `publishedAt` unset; the recovery sweep announces those late.
   */
  async deliver(em: EntityManager, drafts: NotificationDraft[]): Promise<DeliverySummary> {
    if (drafts.length === 0) return { inserted: 0, published: 0 };
    const inserted = await this.insertIgnoringDuplicates(em, drafts);
    await this.announce(em, inserted);
    return { inserted: inserted.length, published: inserted.length };
  }

  /** Announces notifications an interrupted writer stored but never announced. */
  async announceStale(em: EntityManager, olderThan: Date, limit: number): Promise<number> {
    const stale = await em.find(
      Notification,
      { publishedAt: null, createdAt: { $lt: olderThan } },
      { orderBy: { createdAt: "asc", _id: "asc" }, limit },
    );
    await this.announce(em, stale.map(toNotificationView));
    return stale.length;
  }

  private async announce(em: EntityManager, views: NotificationView[]): Promise<void> {
    if (views.length === 0) return;
    for (const view of views) await this.topics.publish(NOTIFICATION_ADDED, view.recipientId, view);
    for (const userId of new Set(views.map((v) => v.recipientId))) await this.publishUnreadCount(em, userId);
    // One update per id in one round trip: FerretDB v1 answers an `_id` match from its index but
    // scans the whole collection for `_id: { $in }`.
    const publishedAt = new Date();
    await notificationCollection(em).bulkWrite(
      views.map((v) => ({ updateOne: { filter: { _id: new ObjectId(v.id) }, update: { $set: { publishedAt } } } })),
      { ordered: false },
    );
  }

  async list(
    em: EntityManager,
    userId: string,
    args: { first: number; after?: string | null | undefined; filter?: NotificationFilter | null | undefined },
  ): Promise<NotificationConnection> {
    if (!Number.isInteger(args.first) || args.first < 0 || args.first > MAX_PAGE_SIZE) {
      throw badInput("first", `must be between 0 and ${MAX_PAGE_SIZE}`);
    }
    const conditions: Record<string, unknown>[] = [
      { recipientId: new ObjectId(userId) },
      ...filterConditions(args.filter),
    ];
    if (args.after) {
      const cursor = decodeCursor(args.after);
      if (!cursor) throw badInput("after", "is not a cursor returned by this API");
      conditions.push(afterCursor(cursor));
    }
    const rows = await em.find(
      Notification,
      { $and: conditions },
      {
        orderBy: { createdAt: "desc", _id: "desc" },
        limit: args.first + 1,
      },
    );
    const page = rows.slice(0, args.first);
    const edges = page.map((n) => ({ cursor: encodeCursor(n.createdAt, n.id), node: toNotificationView(n) }));
    return { edges, pageInfo: { hasNextPage: rows.length > args.first, endCursor: edges.at(-1)?.cursor ?? null } };
  }

  /** Unread and not archived: what a badge shows. */
  async unreadCount(em: EntityManager, userId: string): Promise<number> {
    return em.count(Notification, { recipientId: new ObjectId(userId), readAt: null, archivedAt: null });
  }

  async publishUnreadCount(em: EntityManager, userId: string): Promise<void> {
    await this.topics.publish(UNREAD_COUNT_CHANGED, userId, await this.unreadCount(em, userId));
  }

  /**
   * Stores a request from another backend; NotificationRequestSubscriber schedules its delivery once
   * it is committed. The idempotency key's unique index decides races between two identical calls.
   */
  async send(em: EntityManager, input: SendNotificationInput): Promise<SendNotificationResult> {
    const previous = await em.findOne(NotificationRequest, { _id: requestIdFor(input.idempotencyKey) });
    if (previous) return replay(previous, input);
    const recipientIds = input.recipientIds.map((id) => new ObjectId(id));
    const known = await em.find(User, { _id: { $in: recipientIds } }, { fields: ["_id"] });
    if (known.length !== recipientIds.length) {
      const knownIds = new Set(known.map((u) => u.id));
      const unknown = input.recipientIds.filter((id) => !knownIds.has(id));
      throw badInput("recipientIds", `no user has the id ${unknown.slice(0, 5).join(", ")}`);
    }
    const request = new NotificationRequest({
      idempotencyKey: input.idempotencyKey,
      recipientIds,
      title: input.title,
      body: input.body,
    });
    try {
      await em.persist(request).flush();
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      const winner = await em.fork().findOneOrFail(NotificationRequest, { _id: requestIdFor(input.idempotencyKey) });
      return replay(winner, input);
    }
    return toResult(request, false);
  }

  /** Inserts the drafts whose dedupe key is new; returns those it inserted. */
  private async insertIgnoringDuplicates(em: EntityManager, drafts: NotificationDraft[]): Promise<NotificationView[]> {
    const now = new Date();
    const docs = drafts.map((d) => ({
      _id: new ObjectId(),
      recipientId: d.recipientId,
      dedupeKey: d.dedupeKey,
      kind: d.kind,
      title: d.title,
      body: d.body,
      actorId: d.actorId ?? null,
      postId: null,
      commentId: null,
      createdAt: now,
      readAt: null,
      archivedAt: null,
      // In-app delivery is the write itself: once stored, the notification is in the inbox.
      deliveries: [
        {
          channel: NotificationChannel.IN_APP,
          status: DeliveryStatus.SENT,
          attempts: 1,
          lastError: null,
          deliveredAt: now,
        },
      ],
      publishedAt: null,
    }));
    // Unordered: a duplicate (another run got there first) must not stop the rest of the batch.
    const collection = notificationCollection(em);
    let insertedIndexes: number[];
    try {
      await collection.insertMany(docs, { ordered: false });
      insertedIndexes = docs.map((_, i) => i);
    } catch (err) {
      if (!isBulkOfDuplicates(err)) throw err;
      insertedIndexes = Object.keys(err.insertedIds).map(Number);
    }
    return insertedIndexes.flatMap((i) => {
      const doc = docs[i];
      return doc ? [docToView(doc)] : [];
    });
  }
}

function docToView(doc: {
  _id: ObjectId;
  recipientId: ObjectId;
  kind: NotificationKind;
  title: string;
  body: string;
  actorId: ObjectId | null;
  createdAt: Date;
  deliveries: DeliveryView[];
}): NotificationView {
  return {
    id: doc._id.toHexString(),
    recipientId: doc.recipientId.toHexString(),
    kind: doc.kind,
    title: doc.title,
    body: doc.body,
    actorId: doc.actorId?.toHexString() ?? null,
    postId: null,
    commentId: null,
    createdAt: doc.createdAt,
    readAt: null,
    archivedAt: null,
    deliveries: doc.deliveries,
  };
}

/** The raw collection, for batch writes MikroORM's unit of work does not express. */
function notificationCollection(em: EntityManager): Collection<Document> {
  return em.getCollection(Notification) as unknown as Collection<Document>;
}

function filterConditions(filter: NotificationFilter | null | undefined): Record<string, unknown>[] {
  const conditions: Record<string, unknown>[] = [];
  const status = filter?.status ?? NotificationStatus.ALL;
  if (status === NotificationStatus.UNREAD) conditions.push({ readAt: null });
  if (status === NotificationStatus.READ) conditions.push({ readAt: { $ne: null } });
  conditions.push(filter?.archived ? { archivedAt: { $ne: null } } : { archivedAt: null });
  if (filter?.kinds && filter.kinds.length > 0) conditions.push({ kind: { $in: filter.kinds } });
  return conditions;
}

function replay(previous: NotificationRequest, input: SendNotificationInput): SendNotificationResult {
  const sameRecipients =
    previous.recipientIds.length === input.recipientIds.length &&
    previous.recipientIds.every((id, i) => id.toHexString() === input.recipientIds[i]);
  if (!sameRecipients || previous.title !== input.title || previous.body !== input.body) {
    throw conflict("This idempotencyKey was already used for a different notification", "idempotencyKey");
  }
  return toResult(previous, true);
}

function toResult(request: NotificationRequest, replayed: boolean): SendNotificationResult {
  return {
    id: request.id,
    idempotencyKey: request.idempotencyKey,
    recipientCount: request.recipientIds.length,
    createdAt: request.createdAt,
    replayed,
  };
}

interface BulkDuplicates {
  /** Index in the batch to id, for the documents that did go in. */
  insertedIds: Record<string, unknown>;
}

/** An unordered insertMany whose every failure is a duplicate key: the rest went in. */
function isBulkOfDuplicates(err: unknown): err is BulkDuplicates {
  if (err === null || typeof err !== "object" || !("writeErrors" in err) || !("insertedIds" in err)) return false;
  const writeErrors = (err as { writeErrors: unknown }).writeErrors;
  const list = Array.isArray(writeErrors) ? writeErrors : [writeErrors];
  return list.every((e: { code?: number }) => e?.code === 11000);
}
