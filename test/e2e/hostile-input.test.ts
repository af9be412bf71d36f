import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { RegisterDocument } from "../generated/graphql.js";
import { bearer, connectWs, gqlOk } from "../helpers/graphql-client.js";
import { baseEnv, startHerald, TEST_JWT_SECRET, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";

/** What a client must never see in an answer: an HTML page, a stack, a path, driver text. */
const LEAKS = /<html|<!DOCTYPE|\s+at \S+ \(|node_modules|\/src\/|\/dist\/|MongoServerError|BSON|URIError|TypeError/i;

interface Answer {
  status: number;
  contentType: string;
  text: string;
  code: unknown;
  message: unknown;
}

/**
 * Every one of these was answered with Express's HTML error page, an internal error, a 500 or the
 * wrong close code before; each now has its own code, and the process serves on.
 */
describe("hostile input gets a coded answer, never a page, a stack or a crash", () => {
  let herald: HeraldProcess;
  let token: string;

  before(async () => {
    herald = await startHerald({ ...baseEnv(uniqueDatabase("e2e_hostile")), ROLES: "api,worker" });
    const { register } = await gqlOk(herald.url, RegisterDocument, {
      input: { email: "hostile@example.com", password: "correct horse battery", displayName: "Target" },
    });
    token = register.token;
  });

  after(async () => {
    assert.equal((await fetch(`${herald.url}/readyz`)).status, 200);
    assert.equal(await herald.stop(), 0, herald.output());
  });

  async function send(body: string, headers: Record<string, string>, path = "/graphql"): Promise<Answer> {
    const res = await fetch(`${herald.url}${path}`, { method: "POST", headers, body });
    const text = await res.text();
    let parsed: { errors?: { message?: unknown; extensions?: { code?: unknown } }[] } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      // Left empty: the assertions below say what was expected.
    }
    const first = parsed.errors?.[0];
    return {
      status: res.status,
      contentType: res.headers.get("content-type") ?? "",
      text,
      code: first?.extensions?.code,
      message: first?.message,
    };
  }

  const json = { "content-type": "application/json" };
  const plainQuery = JSON.stringify({ query: "{ me { id } }" });

  function assertRefused(answer: Answer, status: number, code: string): void {
    assert.equal(answer.status, status, answer.text);
    assert.match(answer.contentType, /application\/json/, answer.text);
    assert.equal(answer.code, code, answer.text);
    assert.doesNotMatch(answer.text, LEAKS);
  }

  describe("HTTP bodies", () => {
    const cases: [string, string, Record<string, string>, number][] = [
      ["that is not JSON", "{not json", json, 400],
      ["cut short", '{"query":"{ me { id', json, 400],
      ["of null", "null", json, 400],
      ["of a bare string", '"{ me { id } }"', json, 400],
      ["of NUL bytes", "\u0000\u0000\u0000", json, 400],
      ["declared UTF-16", plainQuery, { "content-type": "application/json; charset=utf-16" }, 400],
      ["declared gzip but plain", plainQuery, { ...json, "content-encoding": "gzip" }, 400],
      ["declared in an encoding nobody knows", plainQuery, { ...json, "content-encoding": "x-unknown" }, 415],
      ["sent as text/plain", plainQuery, { "content-type": "text/plain" }, 415],
      ["that is empty", "", json, 400],
    ];
    for (const [what, body, headers, status] of cases) {
      it(`answers a body ${what} with ${status} and a code`, async () => {
        assertRefused(await send(body, headers), status, "BAD_REQUEST");
      });
    }

    it("refuses a body over 1 MB with 413 and a code", async () => {
      const huge = JSON.stringify({ query: "{ me { id } }", variables: { pad: "x".repeat(2 * 1024 * 1024) } });
      assertRefused(await send(huge, json), 413, "BAD_REQUEST");
    });

    it("answers a path that serves nothing with 404 NOT_FOUND as JSON", async () => {
      const res = await fetch(`${herald.url}/nothing-here`);
      const text = await res.text();
      assert.equal(res.status, 404);
      assert.match(res.headers.get("content-type") ?? "", /application\/json/);
      assert.equal(
        (JSON.parse(text) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code,
        "NOT_FOUND",
      );
    });
  });

  describe("documents", () => {
    it("refuses one field selected 1,000 times before validating it, over both transports", async () => {
      const query = `{ me { ${"id ".repeat(1000)} } }`;
      assertRefused(await send(JSON.stringify({ query }), json), 400, "GRAPHQL_VALIDATION_FAILED");
      const errors = await wsErrors(query);
      assert.equal(errors[0]?.extensions?.["code"], "GRAPHQL_VALIDATION_FAILED");
    });

    it("stops parsing a document of more tokens than the bound", async () => {
      const query = `{ me { ${Array.from({ length: 3000 }, (_, i) => `a${i}: id`).join(" ")} } }`;
      const answer = await send(JSON.stringify({ query }), json);
      assertRefused(answer, 400, "GRAPHQL_PARSE_FAILED");
      assert.match(String(answer.message), /token/i);
    });

    it("refuses a subscription sent over HTTP, pointing at the WebSocket", async () => {
      const answer = await send(JSON.stringify({ query: "subscription { unreadCountChanged }" }), {
        ...json,
        ...bearer(token),
      });
      assertRefused(answer, 400, "BAD_REQUEST");
      assert.match(String(answer.message), /WebSocket/);
    });
  });

  describe("variables", () => {
    // Every item is an error of its own: past 50, graphql-js gives up with an error of another kind.
    const manyQuery = "mutation Many($input: SendNotificationInput!) { sendNotification(input: $input) { id } }";
    const manyVariables = {
      input: { recipientIds: Array.from({ length: 60 }, () => ({})), title: "t", body: "b", idempotencyKey: "k" },
    };

    it("answers too many bad variables with BAD_USER_INPUT, over both transports", async () => {
      assertRefused(
        await send(JSON.stringify({ query: manyQuery, variables: manyVariables }), json),
        400,
        "BAD_USER_INPUT",
      );
      const errors = await wsErrors(manyQuery, manyVariables);
      assert.ok(errors.length > 0);
      for (const e of errors) assert.equal(e.extensions?.["code"], "BAD_USER_INPUT", JSON.stringify(e));
    });

    it("answers a variable of the wrong type over WebSocket with BAD_USER_INPUT, as HTTP does", async () => {
      const errors = await wsErrors("query Page($first: Int) { notifications(first: $first) { edges { cursor } } }", {
        first: "ten",
      });
      assert.equal(errors[0]?.extensions?.["code"], "BAD_USER_INPUT", JSON.stringify(errors));
    });

    const register = "mutation Register($input: RegisterInput!) { register(input: $input) { token } }";
    const loneSurrogate = { email: "a\uD800b@example.com", password: "correct horse battery", displayName: "X" };

    it("refuses text with a lone surrogate, as a variable and inline, over both transports", async () => {
      const viaVariable = await send(JSON.stringify({ query: register, variables: { input: loneSurrogate } }), json);
      assertRefused(viaVariable, 400, "BAD_USER_INPUT");
      // graphql-js's lexer refuses the escape itself.
      const inline = `mutation { register(input: { email: "a\\uD800b@example.com", password: "correct horse battery", displayName: "X" }) { token } }`;
      assertRefused(await send(JSON.stringify({ query: inline }), json), 400, "GRAPHQL_PARSE_FAILED");
      const errors = await wsErrors(register, { input: loneSurrogate });
      assert.equal(errors[0]?.extensions?.["code"], "BAD_USER_INPUT", JSON.stringify(errors));
    });
  });

  describe("tokens", () => {
    it("refuses a correctly signed token whose subject is not a user id, over both transports", async () => {
      const forged = await new SignJWT({})
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("not-a-user-id")
        .setIssuer("herald")
        .setIssuedAt()
        .setExpirationTime("1h")
        .sign(new TextEncoder().encode(TEST_JWT_SECRET));
      assertRefused(await send(plainQuery, { ...json, ...bearer(forged) }), 401, "UNAUTHENTICATED");
      const ws = connectWs(herald.url, { authorization: `Bearer ${forged}` });
      assert.equal(await ws.closed, 4403);
      await ws.dispose();
    });
  });

  describe("WebSocket frames", () => {
    // A server that let these through would leave the socket open: fail then, rather than hang.
    it("closes with 4400 a socket whose client sends a server's message", { timeout: 10_000 }, async () => {
      const socket = await acknowledgedSocket();
      socket.send(JSON.stringify({ id: "1", type: "next", payload: { data: {} } }));
      assert.equal(await closeCode(socket), 4400);
    });

    it("closes with 1009 a socket whose client sends a message over 64 KiB, unread", { timeout: 10_000 }, async () => {
      const socket = await acknowledgedSocket();
      socket.send(
        JSON.stringify({ id: "1", type: "subscribe", payload: { query: `{ me { id } } #${"x".repeat(70_000)}` } }),
      );
      assert.equal(await closeCode(socket), 1009);
    });
  });

  /** The errors a graphql-ws subscribe gets back for `query`. */
  async function wsErrors(
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<{ message: string; extensions?: Record<string, unknown> }[]> {
    const ws = connectWs(herald.url, bearer(token));
    try {
      return await new Promise((resolve, reject) => {
        ws.client.subscribe(
          { query, ...(variables ? { variables } : {}) },
          {
            next: (result) => {
              if (result.errors) resolve(result.errors as never);
            },
            error: (err) => {
              if (Array.isArray(err)) resolve(err as never);
              else reject(err instanceof Error ? err : new Error(JSON.stringify(err)));
            },
            complete: () => resolve([]),
          },
        );
      });
    } finally {
      await ws.dispose();
    }
  }

  function acknowledgedSocket(): Promise<WebSocket> {
    const socket = new WebSocket(`${herald.url.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
    return new Promise((resolve, reject) => {
      socket.once("error", reject);
      socket.once("open", () => socket.send(JSON.stringify({ type: "connection_init", payload: bearer(token) })));
      socket.on("message", (data: Buffer) => {
        if ((JSON.parse(data.toString()) as { type: string }).type === "connection_ack") resolve(socket);
      });
    });
  }

  function closeCode(socket: WebSocket): Promise<number> {
    return new Promise((resolve) => socket.once("close", (code: number) => resolve(code)));
  }
});
