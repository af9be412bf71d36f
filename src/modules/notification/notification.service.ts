import { ObjectId } from "@mikro-orm/mongodb";
import type { Collection, Document } from "mongodb";
import type { EntityManager } from "../../infra/orm.js";
import { isDuplicateKeyError } from "../../infra/orm.js";
import type { TopicPublisher } from "../../infra/pubsub.js";
import { badInput, conflict } from "../../graphql/errors.js";
import { User } from "../user/user.entity.js";
import { Delivery, Notification } from "./notification.entity.js";
import { NotificationRequest } from "./notification-request.entity.js";
import { DeliveryStatus, NotificationChannel, NotificationKind, NotificationStatus } from "./notification.enums.js";
import { afterCursor, decodeCursor, encodeCursor } from "./cursor.js";
import { NOTIFICATION_ADDED, UNREAD_COUNT_CHANGED, type Topics } from "./notification.topics.js";
import {
  toNotificationView,
  type NotificationConnection,
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
  /** Newly written by this call (a re-run writes none). */
  inserted: number;
  /** Announced by this call: new ones, and any an interrupted earlier run wrote but never announced. */
  published: number;
}

export class NotificationService {
  constructor(private readonly topics: TopicPublisher<Topics>) {}

  /**
   * Persists, then announces. Safe to repeat: the unique dedupe key turns a second insert into a
   * no-op, and only notifications not yet marked published are announced.
   */
  async deliver(em: EntityManager, drafts: NotificationDraft[]): Promise<DeliverySummary> {
    if (drafts.length === 0) return { inserted: 0, published: 0 };
    const inserted = await this.insertIgnoringDuplicates(em, drafts);
    const pending = await em.find(
      Notification,
      { dedupeKey: { $in: drafts.map((d) => d.dedupeKey) }, publishedAt: null },
      { orderBy: { createdAt: "asc", _id: "asc" } },
    );
    for (const n of pending) {
      await this.topics.publish(NOTIFICATION_ADDED, n.recipientId.toHexString(), toNotificationView(n));
    }
    const recipients = [...new Set(pending.map((n) => n.recipientId.toHexString()))];
    for (const userId of recipients) await this.publishUnreadCount(em, userId);
    if (pending.length > 0) {
      await em.nativeUpdate(Notification, { _id: { $in: pending.map((n) => n._id) } }, { publishedAt: new Date() });
    }
    return { inserted, published: pending.length };
  }

  async list(
    em: EntityManager,
    userId: string,
    args: { first: number; after?: string | null | undefined; filter?: NotificationFilter | null | undefined },
  ): Promise<NotificationConnection> {
    if (!Number.isInteger(args.first) || args.first < 0 || args.first > MAX_PAGE_SIZE) {
      throw badInput("first", `must be between 0 and ${MAX_PAGE_SIZE}`);
    }
    const conditions: Record<string, unknown>[] = [{ recipientId: new ObjectId(userId) }, ...filterConditions(args.filter)];
    if (args.after) {
      const cursor = decodeCursor(args.after);
      if (!cursor) throw badInput("after", "is not a cursor returned by this API");
      conditions.push(afterCursor(cursor));
    }
    const rows = await em.find(Notification, { $and: conditions } as never, {
      orderBy: { createdAt: "desc", _id: "desc" },
      limit: args.first + 1,
    });
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
    const previous = await em.findOne(NotificationRequest, { idempotencyKey: input.idempotencyKey });
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
      const winner = await em.fork().findOneOrFail(NotificationRequest, { idempotencyKey: input.idempotencyKey });
      return replay(winner, input);
    }
    return toResult(request, false);
  }

  private async insertIgnoringDuplicates(em: EntityManager, drafts: NotificationDraft[]): Promise<number> {
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
      deliveries: [{ ...new Delivery(NotificationChannel.IN_APP, DeliveryStatus.SENT), attempts: 1, deliveredAt: now }],
      publishedAt: null,
    }));
    try {
      // Unordered: one duplicate (a re-run) must not stop the rest of the batch.
      const collection = em.getCollection(Notification) as unknown as Collection<Document>;
      const result = await collection.insertMany(docs, { ordered: false });
      return result.insertedCount;
    } catch (err) {
      if (!isBulkOfDuplicates(err)) throw err;
      return err.result.insertedCount;
    }
  }
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
  result: { insertedCount: number };
}

/** An unordered insertMany whose every failure is a duplicate key: the rest went in. */
function isBulkOfDuplicates(err: unknown): err is BulkDuplicates {
  if (err === null || typeof err !== "object" || !("writeErrors" in err) || !("result" in err)) return false;
  const writeErrors = (err as { writeErrors: unknown }).writeErrors;
  const list = Array.isArray(writeErrors) ? writeErrors : [writeErrors];
  return list.every((e: { code?: number }) => e?.code === 11000);
}
