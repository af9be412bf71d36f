import type { NotificationView } from "./notification.types.js";

/** Every per-user channel Herald publishes on, with its payload. Channel: `${topic}:${userId}`. */
export interface Topics extends Record<string, unknown> {
  NOTIFICATION_ADDED: NotificationView;
  UNREAD_COUNT_CHANGED: number;
}

export const NOTIFICATION_ADDED = "NOTIFICATION_ADDED";
export const UNREAD_COUNT_CHANGED = "UNREAD_COUNT_CHANGED";
