import type { RequestHandler } from "express";
import type { MikroORM } from "../../infra/orm.js";
import type { Logger } from "../../infra/logger.js";
import { escapeHtml } from "../email/email.templates.js";
import { NotificationKind } from "../notification/notification.enums.js";
import type { UnsubscribeTokens } from "../user/token.service.js";
import type { PreferencesService } from "./preferences.service.js";

/**
 * GET /unsubscribe?token=… — the link at the bottom of every email. The signed token names the user
 * and the kind, so one click turns that kind of email off without signing in.
 */
export function unsubscribeRoute(deps: {
  orm: MikroORM;
  tokens: UnsubscribeTokens;
  preferences: PreferencesService;
  logger: Logger;
}): RequestHandler {
  return async (req, res) => {
    const token = typeof req.query["token"] === "string" ? req.query["token"] : "";
    const claims = token ? await deps.tokens.verify(token) : null;
    const kind = Object.values(NotificationKind).find((k) => k === claims?.kind);
    if (!claims || !kind) {
      res.status(400).type("html").send(page("This unsubscribe link is not valid (or has expired)."));
      return;
    }
    await deps.preferences.unsubscribe(deps.orm.em.fork(), claims.userId, kind);
    deps.logger.info({ userId: claims.userId, kind }, "unsubscribed by link");
    res.type("html").send(page(`You will no longer get ${kind.toLowerCase().replaceAll("_", " ")} emails.`));
  };
}

function page(message: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Herald</title></head>
<body style="font-family: sans-serif"><p>${escapeHtml(message)}</p></body></html>`;
}
