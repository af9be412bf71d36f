import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { Redis } from "ioredis";
import { freePort, startRedis } from "../../dev/local-stack.js";

// Resolves with the connection error code, or 'connected'.
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

test("startRedis serves PING on the requested port and frees it on stop", async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), "herald-local-stack-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const port = await freePort();

  const server = await startRedis({ dataDir, port, persist: false });
  let stopped = false;
  t.after(async () => {
    if (!stopped) await server.stop();
  });
  assert.equal(server.url, `redis://127.0.0.1:${port}`);

  const client = new Redis(server.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
  });
  try {
    await client.connect();
    assert.equal(await client.ping(), "PONG");
  } finally {
    client.disconnect();
  }

  await server.stop();
  stopped = true;
  assert.equal(await tryConnect(port), "ECONNREFUSED");
  await server.stop(); // a second stop is harmless
});
