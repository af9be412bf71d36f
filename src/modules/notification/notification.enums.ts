import { registerEnumType } from "type-graphql";

export enum NotificationKind {
  WELCOME = "WELCOME",
  NEW_POST = "NEW_POST",
  NEW_COMMENT = "NEW_COMMENT",
  NEW_FOLLOWER = "NEW_FOLLOWER",
  REMINDER = "REMINDER",
  DIGEST = "DIGEST",
  SYSTEM = "SYSTEM",
}

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

registerEnumType(NotificationKind, { name: "NotificationKind" });
registerEnumType(NotificationChannel, { name: "NotificationChannel" });
registerEnumType(DeliveryStatus, { name: "DeliveryStatus" });
registerEnumType(NotificationStatus, { name: "NotificationStatus" });
