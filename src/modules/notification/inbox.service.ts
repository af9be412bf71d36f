import { ObjectId } from "@mikro-orm/mongodb";
import type { Document } from "mongodb";
import type { EntityManager } from "../../infra/orm.js";
import { badInput, notFound } from "../../graphql/errors.js";
import { MAX_PAGE_SIZE } from "../../graphql/limits.js";
import { Notification } from "./notification.entity.js";
import { NotificationStatus } from "./notification.enums.js";
import { afterCursor, decodeCursor, encodeCursor } from "../../graphql/cursor.js";
import { notificationCollection, type NotificationService } from "./notification.service.js";
import { InboxEventType, encodeInboxCursor } from "./inbox-events.js";
import {
  toNotificationView,
  type NotificationConnection,
  type NotificationFilter,
  type NotificationView,
} from "./notification.types.js";

/**
 * A user's own notifications: reading, marking, archiving, deleting. Every query is scoped to the
 * caller, so another user's notification is indistinguishable from a missing one (NOT_FOUND).
 * Every change is written first, then logged and announced as an event of the user's inbox stream.
 */
export class InboxService {
  constructor(private readonly notifications: NotificationService) {}

  async list(
    em: EntityManager,
    userId: string,
    args: {
      first: number;
      after?: string | null | undefined;
      filter?: NotificationFilter | null | undefined;
      /** Whether to take the stream position (an extra Redis call) before reading the page. */
      withStreamCursor?: boolean;
    },
  ): Promise<NotificationConnection> {
    if (!Number.isInteger(args.first) || args.first < 0 || args.first > MAX_PAGE_SIZE) {
      throw badInput("first", `must be between 0 and ${MAX_PAGE_SIZE}`);
    }
    // One flat filter (each condition on its own field), not an $and of them: FerretDB pushes
    // top-level equalities down to SQLite, so the user's notifications are found by recipientId
    // instead of by scanning every notification (4 s at 21,000 notifications with $and).
    const conditions: Record<string, unknown>[] = [
      { recipientId: new ObjectId(userId) },
      ...filterConditions(args.filter),
    ];
    if (args.after) {
      const cursor = decodeCursor(args.after);
      if (!cursor) throw badInput("after", "is not a cursor returned by this API");
      conditions.push(afterCursor(cursor));
    }
    const where = Object.assign({}, ...conditions) as Record<string, unknown>;
    // Before the page is read: whatever changes after it is read is an event after this position.
    const streamCursor = args.withStreamCursor ? encodeInboxCursor(await this.notifications.position(userId)) : "";
    const rows = await em.find(Notification, where, {
      orderBy: { createdAt: "desc", _id: "desc" },
      limit: args.first + 1,
    });
    const page = rows.slice(0, args.first);
    const edges = page.map((n) => ({ cursor: encodeCursor(n.createdAt, n.id), node: toNotificationView(n) }));
    return {
      edges,
      pageInfo: { hasNextPage: rows.length > args.first, endCursor: edges.at(-1)?.cursor ?? null },
      streamCursor,
    };
  }

  async get(em: EntityManager, userId: string, id: string): Promise<NotificationView> {
    const found = await em.findOne(Notification, this.own(userId, id));
    if (!found) throw notFound("Notification");
    return toNotificationView(found);
  }

  unreadCount(em: EntityManager, userId: string): Promise<number> {
    return this.notifications.unreadCount(em, userId);
  }

  markRead(em: EntityManager, userId: string, id: string): Promise<NotificationView> {
    return this.change(em, userId, id, InboxEventType.READ, { readAt: null }, { readAt: new Date() }, (now) =>
      now.archivedAt ? 0 : -1,
    );
  }

  /** One kept out of the inbox (see Notification.inApp) stays read: no count may include it. */
  markUnread(em: EntityManager, userId: string, id: string): Promise<NotificationView> {
    return this.change(
      em,
      userId,
      id,
      InboxEventType.UNREAD,
      { readAt: { $ne: null }, inApp: { $ne: false } },
      { readAt: null },
      (now) => (now.archivedAt ? 0 : 1),
    );
  }

  archive(em: EntityManager, userId: string, id: string): Promise<NotificationView> {
    return this.change(
      em,
      userId,
      id,
      InboxEventType.ARCHIVED,
      { archivedAt: null },
      { archivedAt: new Date() },
      (now) => (now.readAt ? 0 : -1),
    );
  }

  /** Marks every unread notification read, archived ones included; returns how many changed. */
  async markAllRead(em: EntityManager, userId: string): Promise<number> {
    const recipientId = new ObjectId(userId);
    return this.notifications.changeInbox(em, userId, async () => {
      const readAt = new Date();
      // Counted ones first, apart, so that the counter moves by exactly what left the count.
      const counted = await em.nativeUpdate(Notification, { recipientId, readAt: null, archivedAt: null }, { readAt });
      const archived = await em.nativeUpdate(Notification, { recipientId, readAt: null }, { readAt });
      const changed = counted + archived;
      return {
        result: changed,
        changes: changed > 0 ? [{ delta: -counted, change: { type: InboxEventType.ALL_READ } }] : [],
      };
    });
  }

  async delete(em: EntityManager, userId: string, id: string): Promise<boolean> {
    const own = this.own(userId, id);
    const deleted = await this.notifications.changeInbox(em, userId, async () => {
      const doc = await notificationCollection(em).findOneAndDelete(own);
      if (!doc) return { result: false, changes: [] };
      const counted = doc["readAt"] == null && doc["archivedAt"] == null;
      // One kept out of the inbox was never in a client's view: its going is no event.
      const shown = doc["inApp"] !== false;
      return {
        result: true,
        changes: shown
          ? [{ delta: counted ? -1 : 0, change: { type: InboxEventType.DELETED, notificationId: id } }]
          : [],
      };
    });
    if (!deleted) throw notFound("Notification");
    return true;
  }

  /**
   * Applies `update` when the notification is in the state `when` describes, and logs the change as
   * `type`; a notification already in the target state is left as it is (marking twice is not an
   * error, and no event). Answers the fresh state. `delta` says how the change moved the unread
   * count, from the notification as it is after it (`when` says what it was before).
   */
  private async change(
    em: EntityManager,
    userId: string,
    id: string,
    type: InboxEventType.READ | InboxEventType.UNREAD | InboxEventType.ARCHIVED,
    when: Record<string, unknown>,
    update: Partial<Pick<Notification, "readAt" | "archivedAt">>,
    delta: (now: Document) => number,
  ): Promise<NotificationView> {
    const own = this.own(userId, id);
    const changed = await this.notifications.changeInbox(em, userId, async () => {
      const now = await notificationCollection(em).findOneAndUpdate(
        { ...own, ...when },
        { $set: update },
        { returnDocument: "after" },
      );
      if (!now) return { result: null, changes: [] };
      const notification = toNotificationView(em.fork().map(Notification, now));
      // One kept out of the inbox was never in a client's view: its changes are no event.
      return {
        result: notification,
        changes: notification.inApp ? [{ delta: delta(now), change: { type, notification } }] : [],
      };
    });
    if (changed) return changed;
    const current = await em.fork().findOne(Notification, own);
    if (!current) throw notFound("Notification");
    return toNotificationView(current);
  }

  private own(userId: string, id: string): { _id: ObjectId; recipientId: ObjectId } {
    if (!ObjectId.isValid(id)) throw badInput("id", "is not a notification id");
    return { _id: new ObjectId(id), recipientId: new ObjectId(userId) };
  }
}

/** Conditions on distinct fields (list merges them into one filter). */
function filterConditions(filter: NotificationFilter | null | undefined): Record<string, unknown>[] {
  // Those the recipient turned off in-app are stored for their email only (see Notification.inApp).
  const conditions: Record<string, unknown>[] = [{ inApp: { $ne: false } }];
  const status = filter?.status ?? NotificationStatus.ALL;
  if (status === NotificationStatus.UNREAD) conditions.push({ readAt: null });
  if (status === NotificationStatus.READ) conditions.push({ readAt: { $ne: null } });
  conditions.push(filter?.archived ? { archivedAt: { $ne: null } } : { archivedAt: null });
  if (filter?.kinds && filter.kinds.length > 0) conditions.push({ kind: { $in: filter.kinds } });
  return conditions;
}
