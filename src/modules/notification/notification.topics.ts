import type { NotificationView } from "./notification.types.js";

/** Every per-user channel Herald publishes on, with its payload. Channel: `${topic}:${userId}`. */
export interface Topics extends Record<string, unknown> {
  NOTIFICATION_ADDED: NotificationView;
  UNREAD_COUNT_CHANGED: UnreadCountEvent;
}

export const NOTIFICATION_ADDED = "NOTIFICATION_ADDED";
export const UNREAD_COUNT_CHANGED = "UNREAD_COUNT_CHANGED";

/** A user's unread count and the version taken before it was read (see publishUnreadCounts). */
export interface UnreadCountEvent {
  count: number;
  version: number;
}
