import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { brotliCompress, constants as zlib, gzip } from "node:zlib";
import type { Express, Request, Response } from "express";

/**
 * A file served from memory: compressed once (brotli and gzip, on the first request that accepts
 * each), with an ETag so that a browser asks again only to hear "not modified". A fingerprinted
 * asset (its name holds a hash of its content) is also `immutable`: never asked for again.
 */
export class Asset {
  /** Of the content; each encoding's ETag adds its name (a representation has its own tag). */
  readonly hash: string;
  private readonly encoded = new Map<Encoding, Promise<Buffer>>();

  constructor(
    readonly body: Buffer,
    readonly type: string,
    readonly fingerprinted: boolean,
  ) {
    this.hash = contentHash(body);
  }

  static of(text: string, type: string, fingerprinted: boolean): Asset {
    return new Asset(Buffer.from(text), type, fingerprinted);
  }

  send(req: Request, res: Response): void {
    const encoding = COMPRESSIBLE.test(this.type) && this.body.length > 1024 ? acceptedEncoding(req) : undefined;
    res.setHeader("content-type", this.type);
    res.setHeader("etag", `"${this.hash}${encoding ? `.${encoding}` : ""}"`);
    res.setHeader("vary", "accept-encoding");
    res.setHeader("cache-control", this.fingerprinted ? "public, max-age=31536000, immutable" : "no-cache");
    if (this.matches(req.headers["if-none-match"])) {
      res.status(304).end();
      return;
    }
    if (!encoding) {
      res.send(this.body);
      return;
    }
    this.compressed(encoding).then(
      (body) => {
        res.setHeader("content-encoding", encoding);
        res.send(body);
      },
      () => res.send(this.body),
    );
  }

  /** Whether the client holds this content already, in whichever encoding (weak tags count: it is a GET). */
  private matches(header: string | undefined): boolean {
    if (!header) return false;
    return header.split(",").some((tag) => {
      const value = tag.trim().replace(/^W\//, "");
      return value === "*" || value.replace(/^"|"$/g, "").replace(/\.(br|gzip)$/, "") === this.hash;
    });
  }

  private compressed(encoding: Encoding): Promise<Buffer> {
    let body = this.encoded.get(encoding);
    if (!body) {
      // Off the event loop (zlib's thread pool); quality 9 and level 9 cost a second for GraphiQL's
      // 8 MB script once, and save the browser a third of the bytes over the defaults' gzip.
      body =
        encoding === "br"
          ? brotli(this.body, {
              params: { [zlib.BROTLI_PARAM_QUALITY]: 9, [zlib.BROTLI_PARAM_SIZE_HINT]: this.body.length },
            })
          : gzipped(this.body, { level: 9 });
      this.encoded.set(encoding, body);
    }
    return body;
  }
}

type Encoding = "br" | "gzip";

const brotli = promisify(brotliCompress);
const gzipped = promisify(gzip);
const COMPRESSIBLE = /^(text\/|application\/(javascript|json|manifest\+json)|image\/svg\+xml)/;

function acceptedEncoding(req: Request): Encoding | undefined {
  const accepted = req.acceptsEncodings("br", "gzip", "identity");
  return accepted === "br" || accepted === "gzip" ? accepted : undefined;
}

export function contentHash(body: Buffer | string): string {
  return createHash("sha256").update(body).digest("base64url").slice(0, 16);
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "application/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".webmanifest": "application/manifest+json",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
};

/**
 * Serves a built single-page app (Vite's output) under `base`: its files from memory, those under
 * `assets/` (fingerprinted by Vite) as immutable, and index.html for every other path, so that a
 * reload on any of the app's addresses opens the app. Answers false when `dir` holds no build.
 */
export function serveBuiltApp(app: Express, base: string, dir: string): boolean {
  const index = path.join(dir, "index.html");
  if (!existsSync(index)) return false;
  const files = new Map<string, Asset>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const relative = path.relative(dir, file).split(path.sep).join("/");
    const type = TYPES[path.extname(file)] ?? "application/octet-stream";
    files.set(relative, new Asset(readFileSync(file), type, relative.startsWith("assets/")));
  }
  const page = files.get("index.html") as Asset;
  // Express matches /app/ here too (routing is not strict): only the bare path is sent on.
  app.get(base, (req, res, next) => (req.path === base ? res.redirect(301, `${base}/`) : next()));
  app.get(`${base}/{*path}`, (req, res) => {
    const relative = req.path.slice(base.length + 1);
    const file = files.get(relative);
    if (file) return file.send(req, res);
    // A missing asset is a 404 (a stale page asking for an old bundle), not the page itself.
    if (relative.startsWith("assets/") || path.extname(relative) !== "") {
      res.status(404).type("text/plain").send("Not found");
      return;
    }
    page.send(req, res);
  });
  return true;
}

/** Where the example web app's build is, beside this file's build: examples/web/dist. */
export const EXAMPLE_APP_DIR = fileURLToPath(new URL("../../../examples/web/dist", import.meta.url));

/**
 * The example web app (examples/web) at /app, when it is built (`npm start` builds it); else a page
 * that says how to build it.
 */
export function serveExampleApp(app: Express, dir = EXAMPLE_APP_DIR): boolean {
  if (serveBuiltApp(app, "/app", dir)) return true;
  const page = Asset.of(NOT_BUILT, "text/html; charset=utf-8", false);
  app.get(["/app", "/app/{*path}"], (req, res) => {
    res.status(404);
    page.send(req, res);
  });
  return false;
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8" /><title>Herald: the example app is not built</title></head>
<body><h1>The example app is not built</h1>
<p>Run <code>npm start</code> from a checkout of Herald: it builds <code>examples/web</code> and serves it here.
The API and GraphiQL are at <a href="/graphql">/graphql</a>.</p></body></html>
`;
