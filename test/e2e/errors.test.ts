import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { print } from "graphql";
import {
  FirstPageDocument,
  LoginDocument,
  MeDocument,
  RegisterDocument,
  SendNotificationDocument,
  UnreadCountDocument,
} from "../generated/graphql.js";
import { bearer, connectWs, gql, gqlOk, postRaw } from "../helpers/graphql-client.js";
import { baseEnv, startHerald, TEST_SERVICE_KEY, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";

const PASSWORD = "correct horse battery";

/** Every refusal carries its code, echoes no secret, and leaves the process serving. */
describe("bad input gets a clear error and the process lives on", () => {
  let herald: HeraldProcess;
  let token: string;
  let userId: string;

  before(async () => {
    herald = await startHerald({ ...baseEnv(uniqueDatabase("e2e_errors")), ROLES: "api,worker" });
    const { register } = await gqlOk(herald.url, RegisterDocument, {
      input: { email: "Owner@Example.com", password: PASSWORD, displayName: "Owner" },
    });
    token = register.token;
    userId = register.user.id;
  });

  after(async () => {
    // Still answering after everything below, then a clean exit.
    assert.equal((await fetch(`${herald.url}/readyz`)).status, 200);
    assert.equal((await gqlOk(herald.url, MeDocument, {}, bearer(token))).me?.id, userId);
    assert.equal(await herald.stop(), 0, herald.output());
  });

  const codeOf = (r: { errors?: readonly { extensions?: Record<string, unknown> }[] | undefined }) =>
    r.errors?.[0]?.extensions?.["code"];
  const fieldOf = (r: { errors?: readonly { extensions?: Record<string, unknown> }[] | undefined }) =>
    r.errors?.[0]?.extensions?.["field"];

  describe("register and login", () => {
    it("refuses an invalid email, naming the field", async () => {
      const r = await gql(herald.url, RegisterDocument, {
        input: { email: "not-an-email", password: PASSWORD, displayName: "X" },
      });
      assert.equal(codeOf(r), "BAD_USER_INPUT");
      assert.equal(fieldOf(r), "email");
      assert.equal(r.data, null);
    });

    it("refuses a short password without echoing it", async () => {
      const r = await gql(herald.url, RegisterDocument, {
        input: { email: "short@example.com", password: "s3cr3t", displayName: "X" },
      });
      assert.equal(codeOf(r), "BAD_USER_INPUT");
      assert.equal(fieldOf(r), "password");
      assert.doesNotMatch(JSON.stringify(r), /s3cr3t/);
    });

    it("answers CONFLICT for an email already registered, whatever its case", async () => {
      const r = await gql(herald.url, RegisterDocument, {
        input: { email: "owner@EXAMPLE.com", password: PASSWORD, displayName: "Y" },
      });
      assert.equal(codeOf(r), "CONFLICT");
      assert.equal(fieldOf(r), "email");
    });

    it("answers UNAUTHENTICATED for a wrong password or unknown email, alike", async () => {
      const wrong = await gql(herald.url, LoginDocument, {
        input: { email: "owner@example.com", password: "wrong password" },
      });
      const unknown = await gql(herald.url, LoginDocument, {
        input: { email: "nobody@example.com", password: PASSWORD },
      });
      assert.equal(codeOf(wrong), "UNAUTHENTICATED");
      assert.equal(wrong.errors?.[0]?.message, unknown.errors?.[0]?.message);
      const ok = await gqlOk(herald.url, LoginDocument, { input: { email: "OWNER@example.com", password: PASSWORD } });
      assert.equal(ok.login.user.id, userId);
    });
  });

  describe("tokens", () => {
    it("answers 401 UNAUTHENTICATED to a bad bearer token over HTTP", async () => {
      const r = await gql(herald.url, MeDocument, {}, bearer("not.a.token"));
      assert.equal(r.status, 401);
      assert.equal(codeOf(r), "UNAUTHENTICATED");
    });

    it("answers UNAUTHENTICATED to a user query without a token", async () => {
      const r = await gql(herald.url, UnreadCountDocument, {});
      assert.equal(codeOf(r), "UNAUTHENTICATED");
      assert.equal((await gqlOk(herald.url, MeDocument, {})).me, null, "me is null for anonymous callers");
    });

    it("closes a WebSocket without a token with 4401", async () => {
      const ws = connectWs(herald.url, undefined);
      assert.equal(await ws.closed, 4401);
      await ws.dispose();
    });

    it("closes a WebSocket with a bad token with 4403", async () => {
      const ws = connectWs(herald.url, { authorization: "Bearer forged" });
      assert.equal(await ws.closed, 4403);
      await ws.dispose();
    });
  });

  describe("token expiry", () => {
    it("closes a socket with 4403 when its token expires, after accepting it", async () => {
      const shortLived = await startHerald({ ...herald.env, JWT_TTL_SECONDS: "3" });
      try {
        const { register } = await gqlOk(shortLived.url, RegisterDocument, {
          input: { email: "brief@example.com", password: PASSWORD, displayName: "Brief" },
        });
        const ws = connectWs(shortLived.url, { authorization: `Bearer ${register.token}` });
        let acknowledged = false;
        ws.client.on("connected", () => (acknowledged = true));
        assert.equal(await ws.closed, 4403);
        assert.ok(acknowledged, "the socket was accepted before it was closed");
        await ws.dispose();
      } finally {
        assert.equal(await shortLived.stop(), 0);
      }
    });
  });

  describe("malformed requests", () => {
    it("answers GRAPHQL_PARSE_FAILED to malformed GraphQL", async () => {
      const r = await postRaw(herald.url, { query: "{ me { id " });
      assert.equal(r.status, 400);
      assert.equal(codeOf(r), "GRAPHQL_PARSE_FAILED");
    });

    it("answers GRAPHQL_VALIDATION_FAILED to an unknown field", async () => {
      const r = await postRaw(herald.url, { query: "{ me { id shoeSize } }" });
      assert.equal(r.status, 400);
      assert.equal(codeOf(r), "GRAPHQL_VALIDATION_FAILED");
    });

    it("answers 400 to a body that is not JSON", async () => {
      const res = await fetch(`${herald.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{not json",
      });
      assert.equal(res.status, 400);
    });

    it("gives the same codes over WebSocket", async () => {
      const ws = connectWs(herald.url, { authorization: `Bearer ${token}` });
      const parse = await new Promise<unknown>((resolve) =>
        ws.client.subscribe(
          { query: "subscription { notificationAdded { id " },
          { next: () => {}, error: resolve, complete: () => {} },
        ),
      );
      assert.equal((parse as { extensions?: { code?: string } }[])[0]?.extensions?.code, "GRAPHQL_PARSE_FAILED");
      const unknown = await new Promise<unknown>((resolve) =>
        ws.client.subscribe(
          { query: "subscription { notificationAdded { shoeSize } }" },
          { next: () => {}, error: resolve, complete: () => {} },
        ),
      );
      assert.equal((unknown as { extensions?: { code?: string } }[])[0]?.extensions?.code, "GRAPHQL_VALIDATION_FAILED");
      // The connection survives refused operations.
      const live = await new Promise<{ data?: unknown }>((resolve, reject) =>
        ws.client.subscribe(
          { query: print(UnreadCountDocument) },
          { next: resolve, error: reject, complete: () => {} },
        ),
      );
      assert.deepEqual(live.data, { unreadCount: 1 });
      await ws.dispose();
    });
  });

  describe("the browser page", () => {
    it("serves GraphiQL at GET /graphql to browsers, with nothing loaded from elsewhere", async () => {
      const res = await fetch(`${herald.url}/graphql`, { headers: { accept: "text/html,application/xhtml+xml" } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /text\/html/);
      const html = await res.text();
      assert.match(html, /<title>Herald GraphiQL<\/title>/);
      // Offline means no script, style or font fetched from another host.
      assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)=["']?(https?:)?\/\//i);
      assert.doesNotMatch(html, /@import\s+url\(["']?https?:/i);
    });

    it("sends GraphiQL's script and styles apart, compressed and cacheable, and the page revalidated", async () => {
      const res = await fetch(`${herald.url}/graphql`, { headers: { accept: "text/html", "accept-encoding": "gzip" } });
      const html = await res.text();
      assert.ok(html.length < 200_000, `the page is small (${html.length} characters), its code apart`);
      assert.equal(res.headers.get("cache-control"), "no-cache");
      const etag = res.headers.get("etag");
      assert.ok(etag);
      const again = await fetch(`${herald.url}/graphql`, { headers: { accept: "text/html", "if-none-match": etag } });
      assert.equal(again.status, 304, "an unchanged page is not sent again");
      const links = [...html.matchAll(/<(?:script src|link rel="stylesheet" href)="(\/graphiql\/[^"]+)"/g)].map(
        (m) => m[1],
      );
      assert.equal(links.length, 2, "one script and one stylesheet");
      for (const link of links) {
        const asset = await fetch(`${herald.url}${link}`, { headers: { "accept-encoding": "br" } });
        assert.equal(asset.status, 200);
        assert.equal(asset.headers.get("content-encoding"), "br");
        assert.equal(asset.headers.get("cache-control"), "public, max-age=31536000, immutable");
        const body = await asset.text();
        assert.ok(body.length > 100_000, `${link} is GraphiQL's code (${body.length} characters)`);
        assert.doesNotMatch(body, /@import\s+url\(["']?https?:/i);
        const gzipped = await fetch(`${herald.url}${link}`, { headers: { "accept-encoding": "gzip" } });
        assert.equal(gzipped.headers.get("content-encoding"), "gzip");
        assert.equal(await gzipped.text(), body);
        assert.notEqual(gzipped.headers.get("etag"), asset.headers.get("etag"), "each encoding has its own tag");
        const cached = await fetch(`${herald.url}${link}`, {
          headers: { "accept-encoding": "gzip", "if-none-match": `W/${asset.headers.get("etag") ?? ""}` },
        });
        assert.equal(cached.status, 304, "a client holding the content in another encoding has it");
      }
      assert.equal((await fetch(`${herald.url}/graphiql/graphiql.nothing.js`)).status, 404);
    });

    it("answers introspection, which GraphiQL and client codegen rely on", async () => {
      const r = await postRaw<{ __schema: { subscriptionType: { name: string } } }>(herald.url, {
        query: "{ __schema { subscriptionType { name } } }",
      });
      assert.equal(r.status, 200);
      assert.equal(r.data?.__schema.subscriptionType.name, "Subscription");
    });

    it("still answers GET queries from API clients", async () => {
      const res = await fetch(`${herald.url}/graphql?query=${encodeURIComponent("{ __typename }")}`, {
        headers: { accept: "application/json" },
      });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { data: { __typename: "Query" } });
    });
  });

  describe("pagination arguments", () => {
    it("refuses first over 100 with BAD_USER_INPUT on first", async () => {
      const r = await gql(herald.url, FirstPageDocument, { first: 101 }, bearer(token));
      assert.equal(codeOf(r), "BAD_USER_INPUT");
      assert.equal(fieldOf(r), "first");
    });

    it("refuses a cursor Herald did not issue", async () => {
      const r = await gql(herald.url, FirstPageDocument, { first: 5, after: "garbage" }, bearer(token));
      assert.equal(codeOf(r), "BAD_USER_INPUT");
      assert.equal(fieldOf(r), "after");
    });
  });

  describe("sendNotification", () => {
    const input = () => ({ recipientIds: [userId], title: "t", body: "b", idempotencyKey: `k-${Math.random()}` });

    it("refuses a user token with FORBIDDEN", async () => {
      const r = await gql(herald.url, SendNotificationDocument, { input: input() }, bearer(token));
      assert.equal(codeOf(r), "FORBIDDEN");
    });

    it("refuses a caller without a key with UNAUTHENTICATED", async () => {
      const r = await gql(herald.url, SendNotificationDocument, { input: input() });
      assert.equal(codeOf(r), "UNAUTHENTICATED");
    });

    it("refuses a wrong key with 401 UNAUTHENTICATED", async () => {
      const r = await gql(
        herald.url,
        SendNotificationDocument,
        { input: input() },
        { "x-api-key": "wrong-key-0123456789" },
      );
      assert.equal(r.status, 401);
      assert.equal(codeOf(r), "UNAUTHENTICATED");
    });

    it("refuses unknown and malformed recipient ids on recipientIds", async () => {
      const key = { "x-api-key": TEST_SERVICE_KEY };
      const unknown = await gql(
        herald.url,
        SendNotificationDocument,
        { input: { ...input(), recipientIds: ["6b04dd3b8252ce855395bab6"] } },
        key,
      );
      assert.equal(codeOf(unknown), "BAD_USER_INPUT");
      assert.equal(fieldOf(unknown), "recipientIds");
      const malformed = await gql(
        herald.url,
        SendNotificationDocument,
        { input: { ...input(), recipientIds: ["42"] } },
        key,
      );
      assert.equal(codeOf(malformed), "BAD_USER_INPUT");
      assert.equal(fieldOf(malformed), "recipientIds");
      const empty = await gql(herald.url, SendNotificationDocument, { input: { ...input(), title: "" } }, key);
      assert.equal(fieldOf(empty), "title");
    });
  });
});
