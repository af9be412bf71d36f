import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import {
  LoginDocument,
  MarkAllNotificationsReadDocument,
  MeDocument,
  RefreshDocument,
  RegisterDocument,
  SendNotificationDocument,
  UnreadCountChangedDocument,
} from "../generated/graphql.js";
import {
  bearer,
  eventually,
  gql,
  gqlOk,
  queryText,
  Subscription,
  wsRequest,
  type WsConnection,
} from "../helpers/graphql-client.js";
import { baseEnv, startHerald, TEST_SERVICE_KEY, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";

const PASSWORD = "correct horse battery";

/** Low limits, so that each test reaches its own; every test comes from addresses of its own. */
const LIMITS = {
  LIMIT_LOGIN_FAILURES: "3",
  LIMIT_LOGINS_PER_ADDRESS: "50",
  LIMIT_SIGNUPS_PER_ADDRESS: "3",
  LIMIT_REFRESHES_PER_LOGIN: "3",
  LIMIT_RECIPIENTS_PER_KEY: "5",
  LIMIT_MUTATIONS_PER_USER: "5",
  LIMIT_SOCKETS_PER_USER: "2",
  LIMIT_SOCKETS_PER_ADDRESS: "3",
  LIMIT_SOCKET_ATTEMPTS_PER_ADDRESS: "5",
  LIMIT_SUBSCRIPTIONS_PER_SOCKET: "2",
  LIMIT_OPERATIONS_PER_SOCKET: "5",
  LIMIT_MESSAGES_PER_SOCKET: "10",
};

let addresses = 0;
/** An address of its own (TEST-NET-3), which the loopback proxy (the test) reports in X-Forwarded-For. */
const newAddress = () => `203.0.113.${(addresses += 1)}`;
const from = (address: string) => ({ "x-forwarded-for": address });

interface Refusal {
  code: unknown;
  retryAfterSeconds: unknown;
}
const refusalOf = (r: {
  errors?: readonly { extensions?: Record<string, unknown> }[] | undefined | null;
}): Refusal => ({
  code: r.errors?.[0]?.extensions?.["code"],
  retryAfterSeconds: r.errors?.[0]?.extensions?.["retryAfterSeconds"],
});

describe("limits hold, and say when to come back", () => {
  let herald: HeraldProcess;
  let signups = 0;

  before(async () => {
    herald = await startHerald({ ...baseEnv(uniqueDatabase("e2e_limits")), ROLES: "api,worker", ...LIMITS });
  });

  after(async () => {
    assert.equal(await herald.stop(), 0, herald.output());
  });

  /** A user signed up from an address of its own (the sign-up limit is per address). */
  async function newUser(name: string) {
    signups += 1;
    const email = `${name}.${signups}@example.com`;
    const { register } = await gqlOk(
      herald.url,
      RegisterDocument,
      { input: { email, password: PASSWORD, displayName: name } },
      from(newAddress()),
    );
    return { email, ...register };
  }

  /** A graphql-ws client whose socket comes from `address`, as a proxy would report it. */
  function socketFrom(address: string, token: string): WsConnection {
    let onClosed: (code: number) => void = () => {};
    const closed = new Promise<number>((resolve) => (onClosed = resolve));
    class FromAddress extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { headers: from(address) });
      }
    }
    const client = createClient({
      url: `${herald.url.replace(/^http/, "ws")}/graphql`,
      webSocketImpl: FromAddress,
      connectionParams: bearer(token),
      lazy: false,
      retryAttempts: 0,
      onNonLazyError: () => {},
      on: { closed: (event) => onClosed((event as { code: number }).code) },
    });
    return { client, closed, dispose: () => client.dispose() as Promise<void> };
  }

  async function openSocket(address: string, token: string): Promise<WsConnection> {
    const ws = socketFrom(address, token);
    const me = await wsRequest(ws.client, MeDocument);
    assert.ok(me.data?.me, JSON.stringify(me));
    return ws;
  }

  describe("sign-in", () => {
    it("delays an account's sign-ins from an address after its free wrong passwords, right password included", async () => {
      const user = await newUser("guessed");
      const attacker = newAddress();
      const attempt = (password: string, address = attacker) =>
        gql(herald.url, LoginDocument, { input: { email: user.email, password } }, from(address));
      for (let i = 0; i < 3; i += 1) {
        assert.equal(refusalOf(await attempt(`wrong password ${i}`)).code, "UNAUTHENTICATED");
      }
      const delayed = await attempt("wrong password 3");
      assert.equal(delayed.status, 429);
      assert.equal(refusalOf(delayed).code, "RATE_LIMITED");
      assert.ok(Number(refusalOf(delayed).retryAfterSeconds) >= 1, JSON.stringify(delayed.errors));
      assert.equal(refusalOf(await attempt(PASSWORD)).code, "RATE_LIMITED", "not even the right one, meanwhile");
      // The owner, elsewhere, signs in.
      assert.equal(
        (
          await gqlOk(
            herald.url,
            LoginDocument,
            { input: { email: user.email, password: PASSWORD } },
            from(newAddress()),
          )
        ).login.user.id,
        user.user.id,
      );
    });

    it("answers a delayed sign-in with HTTP 429 and Retry-After, and over WebSocket with retryAfterSeconds", async () => {
      const user = await newUser("delayed");
      const attacker = newAddress();
      const body = JSON.stringify({
        query: queryText(LoginDocument),
        variables: { input: { email: user.email, password: "wrong password" } },
      });
      let res: Response | undefined;
      for (let i = 0; i < 4; i += 1) {
        res = await fetch(`${herald.url}/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json", ...from(attacker) },
          body,
        });
        await res.text();
      }
      assert.equal(res?.status, 429);
      assert.ok(Number(res?.headers.get("retry-after")) >= 1, String(res?.headers.get("retry-after")));

      const someone = await newUser("witness");
      const ws = await openSocket(attacker, someone.token);
      const overWs = await wsRequest(ws.client, LoginDocument, { input: { email: user.email, password: "wrong" } });
      assert.equal(refusalOf(overWs).code, "RATE_LIMITED", JSON.stringify(overWs));
      assert.ok(Number(refusalOf(overWs).retryAfterSeconds) >= 1);
      await ws.dispose();
    });
  });

  it("counts sign-ups per address", async () => {
    const address = newAddress();
    const signUp = (i: number, at = address) =>
      gql(
        herald.url,
        RegisterDocument,
        { input: { email: `flood.${i}.${Date.now()}@example.com`, password: PASSWORD, displayName: "Flood" } },
        from(at),
      );
    for (let i = 0; i < 3; i += 1) assert.equal((await signUp(i)).errors, undefined);
    const refused = await signUp(3);
    assert.equal(refused.status, 429);
    assert.equal(refusalOf(refused).code, "RATE_LIMITED");
    assert.equal((await signUp(4, newAddress())).errors, undefined, "another address is another count");
    // Over a socket from that address: the same count.
    const someone = await newUser("host");
    const ws = await openSocket(address, someone.token);
    const overWs = await wsRequest(ws.client, RegisterDocument, {
      input: { email: `flood.ws.${Date.now()}@example.com`, password: PASSWORD, displayName: "Flood" },
    });
    assert.equal(refusalOf(overWs).code, "RATE_LIMITED", JSON.stringify(overWs));
    await ws.dispose();
  });

  it("counts refreshes per login", async () => {
    const user = await newUser("refresher");
    let refreshToken = user.refreshToken;
    for (let i = 0; i < 3; i += 1) {
      refreshToken = (await gqlOk(herald.url, RefreshDocument, { refreshToken }, from(newAddress()))).refresh
        .refreshToken;
    }
    const refused = await gql(herald.url, RefreshDocument, { refreshToken }, from(newAddress()));
    assert.equal(refusalOf(refused).code, "RATE_LIMITED", "whatever the address");
    const ws = await openSocket(newAddress(), user.token);
    assert.equal(refusalOf(await wsRequest(ws.client, RefreshDocument, { refreshToken })).code, "RATE_LIMITED");
    await ws.dispose();
    // Refused before it was spent: the login lives on once the hour is over, and now still answers.
    assert.equal((await gqlOk(herald.url, MeDocument, {}, bearer(user.token))).me?.id, user.user.id);
  });

  it("counts sendNotification's recipients per service key", async () => {
    const users = await Promise.all([newUser("r1"), newUser("r2"), newUser("r3")]);
    const send = (key: string) =>
      gql(
        herald.url,
        SendNotificationDocument,
        { input: { recipientIds: users.map((u) => u.user.id), title: "t", body: "b", idempotencyKey: key } },
        { "x-api-key": TEST_SERVICE_KEY },
      );
    assert.equal((await send("first-three")).errors, undefined);
    const refused = await send("three-more");
    assert.equal(refused.status, 429);
    assert.equal(refusalOf(refused).code, "RATE_LIMITED");
  });

  it("counts mutations per user across both transports", async () => {
    const user = await newUser("busy");
    const ws = await openSocket(newAddress(), user.token);
    for (let i = 0; i < 3; i += 1) {
      assert.equal((await gql(herald.url, MarkAllNotificationsReadDocument, {}, bearer(user.token))).errors, undefined);
    }
    for (let i = 0; i < 2; i += 1) {
      assert.equal((await wsRequest(ws.client, MarkAllNotificationsReadDocument)).errors, undefined);
    }
    const overHttp = await gql(herald.url, MarkAllNotificationsReadDocument, {}, bearer(user.token));
    assert.equal(overHttp.status, 429);
    assert.equal(refusalOf(overHttp).code, "RATE_LIMITED");
    assert.equal(refusalOf(await wsRequest(ws.client, MarkAllNotificationsReadDocument)).code, "RATE_LIMITED");
    // Queries are not counted.
    assert.equal((await gqlOk(herald.url, MeDocument, {}, bearer(user.token))).me?.id, user.user.id);
    await ws.dispose();
  });

  describe("WebSockets", () => {
    it("counts a user's open sockets, on any address, and frees one when it closes", async () => {
      const user = await newUser("many-tabs");
      const first = await openSocket(newAddress(), user.token);
      const second = await openSocket(newAddress(), user.token);
      const third = socketFrom(newAddress(), user.token);
      assert.equal(await third.closed, 1013);
      await first.dispose();
      // The server releases the closed one as it hears the close: a new socket gets in once it has.
      const fourth = await eventuallyOpen(user.token);
      await Promise.all([second.dispose(), third.dispose(), fourth.dispose()]);
    });

    it("counts an address's open sockets, whoever's", async () => {
      const address = newAddress();
      const users = await Promise.all([newUser("n1"), newUser("n2"), newUser("n3"), newUser("n4")]);
      const open = [];
      for (const user of users.slice(0, 3)) open.push(await openSocket(address, user.token));
      const refused = socketFrom(address, users[3]?.token ?? "");
      assert.equal(await refused.closed, 1013);
      await Promise.all([...open, refused].map((ws) => ws.dispose()));
    });

    it("refuses a subscription over the socket's count, and keeps the socket", async () => {
      const user = await newUser("subscriber");
      const ws = await openSocket(newAddress(), user.token);
      const subs = [
        new Subscription(ws.client, UnreadCountChangedDocument),
        new Subscription(ws.client, UnreadCountChangedDocument),
      ];
      const third = new Subscription(ws.client, UnreadCountChangedDocument);
      await third.done;
      const failure = third.error() as { extensions?: Record<string, unknown> }[];
      assert.equal(failure[0]?.extensions?.["code"], "RATE_LIMITED", JSON.stringify(failure));
      assert.deepEqual(
        subs.map((s) => s.error()),
        [undefined, undefined],
      );
      await ws.dispose();
    });

    it("refuses operations over the socket's rate with retryAfterSeconds", async () => {
      const user = await newUser("chatty");
      const ws = await openSocket(newAddress(), user.token); // its first operation
      for (let i = 0; i < 4; i += 1) assert.ok((await wsRequest(ws.client, MeDocument)).data?.me);
      const refused = await wsRequest(ws.client, MeDocument);
      assert.equal(refusalOf(refused).code, "RATE_LIMITED", JSON.stringify(refused));
      assert.ok(Number(refusalOf(refused).retryAfterSeconds) >= 1);
      await ws.dispose();
    });

    it("closes with 4429 a socket sending messages over its rate", async () => {
      const user = await newUser("flooder");
      const socket = new WebSocket(`${herald.url.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws", {
        headers: from(newAddress()),
      });
      const closed = new Promise<number>((resolve) => socket.once("close", (code: number) => resolve(code)));
      await new Promise((resolve) => socket.once("open", resolve));
      socket.send(JSON.stringify({ type: "connection_init", payload: bearer(user.token) }));
      for (let i = 0; i < 30; i += 1) socket.send(JSON.stringify({ type: "ping" }));
      assert.equal(await closed, 4429);
    });

    it("answers an address opening sockets too fast with HTTP 429 and Retry-After, before the upgrade", async () => {
      const address = newAddress();
      const user = await newUser("reconnector");
      for (let i = 0; i < 5; i += 1) await (await openSocket(address, user.token)).dispose();
      const socket = new WebSocket(`${herald.url.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws", {
        headers: from(address),
      });
      const refused = await new Promise<{ status: number | undefined; retryAfter: string | undefined }>(
        (resolve, reject) => {
          socket.once("unexpected-response", (_req, res) =>
            resolve({ status: res.statusCode, retryAfter: res.headers["retry-after"] }),
          );
          socket.once("open", () => reject(new Error("the upgrade was accepted")));
          socket.once("error", () => undefined);
        },
      );
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.retryAfter) >= 1);
      socket.terminate();
    });
  });

  /**
   * Opens a socket once the server has released one of the user's: the release follows the close
   * asynchronously (the server hears the close, then tells Redis), so it is polled for.
   */
  function eventuallyOpen(token: string): Promise<WsConnection> {
    return eventually(
      async () => {
        const ws = socketFrom(newAddress(), token);
        const outcome = await Promise.race([
          wsRequest(ws.client, MeDocument).then(() => "open"),
          ws.closed.then(String),
        ]);
        if (outcome === "open") return ws;
        await ws.dispose();
        return undefined;
      },
      { timeoutMs: 5000, what: "a socket, once a closed one is released" },
    );
  }
});
