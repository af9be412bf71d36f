import type { NotificationKind } from "./generated/graphql";

export const KIND_LABELS: Record<NotificationKind, string> = {
  WELCOME: "Welcome",
  NEW_POST: "New post",
  NEW_COMMENT: "New comment",
  NEW_FOLLOWER: "New follower",
  REMINDER: "Reminder",
  DIGEST: "Digest",
  SYSTEM: "System",
  PASSWORD_CHANGED: "Password changed",
  EMAIL_CHANGED: "Email changed",
};

export const KINDS = Object.keys(KIND_LABELS) as NotificationKind[];

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function formatTime(iso: string): string {
  return dateTime.format(new Date(iso));
}
