import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import express, { type Express, type Request } from "express";
import type { Logger } from "../infra/logger.js";

export interface Probe {
  name: string;
  check(): Promise<void>;
}

const PROBE_TIMEOUT_MS = 2000;

/**
 * The HTTP server every process runs, worker included: `/healthz` says the process is alive,
 * `/readyz` that its dependencies answer. The api role mounts GraphQL on the same app.
 */
export function createHttp(options: { probes: Probe[]; logger: Logger }): { app: Express; server: Server } {
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", true);
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
  return { app, server: createServer(app) };
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

async function runProbe(probe: Probe): Promise<{ name: string; ok: boolean; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe.check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
      }),
    ]);
    return { name: probe.name, ok: true };
  } catch (err) {
    return { name: probe.name, ok: false, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
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
