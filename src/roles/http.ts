import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import proxyAddr from "proxy-addr";
import express, { type ErrorRequestHandler, type Express, type Request, type Response } from "express";
import type { Logger } from "../infra/logger.js";
import type { Metrics } from "../infra/metrics.js";
import { secretMatcher } from "../common/secrets.js";
import { withinTime } from "../common/time.js";

export interface Probe {
  name: string;
  check(): Promise<void>;
}

const PROBE_TIMEOUT_MS = 2000;

/**
 * The HTTP server every process runs, worker included: `/healthz` says the process is alive,
 * `/readyz` that its dependencies answer. The api role mounts GraphQL on the same app.
 */
export function createHttp(options: {
  probes: Probe[];
  logger: Logger;
  trustProxy: TrustProxy;
  metrics: Metrics;
  /** When set, /metrics answers only `Authorization: Bearer <metricsToken>`. */
  metricsToken: string | undefined;
}): {
  app: Express;
  server: Server;
} {
  const app = express();
  app.disable("x-powered-by");
  // req.ip is then the client's address as the trusted proxies report it, never one a client wrote.
  app.set("trust proxy", options.trustProxy);
  app.use((req, res, next) => {
    res.setHeader("x-request-id", requestId(req));
    next();
  });
  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", async (_req, res) => {
    const results = await Promise.all(options.probes.map((p) => runProbe(p)));
    const ready = results.every((r) => r.ok);
    if (!ready) options.logger.warn({ results }, "not ready");
    res.status(ready ? 200 : 503).json({
      status: ready ? "ready" : "unavailable",
      checks: Object.fromEntries(results.map((r) => [r.name, r.ok ? "ok" : "failing"])),
    });
  });
  const token = options.metricsToken;
  const isToken = token === undefined ? undefined : secretMatcher([{ name: true, secret: `Bearer ${token}` }]);
  app.get("/metrics", async (req, res) => {
    const given = req.headers.authorization;
    if (isToken && (given === undefined || !isToken(given))) {
      refuse(options.logger, req, res, 401, "UNAUTHENTICATED", "Send Authorization: Bearer <METRICS_TOKEN>");
      return;
    }
    const { contentType, body } = await options.metrics.render();
    res.type(contentType).send(body);
  });
  return { app, server: createServer(app) };
}

/**
 * The last handlers of the app, installed once every route is: whatever layer fails (the JSON body
 * parser, a route, Express itself), the client gets JSON with a code, never Express's HTML page
 * with a stack trace, in every environment.
 */
export function answerErrorsWithJson(app: Express, logger: Logger): void {
  app.use((req, res) => {
    refuse(logger, req, res, 404, "NOT_FOUND", `Nothing here: ${req.method} ${req.path}`);
  });
  const handler: ErrorRequestHandler = (err: unknown, req, res, next) => {
    if (res.headersSent) return next(err);
    const known = bodyError(err);
    if (known) return refuse(logger, req, res, known.status, "BAD_REQUEST", known.message);
    logger.error({ err, requestId: requestId(req), path: req.path }, "unexpected error outside GraphQL");
    sendError(req, res, 500, "INTERNAL_SERVER_ERROR", "Internal server error");
  };
  app.use(handler);
}

/** Answers a refused request in the shape of a GraphQL error, so clients read it the same way. */
export function sendError(req: Request, res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ errors: [{ message, extensions: { code, requestId: requestId(req) } }] });
}

/** sendError, with the one log line every refused request leaves. */
export function refuse(
  logger: Logger,
  req: Request,
  res: Response,
  status: number,
  code: string,
  message: string,
): void {
  logger.info(
    { requestId: requestId(req), method: req.method, path: req.path, address: req.ip, status, code, reason: message },
    "request refused",
  );
  sendError(req, res, status, code, message);
}

/** The body parser's refusals (it reads at most the limit), each with a message of our own. */
function bodyError(err: unknown): { status: number; message: string } | undefined {
  const type = (err as { type?: unknown } | null)?.type;
  switch (type) {
    case "entity.too.large":
      return { status: 413, message: `The body is larger than ${BODY_LIMIT}` };
    case "entity.parse.failed":
      return { status: 400, message: "The body is not a JSON object" };
    case "encoding.unsupported":
      return { status: 415, message: "Unsupported content-encoding: send gzip, deflate, br or none" };
    case "charset.unsupported":
      return { status: 415, message: "Unsupported charset: send UTF-8 JSON" };
    case "request.aborted":
    case "request.size.invalid":
      return { status: 400, message: "The body ended before its declared length" };
    default: {
      // Inflating a body that is not what content-encoding says fails with zlib's own error.
      const status = (err as { status?: unknown } | null)?.status;
      return typeof status === "number" && status >= 400 && status < 500
        ? { status, message: "The request could not be read" }
        : undefined;
    }
  }
}

/** The largest request body read, written as the body parser takes it. */
export const BODY_LIMIT = "1mb";

/** Which hops may name the client's address: proxy-addr's test, for HTTP and WebSocket alike. */
export type TrustProxy = (address: string, hop: number) => boolean;

/** TRUST_PROXY as Express reads "trust proxy": a hop count, or addresses, names and subnets. */
export function trustProxy(value: string | number): TrustProxy {
  if (typeof value === "number") return (_address, hop) => hop < value;
  return proxyAddr.compile(value.split(",").map((item) => item.trim()));
}

/** The client's address behind the trusted proxies (req.ip for a request Express did not see). */
export function clientAddress(req: IncomingMessage, trust: TrustProxy): string {
  return proxyAddr(req, trust);
}

/** A client-supplied id is kept when it looks like one, so logs line up across services. */
export function requestId(req: Request): string {
  const cached = (req as Request & { heraldRequestId?: string }).heraldRequestId;
  if (cached) return cached;
  const header = req.headers["x-request-id"];
  const id = typeof header === "string" && /^[\w.:-]{1,128}$/.test(header) ? header : randomUUID();
  (req as Request & { heraldRequestId?: string }).heraldRequestId = id;
  return id;
}

export async function runProbe(probe: Probe): Promise<{ name: string; ok: boolean; error?: string }> {
  try {
    await withinTime(probe.check(), PROBE_TIMEOUT_MS);
    return { name: probe.name, ok: true };
  } catch (err) {
    return { name: probe.name, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Connections the kernel may hold for us before we accept them. */
const LISTEN_BACKLOG = 4096;

export function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    // Node's default backlog (511) drops connections when thousands of clients reconnect at once
    // (after a deploy, or a network back); the kernel caps it (somaxconn) anyway.
    server.listen({ port, backlog: LISTEN_BACKLOG }, () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}
