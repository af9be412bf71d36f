import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { Metrics } from "../../src/infra/metrics.js";
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
      metrics: new Metrics({ role: "api" }),
      metricsToken: undefined,
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

  it("/metrics answers only the bearer of METRICS_TOKEN when it is set, in Prometheus's format", async () => {
    const metrics = new Metrics({ role: "worker" });
    metrics.jobs.inc({ job: "post.fanout", outcome: "done" });
    const { server } = createHttp({
      logger: pino({ level: "silent" }),
      trustProxy: trustProxy("loopback"),
      probes: [],
      metrics,
      metricsToken: "metrics-token-0123456789",
    });
    const port = await listen(server, 0);
    try {
      const url = `http://127.0.0.1:${port}/metrics`;
      const refused = await fetch(url);
      assert.equal(refused.status, 401);
      const body = (await refused.json()) as { errors: { extensions: { code: string } }[] };
      assert.equal(body.errors[0]?.extensions.code, "UNAUTHENTICATED");
      const wrong = await fetch(url, { headers: { authorization: "Bearer metrics-token-012345678" } });
      assert.equal(wrong.status, 401, "a prefix of the token is not the token");
      const ok = await fetch(url, { headers: { authorization: "Bearer metrics-token-0123456789" } });
      assert.equal(ok.status, 200);
      assert.match(ok.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      assert.match(await ok.text(), /^herald_jobs_total\{job="post\.fanout",outcome="done",role="worker"\} 1$/m);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
