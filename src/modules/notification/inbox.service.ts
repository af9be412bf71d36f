import { ObjectId } from "@mikro-orm/mongodb";
import type { EntityManager } from "../../infra/orm.js";
import { badInput, notFound } from "../../graphql/errors.js";
import { Notification } from "./notification.entity.js";
import { NotificationStatus } from "./notification.enums.js";
import { afterCursor, decodeCursor, encodeCursor } from "./cursor.js";
import type { NotificationService } from "./notification.service.js";
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
    return this.change(em, userId, id, { readAt: null }, { readAt: new Date() });
  }

  /** One kept out of the inbox (see Notification.inApp) stays read: no count may include it. */
  markUnread(em: EntityManager, userId: string, id: string): Promise<NotificationView> {
    return this.change(em, userId, id, { readAt: { $ne: null }, inApp: { $ne: false } }, { readAt: null });
  }

  archive(em: EntityManager, userId: string, id: string): Promise<NotificationView> {
    return this.change(em, userId, id, { archivedAt: null }, { archivedAt: new Date() });
  }

  /** Marks every unread notification read, archived ones included; returns how many changed. */
  async markAllRead(em: EntityManager, userId: string): Promise<number> {
    const changed = await em.nativeUpdate(
      Notification,
      { recipientId: new ObjectId(userId), readAt: null },
      { readAt: new Date() },
    );
    if (changed > 0) await this.notifications.publishUnreadCounts(em, [userId]);
    return changed;
  }

  async delete(em: EntityManager, userId: string, id: string): Promise<boolean> {
    const deleted = await em.nativeDelete(Notification, this.own(userId, id));
    if (deleted === 0) throw notFound("Notification");
    await this.notifications.publishUnreadCounts(em, [userId]);
    return true;
  }

  /**
   * Applies `update` when the notification is in the state `when` describes; a notification already
   * in the target state is left as it is (marking twice is not an error). Answers the fresh state.
   */
  private async change(
    em: EntityManager,
    userId: string,
    id: string,
    when: Record<string, unknown>,
    update: Partial<Pick<Notification, "readAt" | "archivedAt">>,
  ): Promise<NotificationView> {
    const own = this.own(userId, id);
    const changed = await em.nativeUpdate(Notification, { ...own, ...when }, update);
    const current = await em.fork().findOne(Notification, own);
    if (!current) throw notFound("Notification");
    if (changed > 0) await this.notifications.publishUnreadCounts(em, [userId]);
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
