import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { createHttp, listen, trustProxy } from "../../src/roles/http.js";

describe("health endpoints", () => {
  it("/healthz answers while /readyz reports a failing dependency with 503", async () => {
    let redisUp = true;
    const { server } = createHttp({
      logger: pino({ level: "silent" }),
      trustProxy: trustProxy("loopback"),
      probes: [
        { name: "mongodb", check: () => Promise.resolve() },
        { name: "redis", check: () => (redisUp ? Promise.resolve() : Promise.reject(new Error("ECONNREFUSED"))) },
      ],
    });
    const port = await listen(server, 0);
    try {
      const base = `http://127.0.0.1:${port}`;
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      const ready = await fetch(`${base}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { status: "ready", checks: { mongodb: "ok", redis: "ok" } });
      redisUp = false;
      const down = await fetch(`${base}/readyz`);
      assert.equal(down.status, 503);
      assert.deepEqual(await down.json(), { status: "unavailable", checks: { mongodb: "ok", redis: "failing" } });
      assert.equal((await fetch(`${base}/healthz`)).status, 200, "alive even when not ready");
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
