import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { baseEnv, startHerald, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";

/** Browser apps on other origins: CORS over HTTP, and the same rule for WebSocket upgrades. */
describe("cross-origin browser clients", () => {
  let open: HeraldProcess;
  let restricted: HeraldProcess;

  before(async () => {
    const env = baseEnv(uniqueDatabase("e2e_cors"));
    [open, restricted] = await Promise.all([
      startHerald({ ...env, ROLES: "api" }),
      startHerald({ ...env, ROLES: "api", CORS_ORIGINS: "https://app.example.com" }),
    ]);
  });

  after(async () => {
    assert.deepEqual(await Promise.all([open.stop(), restricted.stop()]), [0, 0]);
  });

  const preflight = (url: string, origin: string) =>
    fetch(`${url}/graphql`, {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization",
      },
    });

  /** Resolves with the HTTP status of the upgrade: 101 when accepted. */
  const upgradeStatus = (url: string, origin: string) =>
    new Promise<number>((resolve) => {
      const ws = new WebSocket(`${url.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws", { origin });
      ws.once("upgrade", (res) => {
        resolve(res.statusCode ?? 0);
        ws.close();
      });
      ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.once("error", () => undefined);
    });

  it("allows any origin by default, exposing the request id", async () => {
    const res = await preflight(open.url, "https://anywhere.example");
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "https://anywhere.example");
    assert.match(res.headers.get("access-control-allow-headers") ?? "", /authorization/i);
    const post = await fetch(`${open.url}/graphql`, {
      method: "POST",
      headers: { origin: "https://anywhere.example", "content-type": "application/json" },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    assert.match(post.headers.get("access-control-expose-headers") ?? "", /x-request-id/);
    assert.equal(await upgradeStatus(open.url, "https://anywhere.example"), 101);
  });

  it("with CORS_ORIGINS set, answers only those origins, over HTTP and WebSocket", async () => {
    const allowed = await preflight(restricted.url, "https://app.example.com");
    assert.equal(allowed.headers.get("access-control-allow-origin"), "https://app.example.com");
    const refused = await preflight(restricted.url, "https://evil.example");
    assert.equal(refused.headers.get("access-control-allow-origin"), null);
    assert.equal(await upgradeStatus(restricted.url, "https://app.example.com"), 101);
    assert.notEqual(await upgradeStatus(restricted.url, "https://evil.example"), 101);
  });
});
