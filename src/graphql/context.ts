import type { EntityManager } from "../infra/orm.js";
import type { Logger } from "../infra/logger.js";
import { forbidden, unauthenticated } from "./errors.js";

/** Who is calling: a signed-in user, another backend holding the service key, or nobody. */
export type Viewer =
  { readonly kind: "user"; readonly userId: string } | { readonly kind: "service" } | { readonly kind: "anonymous" };

export interface GraphQLContext {
  /** A fork per operation: a unit of work must not leak entities between requests. */
  readonly em: EntityManager;
  readonly viewer: Viewer;
  readonly requestId: string;
  readonly logger: Logger;
}

export function requireUser(ctx: GraphQLContext): string {
  if (ctx.viewer.kind === "user") return ctx.viewer.userId;
  if (ctx.viewer.kind === "service") throw forbidden("This operation acts for a user: send a user's bearer token");
  throw unauthenticated();
}

export function requireService(ctx: GraphQLContext): void {
  if (ctx.viewer.kind === "service") return;
  if (ctx.viewer.kind === "user") throw forbidden("Only other backends may call this, with the x-api-key header");
  throw unauthenticated("Send the service key in the x-api-key header");
}

export function viewerId(ctx: GraphQLContext): string | undefined {
  return ctx.viewer.kind === "user" ? ctx.viewer.userId : undefined;
}
