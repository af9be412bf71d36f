import type { EntityManager } from "../infra/orm.js";
import type { Logger } from "../infra/logger.js";
import { forbidden, unauthenticated } from "./errors.js";

/** Who is calling: a signed-in user (and which of their logins), another backend, or nobody. */
export type Viewer =
  | { readonly kind: "user"; readonly userId: string; readonly loginId: string }
  | { readonly kind: "service"; readonly keyName: string }
  | { readonly kind: "anonymous" };

/** Where the request comes from: the address (behind the proxies trusted) and the user agent. */
export interface ClientInfo {
  readonly address?: string | undefined;
  readonly userAgent?: string | undefined;
}

export interface GraphQLContext {
  /** A fork per operation: a unit of work must not leak entities between requests. */
  readonly em: EntityManager;
  readonly viewer: Viewer;
  readonly client: ClientInfo;
  readonly requestId: string;
  readonly logger: Logger;
}

export function requireUser(ctx: GraphQLContext): string {
  if (ctx.viewer.kind === "user") return ctx.viewer.userId;
  if (ctx.viewer.kind === "service") throw forbidden("This operation acts for a user: send a user's bearer token");
  throw unauthenticated();
}

/** The name of the service key the caller sent; only other backends get past. */
export function requireService(ctx: GraphQLContext): string {
  if (ctx.viewer.kind === "service") return ctx.viewer.keyName;
  if (ctx.viewer.kind === "user") throw forbidden("Only other backends may call this, with the x-api-key header");
  throw unauthenticated("Send the service key in the x-api-key header");
}

export function viewerId(ctx: GraphQLContext): string | undefined {
  return ctx.viewer.kind === "user" ? ctx.viewer.userId : undefined;
}

/** The caller's login; an access token always names one. */
export function requireLogin(ctx: GraphQLContext): { userId: string; loginId: string } {
  if (ctx.viewer.kind === "user") return { userId: ctx.viewer.userId, loginId: ctx.viewer.loginId };
  requireUser(ctx);
  throw unauthenticated();
}
