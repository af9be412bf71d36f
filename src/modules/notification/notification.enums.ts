import { registerEnumType } from "type-graphql";

export enum NotificationKind {
  WELCOME = "WELCOME",
  NEW_POST = "NEW_POST",
  NEW_COMMENT = "NEW_COMMENT",
  NEW_FOLLOWER = "NEW_FOLLOWER",
  REMINDER = "REMINDER",
  DIGEST = "DIGEST",
  SYSTEM = "SYSTEM",
  PASSWORD_CHANGED = "PASSWORD_CHANGED",
  EMAIL_CHANGED = "EMAIL_CHANGED",
}

/**
 * Security notices: a user cannot turn them off, in-app or by email, and their emails carry no
 * unsubscribe link. They tell the owner of an account what was done with it.
 */
export const SECURITY_KINDS: ReadonlySet<NotificationKind> = new Set([
  NotificationKind.PASSWORD_CHANGED,
  NotificationKind.EMAIL_CHANGED,
]);

export enum NotificationChannel {
  IN_APP = "IN_APP",
  EMAIL = "EMAIL",
}

export enum DeliveryStatus {
  PENDING = "PENDING",
  SENT = "SENT",
  FAILED = "FAILED",
  SKIPPED = "SKIPPED",
}

export enum NotificationStatus {
  ALL = "ALL",
  UNREAD = "UNREAD",
  READ = "READ",
}

/** What happened to a user's inbox (see inboxEvents). */
export enum InboxEventType {
  ADDED = "ADDED",
  READ = "READ",
  UNREAD = "UNREAD",
  ARCHIVED = "ARCHIVED",
  DELETED = "DELETED",
  ALL_READ = "ALL_READ",
  RESET = "RESET",
}

registerEnumType(NotificationKind, { name: "NotificationKind" });
registerEnumType(NotificationChannel, { name: "NotificationChannel" });
registerEnumType(DeliveryStatus, { name: "DeliveryStatus" });
registerEnumType(NotificationStatus, { name: "NotificationStatus" });
registerEnumType(InboxEventType, {
  name: "InboxEventType",
  valuesConfig: {
    ADDED: { description: "A notification arrived." },
    READ: { description: "A notification was marked read." },
    UNREAD: { description: "A notification was marked unread." },
    ARCHIVED: { description: "A notification was archived." },
    DELETED: { description: "A notification was deleted." },
    ALL_READ: { description: "Every notification was marked read." },
    RESET: {
      description: "The stream could not resume from the cursor given: refetch notifications, then go on from here.",
    },
  },
});
