import { NotificationKind } from "../notification/notification.enums.js";
import type { NotificationView } from "../notification/notification.types.js";

export interface EmailLinks {
  /** The notification in the client app. */
  open: string;
  /** Turns these emails off for this kind, no sign-in needed. */
  unsubscribe: string;
}

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

/** Why a user receives this kind of email, for the footer next to the unsubscribe link. */
const REASON: Record<NotificationKind, string> = {
  [NotificationKind.WELCOME]: "you signed up",
  [NotificationKind.NEW_POST]: "you follow the author",
  [NotificationKind.NEW_COMMENT]: "someone commented on your post",
  [NotificationKind.NEW_FOLLOWER]: "someone followed you",
  [NotificationKind.REMINDER]: "you scheduled this reminder",
  [NotificationKind.DIGEST]: "you chose a digest",
  [NotificationKind.SYSTEM]: "of a message from the service",
};

/**
 * One email per notification, as plain text and HTML. Everything that came from users (titles,
 * bodies, names) is escaped in the HTML part; the text part carries it as it is.
 */
export function renderNotificationEmail(notification: NotificationView, links: EmailLinks): RenderedEmail {
  const reason = `You get this email because ${REASON[notification.kind]}.`;
  const text = [
    notification.title,
    "",
    notification.body,
    "",
    `Open: ${links.open}`,
    "",
    "--",
    reason,
    `Stop these emails: ${links.unsubscribe}`,
    "",
  ].join("\n");
  const html = `<!doctype html>
<html><body style="font-family: sans-serif; max-width: 36em">
<h1 style="font-size: 1.2em">${escapeHtml(notification.title)}</h1>
<p style="white-space: pre-wrap">${escapeHtml(notification.body)}</p>
<p><a href="${escapeHtml(links.open)}">Open in Herald</a></p>
<hr>
<p style="color: #666; font-size: 0.85em">${escapeHtml(reason)}
<a href="${escapeHtml(links.unsubscribe)}">Stop these emails</a></p>
</body></html>
`;
  return { subject: notification.title, text, html };
}

export function escapeHtml(value: string): string {
  return value
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** One email listing several notifications, oldest first. */
export function renderDigestEmail(notifications: { title: string; body: string }[], links: EmailLinks): RenderedEmail {
  const subject = `Your Herald digest: ${notifications.length} new`;
  const reason = `You get this email because ${REASON[NotificationKind.DIGEST]}.`;
  const text = [
    subject,
    "",
    ...notifications.flatMap((n) => [`* ${n.title}`, `  ${n.body}`, ""]),
    `Open: ${links.open}`,
    "",
    "--",
    reason,
    `Stop these emails: ${links.unsubscribe}`,
    "",
  ].join("\n");
  const items = notifications
    .map((n) => `<li><strong>${escapeHtml(n.title)}</strong><br>${escapeHtml(n.body)}</li>`)
    .join("\n");
  const html = `<!doctype html>
<html><body style="font-family: sans-serif; max-width: 36em">
<h1 style="font-size: 1.2em">${escapeHtml(subject)}</h1>
<ul>
${items}
</ul>
<p><a href="${escapeHtml(links.open)}">Open in Herald</a></p>
<hr>
<p style="color: #666; font-size: 0.85em">${escapeHtml(reason)}
<a href="${escapeHtml(links.unsubscribe)}">Stop these emails</a></p>
</body></html>
`;
  return { subject, text, html };
}
