import type { RequestHandler } from "express";
import type { MikroORM } from "../../infra/orm.js";
import type { Logger } from "../../infra/logger.js";
import { escapeHtml } from "../../common/html.js";
import { NotificationKind, SECURITY_KINDS } from "../notification/notification.enums.js";
import type { UnsubscribeTokens } from "../user/token.service.js";
import type { PreferencesService } from "./preferences.service.js";

/**
 * /unsubscribe?token=… — the link at the bottom of every email. The signed token names the user and
 * the kind, so it needs no sign-in. GET only shows a button: mail scanners fetch links, and must
 * not unsubscribe anyone. POST (the button, or a mail client's one-click List-Unsubscribe-Post,
 * RFC 8058) turns that kind of email off.
 */
export function unsubscribeRoutes(deps: {
  orm: MikroORM;
  tokens: UnsubscribeTokens;
  preferences: PreferencesService;
  logger: Logger;
}): { confirm: RequestHandler; unsubscribe: RequestHandler } {
  const claimsOf = async (token: unknown) => {
    const claims = typeof token === "string" && token ? await deps.tokens.verify(token) : null;
    // Security notices cannot be turned off, whatever a link says.
    const kind = Object.values(NotificationKind).find((k) => k === claims?.kind && !SECURITY_KINDS.has(k));
    return claims && kind && typeof token === "string" ? { userId: claims.userId, kind, token } : null;
  };
  const invalid = page("This unsubscribe link is not valid (or has expired).");
  return {
    confirm: async (req, res) => {
      const claims = await claimsOf(req.query["token"]);
      if (!claims) {
        res.status(400).type("html").send(invalid);
        return;
      }
      const action = `?token=${encodeURIComponent(claims.token)}`;
      res
        .type("html")
        .send(
          page(
            `Stop ${label(claims.kind)} emails?`,
            `<form method="post" action="${escapeHtml(action)}"><button type="submit">Unsubscribe</button></form>`,
          ),
        );
    },
    unsubscribe: async (req, res) => {
      const claims = await claimsOf(req.query["token"]);
      if (!claims) {
        res.status(400).type("html").send(invalid);
        return;
      }
      await deps.preferences.unsubscribe(deps.orm.em.fork(), claims.userId, claims.kind);
      deps.logger.info({ userId: claims.userId, kind: claims.kind }, "unsubscribed by link");
      res.type("html").send(page(`You will no longer get ${label(claims.kind)} emails.`));
    },
  };
}

function label(kind: NotificationKind): string {
  return kind.toLowerCase().replaceAll("_", " ");
}

function page(message: string, extra = ""): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Herald</title></head>
<body style="font-family: sans-serif"><p>${escapeHtml(message)}</p>${extra}</body></html>`;
}
