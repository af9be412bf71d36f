import { escapeHtml } from "../../common/html.js";
import { NotificationKind } from "../notification/notification.enums.js";
import type { NotificationView } from "../notification/notification.types.js";

export interface EmailLinks {
  /** The notification in the client app. */
  open: string;
  /** Turns these emails off for this kind, no sign-in needed; security notices have none. */
  unsubscribe?: string;
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
  [NotificationKind.PASSWORD_CHANGED]: "the password of your account was changed",
  [NotificationKind.EMAIL_CHANGED]: "the email address of your account was changed from this one",
};

/**
 * One email per notification, as plain text and HTML. Everything that came from users (titles,
 * bodies, names) is escaped in the HTML part; the text part carries it as it is.
 */
export function renderNotificationEmail(notification: NotificationView, links: EmailLinks): RenderedEmail {
  return {
    subject: notification.title,
    ...withFrame(notification.kind, links, {
      text: [notification.title, "", notification.body],
      html: `<h1 style="font-size: 1.2em">${escapeHtml(notification.title)}</h1>
<p style="white-space: pre-wrap">${escapeHtml(notification.body)}</p>`,
    }),
  };
}

/** One email listing several notifications, oldest first. */
export function renderDigestEmail(notifications: { title: string; body: string }[], links: EmailLinks): RenderedEmail {
  const subject = `Your Herald digest: ${notifications.length} new`;
  const items = notifications.map((n) => `<li><strong>${escapeHtml(n.title)}</strong><br>${escapeHtml(n.body)}</li>`);
  return {
    subject,
    ...withFrame(NotificationKind.DIGEST, links, {
      text: [subject, ...notifications.flatMap((n) => ["", `* ${n.title}`, `  ${n.body}`])],
      html: `<h1 style="font-size: 1.2em">${escapeHtml(subject)}</h1>
<ul>
${items.join("\n")}
</ul>`,
    }),
  };
}

/** What every email shares around its content: the link back, why it came, how to stop it. */
function withFrame(
  kind: NotificationKind,
  links: EmailLinks,
  content: { text: string[]; html: string },
): { text: string; html: string } {
  const reason = `You get this email because ${REASON[kind]}.`;
  const text = [
    ...content.text,
    "",
    `Open: ${links.open}`,
    "",
    "--",
    reason,
    ...(links.unsubscribe ? [`Stop these emails: ${links.unsubscribe}`] : []),
    "",
  ].join("\n");
  const html = `<!doctype html>
<html><body style="font-family: sans-serif; max-width: 36em">
${content.html}
<p><a href="${escapeHtml(links.open)}">Open in Herald</a></p>
<hr>
<p style="color: #666; font-size: 0.85em">${escapeHtml(reason)}${
    links.unsubscribe ? `\n<a href="${escapeHtml(links.unsubscribe)}">Stop these emails</a>` : ""
  }</p>
</body></html>
`;
  return { text, html };
}
