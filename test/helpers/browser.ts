import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer, connect, type Server, type Socket } from "node:net";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { projectRoot } from "../../dev/local-stack.js";

/**
 * Debian's Chromium (`apt-get install chromium`, which `npm test` does), or CHROMIUM_PATH. The
 * real binary, not /usr/bin/chromium: that is a shell launcher that adds flags of its own.
 */
export function chromiumPath(): string {
  const given = process.env["CHROMIUM_PATH"];
  if (given) return given;
  for (const candidate of ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error("no Chromium found: apt-get install chromium, or set CHROMIUM_PATH");
}

export function launchChromium(): Promise<Browser> {
  // Tests run as root on CI machines, where Chromium's sandbox cannot start.
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: ["--no-sandbox"] });
}

/** Until the example app's connection state reads "Live" (its only `role="status"` element). */
export function untilLive(page: Page, timeoutMs: number): Promise<void> {
  return page
    .getByRole("status")
    .filter({ hasText: /^Live$/ })
    .waitFor({ timeout: timeoutMs });
}

/** Where tests leave what a person may want to look at (screenshots): test-output/ in the project. */
export async function testOutput(name: string): Promise<string> {
  const dir = path.join(projectRoot(), "test-output");
  await mkdir(dir, { recursive: true });
  return path.join(dir, name);
}

/**
 * A TCP relay in front of a server, as a network between a browser and Herald: `cut()` drops every
 * connection through it and refuses new ones, as a train entering a tunnel does; `restore()` opens
 * it again on the same port. (Chromium's offline emulation leaves open WebSockets alone.)
 */
export class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, "127.0.0.1");
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.once("close", () => this.sockets.delete(socket));
        socket.on("error", () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.once("close", () => upstream.destroy());
      upstream.once("close", () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (address && typeof address === "object") this.port = address.port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  restore(): Promise<void> {
    return this.open();
  }
}
