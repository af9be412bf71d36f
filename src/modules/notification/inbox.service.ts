import { ObjectId } from "@mikro-orm/mongodb";
import type { Document } from "mongodb";
import type { EntityManager } from "../../infra/orm.js";
import { badInput, notFound } from "../../graphql/errors.js";
import { Notification } from "./notification.entity.js";
import { NotificationStatus } from "./notification.enums.js";
import { afterCursor, decodeCursor, encodeCursor } from "./cursor.js";
import { notificationCollection, type NotificationService } from "./notification.service.js";
import {
  toNotificationView,
  type NotificationConnection,
  type NotificationFilter,
  type NotificationView,
} from "./notification.types.js";

export const MAX_PAGE_SIZE = 100;

/**
 * A user's own notifications: reading, marking, archiving, deleting. Every query is scoped to the
 * caller, so another user's notification is indistinguishable from a missing one (NOT_FOUND).
 * Every change to what is unread is written first and then announced as the new count.
 */
export class InboxService {
  constructor(private readonly notifications: NotificationService) {}

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

  async get(em: EntityManager, userId: string, id: string): Promise<NotificationView> {
    const found = await em.findOne(Notification, this.own(userId, id));
    if (!found) throw notFound("Notification");
    return toNotificationView(found);
  }

  unreadCount(em: EntityManager, userId: string): Promise<number> {
    return this.notifications.unreadCount(em, userId);
  }

  markRead(em: EntityManager, userId: string, id: string): Promise<NotificationView> {
    return this.change(em, userId, id, { readAt: null }, { readAt: new Date() }, (was) => (was.archivedAt ? 0 : -1));
  }

  /** One kept out of the inbox (see Notification.inApp) stays read: no count may include it. */
  markUnread(em: EntityManager, userId: string, id: string): Promise<NotificationView> {
    return this.change(em, userId, id, { readAt: { $ne: null }, inApp: { $ne: false } }, { readAt: null }, (was) =>
      was.archivedAt ? 0 : 1,
    );
  }

  archive(em: EntityManager, userId: string, id: string): Promise<NotificationView> {
    return this.change(em, userId, id, { archivedAt: null }, { archivedAt: new Date() }, (was) =>
      was.readAt ? 0 : -1,
    );
  }

  /** Marks every unread notification read, archived ones included; returns how many changed. */
  async markAllRead(em: EntityManager, userId: string): Promise<number> {
    const recipientId = new ObjectId(userId);
    const { result: changed, counts } = await this.notifications.changingUnread(
      [userId],
      async () => {
        const readAt = new Date();
        // Counted ones first, apart, so that the counter moves by exactly what left the count.
        const counted = await em.nativeUpdate(
          Notification,
          { recipientId, readAt: null, archivedAt: null },
          { readAt },
        );
        const archived = await em.nativeUpdate(Notification, { recipientId, readAt: null }, { readAt });
        return { result: counted + archived, deltas: new Map([[userId, -counted]]) };
      },
      true,
    );
    if (changed > 0) await this.notifications.publishUnreadCounts(em, [userId], { counts });
    return changed;
  }

  async delete(em: EntityManager, userId: string, id: string): Promise<boolean> {
    const own = this.own(userId, id);
    const { result: deleted, counts } = await this.notifications.changingUnread(
      [userId],
      async () => {
        const doc = await notificationCollection(em).findOneAndDelete(own);
        const counted = doc !== null && doc["readAt"] == null && doc["archivedAt"] == null;
        return { result: doc !== null, deltas: new Map([[userId, counted ? -1 : 0]]) };
      },
      true,
    );
    if (!deleted) throw notFound("Notification");
    await this.notifications.publishUnreadCounts(em, [userId], { counts });
    return true;
  }

  /**
   * Applies `update` when the notification is in the state `when` describes; a notification already
   * in the target state is left as it is (marking twice is not an error). Answers the fresh state.
   * `delta` says how the change moved the unread count, from the notification as it was before.
   */
  private async change(
    em: EntityManager,
    userId: string,
    id: string,
    when: Record<string, unknown>,
    update: Partial<Pick<Notification, "readAt" | "archivedAt">>,
    delta: (was: Document) => number,
  ): Promise<NotificationView> {
    const own = this.own(userId, id);
    const { result: changed, counts } = await this.notifications.changingUnread(
      [userId],
      async () => {
        const was = await notificationCollection(em).findOneAndUpdate(
          { ...own, ...when },
          { $set: update },
          { returnDocument: "before" },
        );
        return { result: was !== null, deltas: new Map([[userId, was ? delta(was) : 0]]) };
      },
      true,
    );
    const current = await em.fork().findOne(Notification, own);
    if (!current) throw notFound("Notification");
    if (changed) await this.notifications.publishUnreadCounts(em, [userId], { counts });
    return toNotificationView(current);
  }

  private own(userId: string, id: string): { _id: ObjectId; recipientId: ObjectId } {
    if (!ObjectId.isValid(id)) throw badInput("id", "is not a notification id");
    return { _id: new ObjectId(id), recipientId: new ObjectId(userId) };
  }
}

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
