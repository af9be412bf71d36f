import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import { ApolloServer } from "@apollo/server";
import { expressMiddleware } from "@as-integrations/express5";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import cors from "cors";
import express, { type Express, type RequestHandler } from "express";
import {
  GraphQLError,
  Kind,
  OperationTypeNode,
  execute,
  getOperationAST,
  subscribe,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from "graphql";
import { CloseCode, type Context as WsContext, type ServerOptions, type SubscribePayload } from "graphql-ws";
import { useServer, type Extra } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";
import type { ContainerType } from "type-graphql";
import type { Config } from "../config/config.js";
import type { Logger } from "../infra/logger.js";
import type { Metrics } from "../infra/metrics.js";
import { PERSISTED_QUERY_TTL_SECONDS, type StringCache } from "../infra/query-cache.js";
import { SpanKind, failed, openSpan, within, type Span } from "../infra/tracing.js";
import type { Context as TraceContext } from "@opentelemetry/api";
import type { MikroORM } from "../infra/orm.js";
import type { PubSub } from "type-graphql";
import { unauthenticated, formatError } from "../graphql/errors.js";
import type { ClientInfo, GraphQLContext, Viewer } from "../graphql/context.js";
import { buildHeraldSchema } from "../graphql/schema.js";
import { LIMIT_RULES } from "../graphql/limits.js";
import { DocumentGate, MAX_TOKENS, badVariables } from "../graphql/documents.js";
import { playgroundAssets } from "../graphql/playground.js";
import type { Authenticator } from "../modules/user/authenticator.js";
import type { LoginEnds } from "../modules/user/login-ends.js";
import { secretMatcher } from "../common/secrets.js";
import { BODY_LIMIT, clientAddress, requestId, sendError, type TrustProxy } from "./http.js";
import type { Limits, SocketLimits } from "../infra/limits.js";
import { rateLimited } from "../graphql/errors.js";

export const GRAPHQL_PATH = "/graphql";
const SUBSCRIPTION_OVER_HTTP = `Subscriptions run over WebSocket: connect to ${GRAPHQL_PATH} with graphql-ws`;
/** GraphiQL's script and styles, named by their content. */
const PLAYGROUND_ASSETS = "/graphiql";
/** Server pings keep idle mobile connections alive through proxies and reveal dead peers. */
const WS_KEEPALIVE_MS = 12_000;
/**
 * The largest WebSocket message read: a subscribe message holds one document (MAX_TOKENS) and its
 * variables. `ws` stops reading a larger one and closes the socket with 1009 (message too big).
 */
export const WS_MAX_MESSAGE_BYTES = 64 * 1024;

export interface ApiDeps {
  config: Config;
  logger: Logger;
  orm: MikroORM;
  /** What subscriptions listen through (see withInboxFeeds). */
  pubsub: PubSub;
  auth: Authenticator;
  /** Logins ended anywhere: their sockets are closed. */
  logins: LoginEnds;
  limits: Limits;
  trustProxy: TrustProxy;
  container: ContainerType;
  app: Express;
  server: Server;
  metrics: Metrics;
  persistedQueries: StringCache;
}

/** Mounts GraphQL over HTTP and graphql-ws on one path; returns the function that stops both. */
export async function startApi(deps: ApiDeps): Promise<() => Promise<void>> {
  const schema = await buildHeraldSchema({ container: deps.container, pubSub: deps.pubsub });
  const gate = new DocumentGate(schema);
  // The GraphiQL page is served from PUBLIC_URL, so its own origin is always allowed.
  const originAllowed = originPolicy([...deps.config.corsOrigins, new URL(deps.config.publicUrl).origin]);
  const wsServer = new WebSocketServer({
    server: deps.server,
    path: GRAPHQL_PATH,
    // CORS does not cover WebSockets: a browser page from an origin not allowed is refused here, and
    // an address opening sockets too fast is told when to come back.
    verifyClient: (
      { origin, req }: { origin?: string; req: IncomingMessage },
      answer: (ok: boolean, status?: number, message?: string, headers?: Record<string, string>) => void,
    ) => {
      const address = clientAddress(req, deps.trustProxy);
      if (!originAllowed(origin)) {
        deps.logger.info({ address, origin, status: 403 }, "socket refused: origin not allowed");
        return answer(false, 403, "Origin not allowed");
      }
      deps.limits.socketAttempt(address).then(
        (wait) => {
          if (wait <= 0) return answer(true);
          deps.logger.info({ address, status: 429, retryAfterSeconds: wait }, "socket refused: too many attempts");
          answer(false, 429, "Too Many Requests", { "Retry-After": String(wait) });
        },
        () => answer(true),
      );
    },
    maxPayload: WS_MAX_MESSAGE_BYTES,
  });
  // Registered before graphql-ws's own listener, so it sees each socket first.
  wsServer.on("connection", (socket: Extra["socket"]) => {
    guardMessages(socket, deps.limits.forSocket(), deps.logger);
    deps.metrics.sockets.inc();
    socket.once("close", () => deps.metrics.sockets.dec());
  });
  // isProd: graphql-ws then closes on internal failures without echoing their messages.
  const ws = useServer({ ...websocketOptions(schema, gate, deps), isProd: true }, wsServer, WS_KEEPALIVE_MS);

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    includeStacktraceInErrorResponses: false,
    // main.ts owns SIGTERM/SIGINT and stops everything in order; Apollo's own handler would call
    // stop() a second time, which never settles, and the process would hang until killed.
    stopOnTerminationSignals: false,
    // Apollo turns introspection off when NODE_ENV=production. Herald's schema is public (it is
    // checked in as schema/schema.graphql) and GraphiQL and client codegen need it.
    introspection: true,
    validationRules: [...LIMIT_RULES],
    // Sent by hash after their first use, from any api instance (the queries are in Redis). A stored
    // query passed the gate and validation when it was registered, and is validated again on use.
    persistedQueries: { cache: boundedRegistrations(deps), ttl: PERSISTED_QUERY_TTL_SECONDS },
    // gateHttp parses first, with the same bound; this one keeps Apollo's own parse within it too.
    parseOptions: { maxTokens: MAX_TOKENS },
    // Herald authenticates with bearer tokens and API keys, never cookies, so a cross-site request
    // cannot act as anyone: CSRF prevention would only refuse plain GET queries.
    csrfPrevention: false,
    formatError: (formatted, error) => {
      const record = requestSlot.getStore();
      const shaped = formatError(formatted, error, { requestId: record?.requestId ?? "unknown", logger: deps.logger });
      if (record) noteError(record, shaped);
      return shaped;
    },
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer: deps.server }),
      {
        // Mutations per user, before any resolver runs (graphql-ws traffic: see onSubscribe).
        requestDidStart({ request }) {
          const record = requestSlot.getStore();
          if (record) record.name = request.operationName ?? null;
          return Promise.resolve({
            async didResolveOperation({ operation, contextValue }) {
              if (record) readOperation(record, operation);
              // gateHttp refuses these already, unless the document came from the persisted queries.
              if (operation?.operation === OperationTypeNode.SUBSCRIPTION) {
                throw new GraphQLError(SUBSCRIPTION_OVER_HTTP, {
                  extensions: { code: "BAD_REQUEST", http: { status: 400 } },
                });
              }
              if (operation?.operation === OperationTypeNode.MUTATION && contextValue.viewer.kind === "user") {
                await deps.limits.mutation(contextValue.viewer.userId);
              }
            },
          });
        },
      },
      ApolloServerPluginLandingPageDisabled(),
      {
        serverWillStart() {
          return Promise.resolve({
            async drainServer() {
              // Closes every socket with 1001 (going away) so clients reconnect elsewhere.
              await ws.dispose();
            },
          });
        },
      },
    ],
  });
  await apollo.start();

  const playground = playgroundAssets(GRAPHQL_PATH, PLAYGROUND_ASSETS);
  deps.app.get(GRAPHQL_PATH, (req, res, next) => {
    if (req.accepts(["application/json", "application/graphql-response+json", "text/html"]) === "text/html") {
      playground.page.send(req, res);
    } else next();
  });
  deps.app.get(`${PLAYGROUND_ASSETS}/:name`, (req, res, next) => {
    const asset = playground.files.get(req.params.name);
    if (asset) asset.send(req, res);
    else next();
  });
  const observe = operationObserver(deps);
  // Which service key sent a request (x-api-key), compared in constant time with every key.
  const serviceKeyName = secretMatcher(deps.config.serviceKeys.map(({ name, key }) => ({ name, secret: key })));
  deps.app.use(
    GRAPHQL_PATH,
    (req, res, next) => {
      // A CORS preflight asks whether it may send an operation: it is not one.
      if (req.method === "OPTIONS") return next();
      const record = openRecord("http", requestId(req), { address: req.ip });
      // "close" comes after the answer, or instead of it when the client went away first.
      res.once("close", () => observe(record, { status: res.writableFinished ? res.statusCode : undefined }));
      records.set(req, record);
      next();
    },
    cors({
      origin: (origin, callback) => callback(null, originAllowed(origin)),
      exposedHeaders: ["x-request-id"],
      maxAge: 600,
    }),
    express.json({ limit: BODY_LIMIT }),
    gateHttp(gate),
    // Entered here, after the body is read (a stream's callbacks would leave the slot).
    (req, _res, next) => {
      const record = records.get(req);
      if (record) requestSlot.run(record, () => within(record.trace.context, next));
      else next();
    },
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        const id = requestId(req);
        const viewer = await httpViewer(req.headers, deps, serviceKeyName);
        const record = requestSlot.getStore();
        if (record) record.viewer = viewer;
        if (viewer.kind === "service")
          deps.logger.info({ requestId: id, serviceKey: viewer.keyName }, "service request");
        return {
          em: deps.orm.em.fork(),
          viewer,
          client: { address: req.ip, userAgent: req.headers["user-agent"] },
          requestId: id,
          // Which service key sent a request is in every line it logs.
          logger: deps.logger.child({
            requestId: id,
            ...(viewer.kind === "service" ? { serviceKey: viewer.keyName } : {}),
          }),
        };
      },
    }),
  );
  return () => apollo.stop();
}

/** The longest query kept as a persisted query: client queries are far shorter. */
const MAX_PERSISTED_QUERY_CHARS = 8 * 1024;

/**
 * The persisted-query cache, with what one client may store in it bounded: the size of a query, and
 * the queries an address registers per hour. Refused, a query runs all the same, unstored.
 */
function boundedRegistrations(deps: ApiDeps): StringCache {
  const cache = deps.persistedQueries;
  return {
    get: (hash) => cache.get(hash),
    delete: (hash) => cache.delete(hash),
    set: async (hash, query, options) => {
      if (query.length > MAX_PERSISTED_QUERY_CHARS) return;
      // Apollo registers a query while it answers the request, in that request's slot.
      if (await deps.limits.persistQuery(requestSlot.getStore()?.address)) await cache.set(hash, query, options);
    },
  };
}

/**
 * Apollo's formatError has no context argument. Everything Apollo does for one request runs in the
 * async chain started in this slot, so formatError can still name the request id.
 */
const requestSlot = new AsyncLocalStorage<OperationRecord>();
const records = new WeakMap<IncomingMessage, OperationRecord>();

/** One operation, over HTTP or WebSocket, as metrics and the log of refusals see it. */
interface OperationRecord {
  readonly requestId: string;
  readonly transport: "http" | "ws";
  readonly started: number;
  readonly address?: string | undefined;
  viewer?: Viewer;
  /** As the client named it (null: it did not), until the document says. */
  name?: string | null;
  type?: string;
  /** The code of the first error answered. */
  code?: string;
  reason?: string;
  /** The root field of a running subscription (counted in herald_subscriptions_active). */
  live?: string;
  observed?: boolean;
  /** Its span, ended with it, and the context in which it runs. */
  readonly trace: { span: Span; context: TraceContext };
}

/** A new operation's record, with its span (named once its operation is known; a no-op when tracing is off). */
function openRecord(
  transport: OperationRecord["transport"],
  requestId: string,
  known: Pick<OperationRecord, "address" | "viewer" | "name">,
): OperationRecord {
  const trace = openSpan("graphql", SpanKind.SERVER, { "herald.transport": transport });
  return { requestId, transport, started: performance.now(), ...known, trace };
}

/** What the document says of the operation: its name (the client's, when the document gives none) and type. */
function readOperation(record: OperationRecord, operation: OperationDefinitionNode | null | undefined): void {
  if (!operation) return;
  record.name = operation.name?.value ?? record.name ?? null;
  record.type = operation.operation;
}

/** Codes that say the request was refused: the log keeps one line of each. */
const REFUSALS = new Set([
  "UNAUTHENTICATED",
  "FORBIDDEN",
  "RATE_LIMITED",
  "BAD_USER_INPUT",
  "BAD_REQUEST",
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "PERSISTED_QUERY_NOT_SUPPORTED",
  "OPERATION_RESOLUTION_FAILURE",
]);

/** An operation's outcome from its HTTP answer alone: no GraphQL error was seen on the way. */
function httpOutcome(record: OperationRecord, status: number | undefined): string {
  if (record.transport === "http" && status === undefined) return "aborted";
  if (status === undefined || status < 400) return "ok";
  return status >= 500 ? "INTERNAL_SERVER_ERROR" : "BAD_REQUEST";
}

function noteError(record: OperationRecord, error: { message: string; extensions?: Record<string, unknown> }): void {
  if (record.code !== undefined) return;
  const code = error.extensions?.["code"];
  record.code = typeof code === "string" ? code : "INTERNAL_SERVER_ERROR";
  record.reason = error.message;
}

/** Counts and times each operation once it is answered, and logs the refused ones. */
function operationObserver(deps: ApiDeps): (record: OperationRecord, extra?: { status?: number }) => void {
  return (record, extra = {}) => {
    if (record.observed) return;
    record.observed = true;
    const outcome = record.code ?? httpOutcome(record, extra.status);
    const labels = {
      // A client names its operations: only a document that was read gets its name counted.
      operation: record.type ? deps.metrics.operationName(record.name) : "unresolved",
      type: record.type ?? "unknown",
      transport: record.transport,
      outcome,
    };
    deps.metrics.operations.inc(labels);
    deps.metrics.operationSeconds.observe(labels, (performance.now() - record.started) / 1000);
    const span = record.trace.span;
    span.updateName(`graphql ${labels.type} ${labels.operation}`);
    span.setAttributes({
      "graphql.operation.name": labels.operation,
      "graphql.operation.type": labels.type,
      "herald.outcome": outcome,
      "herald.request_id": record.requestId,
    });
    if (outcome !== "ok") failed(span, new Error(record.reason ?? outcome));
    span.end();
    // An answer Express's last handlers gave (a body that is not JSON) has been logged by them.
    if (!REFUSALS.has(outcome) || record.code === undefined) return;
    const viewer = record.viewer;
    deps.logger.info(
      {
        requestId: record.requestId,
        transport: record.transport,
        operation: record.name ?? undefined,
        type: record.type,
        code: outcome,
        reason: record.reason,
        status: extra.status,
        userId: viewer?.kind === "user" ? viewer.userId : undefined,
        serviceKey: viewer?.kind === "service" ? viewer.keyName : undefined,
        address: record.address,
      },
      "request refused",
    );
  };
}

async function httpViewer(
  headers: Record<string, string | string[] | undefined>,
  deps: ApiDeps,
  serviceKeyName: (given: string) => string | undefined,
): Promise<Viewer> {
  const apiKey = headers["x-api-key"];
  if (apiKey !== undefined) {
    const keyName = typeof apiKey === "string" ? serviceKeyName(apiKey) : undefined;
    if (keyName) return { kind: "service", keyName };
    throw unauthenticated("The x-api-key header does not hold a valid service key");
  }
  if (headers.authorization === undefined) return { kind: "anonymous" };
  const claims = await deps.auth.authenticate(headers.authorization);
  if (!claims) throw unauthenticated("The bearer token is invalid or expired");
  return { kind: "user", userId: claims.userId, loginId: claims.loginId };
}

type SocketExtra = Extra & {
  viewer?: Viewer;
  client?: ClientInfo;
  /** Ids of the subscriptions running on the socket, for its limit. */
  live?: Set<string>;
  /** Each operation in flight, by its graphql-ws id, for the log and the metrics. */
  operations?: Map<string, OperationRecord>;
  /** Its login has ended: it closes once its queries and mutations in flight are answered. */
  ending?: boolean;
};

/**
 * What Apollo would not refuse, or would answer with an internal error, refused first with the
 * code the contract gives it: documents beyond the bounds (see DocumentGate), subscriptions (they
 * need a WebSocket), a body that is not JSON, and text that is not Unicode.
 */
function gateHttp(gate: DocumentGate): RequestHandler {
  return (req, res, next) => {
    const record = records.get(req);
    const refuse = (status: number, code: string, message: string) => {
      if (record) noteError(record, { message, extensions: { code } });
      sendError(req, res, status, code, message);
    };
    if (req.method === "POST" && req.body === undefined) {
      if (req.is("application/json")) return refuse(400, "BAD_REQUEST", "The body is empty");
      return refuse(415, "BAD_REQUEST", "Send the operation as JSON (content-type: application/json)");
    }
    const params: unknown = req.method === "GET" ? req.query : req.body;
    if (!params || typeof params !== "object" || Array.isArray(params)) return next();
    const { query, operationName, variables } = params as Record<string, unknown>;
    if (typeof query !== "string") {
      // A persisted query, sent by its hash: its variables are checked here all the same, its
      // document (parsed and validated when it was stored) by Apollo and the plugin.
      const problem = badVariables(variables);
      return problem ? refuse(400, "BAD_USER_INPUT", problem) : next();
    }
    const gated = gate.check(query);
    if ("errors" in gated) {
      if (record && gated.errors[0]) noteError(record, gated.errors[0]);
      res.status(400).json({ errors: gated.errors.map((e) => e.toJSON()) });
      return;
    }
    const operation = getOperationAST(gated.document, typeof operationName === "string" ? operationName : undefined);
    if (record) readOperation(record, operation);
    if (operation?.operation === OperationTypeNode.SUBSCRIPTION)
      return refuse(400, "BAD_REQUEST", SUBSCRIPTION_OVER_HTTP);
    const problem = badVariables(variables);
    if (problem) return refuse(400, "BAD_USER_INPUT", problem);
    next();
  };
}

/**
 * The graphql-transport-ws protocol closes a socket with 4400 on a message a client must not send.
 * graphql-ws does so for malformed ones but throws on a well-formed server message (`next`,
 * `error`, `connection_ack`) from a client, which closes the socket with 4500 as if we had failed.
 * A client sending faster than its message rate is closed with 4429.
 */
function guardMessages(socket: Extra["socket"], limits: SocketLimits, logger: Logger): void {
  socketLimits.set(socket, limits);
  const emit = socket.emit.bind(socket);
  socket.emit = (event: string | symbol, ...args: unknown[]): boolean => {
    if (event !== "message") return emit(event, ...args);
    if (isServerMessage(args[0])) {
      logger.info({ code: CloseCode.BadRequest }, "socket closed: a server message from the client");
      socket.close(CloseCode.BadRequest, "Invalid message received");
      return true;
    }
    limits.message().then(
      (over) => {
        if (!over) return;
        logger.info({ code: TOO_MANY_MESSAGES }, "socket closed: too many messages");
        socket.close(TOO_MANY_MESSAGES, "Too many messages");
      },
      () => undefined,
    );
    return emit(event, ...args);
  };
}

/**
 * Close codes of the limits (documented with the others in docs/api.md). A client flooding its
 * socket is told 4429, on which graphql-ws gives up; one over the open sockets of its user or
 * address is told 1013 (try again later), on which graphql-ws retries with its backoff.
 */
export const TOO_MANY_MESSAGES = 4429;
export const TRY_AGAIN_LATER = 1013;

const socketLimits = new WeakMap<Extra["socket"], SocketLimits>();

const SERVER_MESSAGES = new Set(["next", "error", "connection_ack"]);

function isServerMessage(data: unknown): boolean {
  const text = Buffer.isBuffer(data) ? data.toString() : typeof data === "string" ? data : undefined;
  // Only messages that name such a type need parsing: the common ones pass untouched.
  if (!text || !/"(next|error|connection_ack)"/.test(text)) return false;
  try {
    const type = (JSON.parse(text) as { type?: unknown } | null)?.type;
    return typeof type === "string" && SERVER_MESSAGES.has(type);
  } catch {
    return false;
  }
}

function websocketOptions(
  schema: GraphQLSchema,
  gate: DocumentGate,
  deps: ApiDeps,
): ServerOptions<Record<string, unknown>, SocketExtra> {
  const observe = operationObserver(deps);
  const refused = (request: IncomingMessage, code: number, reason: string) =>
    deps.logger.info({ address: clientAddress(request, deps.trustProxy), code, reason }, "socket refused");
  // graphql-ws runs the operation after onSubscribe returns: it runs in the operation's trace here.
  const traceOf = new WeakMap<object, TraceContext>();
  const inTrace = <T>(contextValue: unknown, run: () => T): T => {
    const ctx = typeof contextValue === "object" && contextValue !== null ? traceOf.get(contextValue) : undefined;
    return ctx ? within(ctx, run) : run();
  };
  // Parse and validate here so WebSocket errors carry the same codes as HTTP ones.
  const admit = async (
    ctx: WsContext<Record<string, unknown>, SocketExtra>,
    operationId: string,
    payload: SubscribePayload,
  ): Promise<ExecutionArgs | readonly GraphQLError[]> => {
    // Named before anything can fail, so that an error answered by onError names it too.
    const id = randomUUID();
    const record = openRecord("ws", id, {
      address: ctx.extra.client?.address,
      viewer: ctx.extra.viewer ?? { kind: "anonymous" },
      name: payload.operationName ?? null,
    });
    (ctx.extra.operations ??= new Map()).set(operationId, record);
    const wait = (await socketLimits.get(ctx.extra.socket)?.operation()) ?? 0;
    if (wait > 0) return [rateLimited("Too many operations on this socket", wait)];
    const gated = gate.check(payload.query);
    if ("errors" in gated) return gated.errors;
    const problem = badVariables(payload.variables);
    if (problem) return [new GraphQLError(problem, { extensions: { code: "BAD_USER_INPUT" } })];
    const document = gated.document;
    const viewer = ctx.extra.viewer ?? { kind: "anonymous" as const };
    const client = ctx.extra.client ?? {};
    const logger = deps.logger.child({ requestId: id });
    const definition = getOperationAST(document, payload.operationName);
    const operation = definition?.operation;
    readOperation(record, definition);
    const isSubscription = operation === OperationTypeNode.SUBSCRIPTION;
    if (isSubscription) {
      const live = (ctx.extra.live ??= new Set());
      if (live.size >= deps.limits.settings.subscriptionsPerSocket) {
        deps.metrics.refusals.inc({ limit: "subscriptions-per-socket" });
        return [rateLimited("Too many subscriptions on this socket: complete one first", 1)];
      }
      live.add(operationId);
    }
    if (operation === OperationTypeNode.MUTATION && viewer.kind === "user") {
      try {
        await deps.limits.mutation(viewer.userId);
      } catch (err) {
        if (err instanceof GraphQLError) return [err];
        throw err;
      }
    }
    // A subscription lives for hours: each event resolves in a unit of work of its own, so
    // entities never pile up in one identity map. A query or mutation keeps one, as over HTTP.
    const contextValue: GraphQLContext = isSubscription
      ? {
          get em() {
            return deps.orm.em.fork();
          },
          viewer,
          client,
          requestId: id,
          logger,
        }
      : { em: deps.orm.em.fork(), viewer, client, requestId: id, logger };
    traceOf.set(contextValue, record.trace.context);
    return {
      schema,
      document,
      operationName: payload.operationName ?? null,
      variableValues: payload.variables ?? null,
      contextValue,
    };
  };

  return {
    schema,
    execute: (args) => inTrace(args.contextValue, () => execute(args)),
    subscribe: (args) => inTrace(args.contextValue, () => subscribe(args)),
    // Auth happens once, at connection_init: 4401 without a token, 4403 with a bad one.
    onConnect: async (ctx) => {
      const raw = ctx.connectionParams?.["authorization"] ?? ctx.connectionParams?.["Authorization"];
      if (raw === undefined || raw === null || raw === "") {
        refused(ctx.extra.request, CloseCode.Unauthorized, "no connectionParams.authorization");
        ctx.extra.socket.close(CloseCode.Unauthorized, "Unauthorized: send connectionParams.authorization");
        return false;
      }
      const claims = await deps.auth.authenticate(raw);
      if (!claims) {
        refused(ctx.extra.request, CloseCode.Forbidden, "invalid or expired token, or an ended login");
        return false;
      }
      const socket = ctx.extra.socket;
      const client = clientOf(ctx.extra.request, deps.trustProxy);
      const open = await deps.limits.openSocket(randomUUID(), claims.userId, client.address);
      if (!open) {
        refused(ctx.extra.request, TRY_AGAIN_LATER, "too many open sockets");
        socket.close(TRY_AGAIN_LATER, "Too many connections: try again later");
        return false;
      }
      const renewing = setInterval(() => open.renew(), deps.limits.socketRenewMs).unref();
      socket.once("close", () => {
        clearInterval(renewing);
        open.release();
      });
      ctx.extra.viewer = { kind: "user", userId: claims.userId, loginId: claims.loginId };
      ctx.extra.client = client;
      closeWhenExpired(socket, claims.expiresAt);
      // A socket does not outlive its login: logout, logoutEverywhere or endSession, on any instance.
      const extra = ctx.extra;
      const unwatch = deps.logins.watch(claims.loginId, () => {
        extra.ending = true;
        closeIfEnding(extra);
      });
      socket.once("close", unwatch);
      return true;
    },
    onSubscribe: async (ctx, operationId, payload) => {
      const answer = await admit(ctx, operationId, payload);
      // graphql-ws answers a refusal only while the operation is open: one its client completed
      // meanwhile gets neither onError nor onComplete, so it ends here.
      if (Array.isArray(answer) && !(operationId in ctx.subscriptions)) finishOperation(ctx.extra, operationId);
      return answer;
    },
    // A subscription is answered once it listens: its lifetime is no operation's duration.
    onOperation: (ctx, operationId, _payload, args, result) => {
      const record = ctx.extra.operations?.get(operationId);
      if (!record || !(Symbol.asyncIterator in result)) return;
      record.live = rootField(args.document, args.operationName);
      deps.metrics.subscriptions.inc({ subscription: record.live });
      observe(record);
    },
    onNext: (ctx, operationId, _payload, args, result) => {
      if (!result.errors) return result;
      const scope = scopeOf(args.contextValue, deps.logger);
      const errors = result.errors.map((e) => formatError(e.toJSON(), e, scope));
      const record = ctx.extra.operations?.get(operationId);
      if (record && errors[0]) noteError(record, errors[0]);
      return { ...result, errors };
    },
    onComplete: (ctx, operationId) => finishOperation(ctx.extra, operationId),
    onError: (ctx, operationId, _payload, errors) => {
      const record = ctx.extra.operations?.get(operationId);
      const formatted = errors.map((e) =>
        formatError(e.toJSON(), e, { requestId: record?.requestId ?? "ws", logger: deps.logger }),
      );
      if (record && formatted[0]) noteError(record, formatted[0]);
      finishOperation(ctx.extra, operationId);
      return formatted;
    },
  };

  /** An operation's end, whichever hook sees it first (onError may come before onComplete). */
  function finishOperation(extra: SocketExtra, operationId: string): void {
    const record = extra.operations?.get(operationId);
    extra.operations?.delete(operationId);
    extra.live?.delete(operationId);
    if (record?.live) {
      deps.metrics.subscriptions.dec({ subscription: record.live });
      record.live = undefined;
    }
    if (record) observe(record);
    closeIfEnding(extra);
  }
}

/** The first field a subscription selects: its label in the metrics (from the schema, so few). */
function rootField(document: DocumentNode, operationName: string | null | undefined): string {
  const selection = getOperationAST(document, operationName)?.selectionSet.selections[0];
  return selection?.kind === Kind.FIELD ? selection.name.value : "unknown";
}

/**
 * Closes the socket of an ended login once no query or mutation of it is in flight (its
 * subscriptions do not wait), so that a logout sent over this very socket gets its answer, and its
 * `complete`, first. Called again as each operation completes; the close follows the turn in which
 * graphql-ws sends that `complete`.
 */
function closeIfEnding(extra: SocketExtra): void {
  const inFlight = (extra.operations?.size ?? 0) - (extra.live?.size ?? 0);
  if (extra.ending && inFlight <= 0) setImmediate(() => extra.socket.close(CloseCode.Forbidden, "Login ended"));
}

function scopeOf(contextValue: unknown, logger: Logger): { requestId: string; logger: Logger } {
  const ctx = contextValue as Partial<GraphQLContext> | undefined;
  return { requestId: ctx?.requestId ?? "ws", logger };
}

/** Where a WebSocket comes from: its address behind the trusted proxies, as req.ip over HTTP, and its agent. */
function clientOf(request: IncomingMessage, trust: TrustProxy): ClientInfo {
  return { address: clientAddress(request, trust), userAgent: request.headers["user-agent"] };
}

/** Requests without an Origin header come from servers and native apps, not from a browser page. */
export function originPolicy(allowed: readonly string[]): (origin: string | undefined) => boolean {
  if (allowed.includes("*")) return () => true;
  const set = new Set(allowed);
  return (origin) => origin === undefined || set.has(origin);
}

/** setTimeout's ceiling (about 24.8 days); longer-lived tokens are checked again after that. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A socket authenticated once, at connection_init, must not outlive its token: it is closed with
 * 4403 when the token expires, and the client reconnects with a fresh one.
 */
function closeWhenExpired(socket: Extra["socket"], expiresAt: Date): void {
  const schedule = (): NodeJS.Timeout => {
    const remaining = expiresAt.getTime() - Date.now();
    return setTimeout(
      () => {
        if (expiresAt.getTime() > Date.now()) timer = schedule();
        else socket.close(CloseCode.Forbidden, "Token expired");
      },
      Math.min(Math.max(remaining, 0), MAX_TIMER_MS),
    );
  };
  let timer = schedule();
  socket.once("close", () => clearTimeout(timer));
}
