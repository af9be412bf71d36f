import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import { MongoClient } from "mongodb";
import {
  EndSessionDocument,
  LoginDocument,
  LogoutDocument,
  LogoutEverywhereDocument,
  MeDocument,
  RefreshDocument,
  RegisterDocument,
  SendNotificationDocument,
  SessionsDocument,
  UnreadCountChangedDocument,
  type LoginMutation,
} from "../generated/graphql.js";
import {
  bearer,
  connectWs,
  gql,
  gqlOk,
  Subscription,
  wsRequest,
  type WsConnection,
} from "../helpers/graphql-client.js";
import {
  baseEnv,
  startCluster,
  startHerald,
  uniqueDatabase,
  type Cluster,
  type HeraldProcess,
} from "../helpers/herald.js";

const PASSWORD = "correct horse battery";
const FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const IPHONE =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const CURL = "curl/8.5.0";

type Credentials = LoginMutation["login"];

const codeOf = (r: { errors?: readonly { extensions?: Record<string, unknown> }[] | undefined | null }) =>
  r.errors?.[0]?.extensions?.["code"];

let registered = 0;

/** A new account, signed in from `userAgent` (a login of its own). */
async function newAccount(
  url: string,
  name: string,
  userAgent = FIREFOX,
): Promise<{ email: string; first: Credentials }> {
  registered += 1;
  const email = `${name}.${registered}.${Date.now()}@example.com`;
  const r = await gqlOk(
    url,
    RegisterDocument,
    { input: { email, password: PASSWORD, displayName: name } },
    { "user-agent": userAgent },
  );
  return { email, first: r.register };
}

/** Another login of the same account, from another device. */
async function signIn(url: string, email: string, userAgent = FIREFOX): Promise<Credentials> {
  return (await gqlOk(url, LoginDocument, { input: { email, password: PASSWORD } }, { "user-agent": userAgent })).login;
}

/** A live socket of a login: subscribed, so that closing it is the server's doing. */
async function liveSocket(url: string, token: string): Promise<WsConnection> {
  const ws = connectWs(url, bearer(token));
  new Subscription(ws.client, UnreadCountChangedDocument);
  // Acknowledged: a query answered over the same socket.
  const me = await wsRequest(ws.client, MeDocument);
  assert.ok(me.data?.me?.id, JSON.stringify(me));
  return ws;
}

/** Waits for the server to close `ws`, and says how long that took after `since`. */
async function closedWith(t: TestContext, ws: WsConnection, since: number, what: string): Promise<number> {
  const code = await ws.closed;
  t.diagnostic(`${what}: socket closed ${Date.now() - since} ms after the answer`);
  return code;
}

describe("sessions: logins that can be ended, on every api instance", () => {
  let cluster: Cluster;
  let a: string;
  let b: string;

  before(async () => {
    cluster = await startCluster("e2e_sessions", 2);
    a = cluster.apis[0]?.url ?? "";
    b = cluster.apis[1]?.url ?? "";
  });

  after(async () => {
    await cluster.stop();
  });

  it("signs in with a short-lived access token and a refresh token", async () => {
    const before = Date.now();
    const { first } = await newAccount(a, "fresh");
    const lifetime = new Date(first.expiresAt).getTime() - before;
    assert.ok(
      lifetime > 14 * 60_000 && lifetime <= 15 * 60_000 + 1000,
      `the access token lives 15 minutes (${lifetime} ms)`,
    );
    assert.match(first.refreshToken, /^[0-9a-f]{24}\.[\w-]{43}$/);
    assert.equal((await gqlOk(b, MeDocument, {}, bearer(first.token))).me?.id, first.user.id);
  });

  it("refreshes over HTTP and over WebSocket, each refresh token once", async () => {
    const { first } = await newAccount(a, "refresher");
    const overHttp = (await gqlOk(b, RefreshDocument, { refreshToken: first.refreshToken })).refresh;
    assert.notEqual(overHttp.refreshToken, first.refreshToken);
    assert.equal(overHttp.user.id, first.user.id);
    assert.equal((await gqlOk(a, MeDocument, {}, bearer(overHttp.token))).me?.id, first.user.id);

    const ws = connectWs(a, bearer(overHttp.token));
    const overWs = await wsRequest(ws.client, RefreshDocument, { refreshToken: overHttp.refreshToken });
    await ws.dispose();
    const next = overWs.data?.refresh;
    assert.ok(next, JSON.stringify(overWs));
    assert.equal((await gqlOk(b, MeDocument, {}, bearer(next.token))).me?.id, first.user.id);

    const garbage = await gql(a, RefreshDocument, { refreshToken: "not-a-refresh-token" });
    assert.equal(codeOf(garbage), "UNAUTHENTICATED");
  });

  it("ends the whole login when a spent refresh token comes back: tokens refused, sockets closed everywhere", async (t) => {
    const { first } = await newAccount(a, "stolen");
    const onA = await liveSocket(a, first.token);
    const onB = await liveSocket(b, first.token);
    const legit = (await gqlOk(a, RefreshDocument, { refreshToken: first.refreshToken })).refresh;

    // The thief (or the owner, after the thief) presents the spent one.
    const replayed = await gql(b, RefreshDocument, { refreshToken: first.refreshToken });
    const answeredAt = Date.now();
    assert.equal(codeOf(replayed), "UNAUTHENTICATED");
    assert.equal(await closedWith(t, onA, answeredAt, "api A"), 4403);
    assert.equal(await closedWith(t, onB, answeredAt, "api B"), 4403);

    // Every token of that login is dead, the one refreshed in between included.
    assert.equal(codeOf(await gql(a, RefreshDocument, { refreshToken: legit.refreshToken })), "UNAUTHENTICATED");
    for (const url of [a, b]) {
      const me = await gql(url, MeDocument, {}, bearer(legit.token));
      assert.equal(me.status, 401);
      assert.equal(codeOf(me), "UNAUTHENTICATED");
    }
    const again = connectWs(b, bearer(legit.token));
    assert.equal(await again.closed, 4403);
    await Promise.all([onA.dispose(), onB.dispose(), again.dispose()]);
  });

  it("logs out one login over HTTP: its sockets close on every instance, the user's other logins live on", async (t) => {
    const { email, first } = await newAccount(a, "leaver");
    const phone = await signIn(b, email, IPHONE);
    const onB = await liveSocket(b, first.token);
    const phoneSocket = await liveSocket(a, phone.token);

    assert.equal((await gqlOk(a, LogoutDocument, {}, bearer(first.token))).logout, true);
    assert.equal(await closedWith(t, onB, Date.now(), "logout"), 4403);
    assert.equal((await gql(b, MeDocument, {}, bearer(first.token))).status, 401);
    assert.equal(codeOf(await gql(a, RefreshDocument, { refreshToken: first.refreshToken })), "UNAUTHENTICATED");

    // The phone's login is another login: untouched.
    assert.equal((await gqlOk(b, MeDocument, {}, bearer(phone.token))).me?.id, first.user.id);
    assert.equal((await wsRequest(phoneSocket.client, MeDocument)).data?.me?.id, first.user.id);
    await Promise.all([onB.dispose(), phoneSocket.dispose()]);
  });

  it("logs out over WebSocket: the answer comes, then that socket closes", async () => {
    const { first } = await newAccount(b, "wsleaver");
    const ws = connectWs(b, bearer(first.token));
    const result = await wsRequest(ws.client, LogoutDocument);
    assert.equal(result.data?.logout, true, JSON.stringify(result));
    assert.equal(await ws.closed, 4403);
    assert.equal((await gql(a, MeDocument, {}, bearer(first.token))).status, 401);
    await ws.dispose();
  });

  it("lists the caller's logins with their devices, and ends one; another user's login is NOT_FOUND", async () => {
    const { email, first } = await newAccount(a, "lister", FIREFOX);
    const phone = await signIn(a, email, IPHONE);
    const script = await signIn(b, email, CURL);

    const listed = (await gqlOk(b, SessionsDocument, {}, bearer(phone.token))).sessions;
    assert.equal(listed.length, 3);
    assert.deepEqual(listed.map((s) => s.device).sort(), ["Firefox 128 on Linux", "Safari 17 on iOS", "curl"]);
    assert.deepEqual(
      listed.filter((s) => s.current).map((s) => s.device),
      ["Safari 17 on iOS"],
      "the login of the token asking is the current one",
    );
    const scriptLogin = listed.find((s) => s.device === "curl");
    assert.ok(scriptLogin);

    // Over WebSocket too.
    const ws = connectWs(b, bearer(first.token));
    const viaWs = await wsRequest(ws.client, SessionsDocument);
    assert.equal(viaWs.data?.sessions.length, 3);
    await ws.dispose();

    // Ended over WebSocket, from the phone's socket.
    const phoneSocket = connectWs(a, bearer(phone.token));
    const ended = await wsRequest(phoneSocket.client, EndSessionDocument, { id: scriptLogin.id });
    assert.equal(ended.data?.endSession, true, JSON.stringify(ended));
    await phoneSocket.dispose();
    assert.equal((await gql(b, MeDocument, {}, bearer(script.token))).status, 401);
    assert.equal((await gqlOk(a, SessionsDocument, {}, bearer(phone.token))).sessions.length, 2);
    assert.equal(codeOf(await gql(a, EndSessionDocument, { id: scriptLogin.id }, bearer(phone.token))), "NOT_FOUND");

    // Someone else's login, and garbage: NOT_FOUND, and nothing ended.
    const other = await newAccount(b, "bystander");
    const theirs = (await gqlOk(b, SessionsDocument, {}, bearer(other.first.token))).sessions[0];
    assert.ok(theirs);
    assert.equal(codeOf(await gql(a, EndSessionDocument, { id: theirs.id }, bearer(phone.token))), "NOT_FOUND");
    assert.equal(codeOf(await gql(a, EndSessionDocument, { id: "nope" }, bearer(phone.token))), "NOT_FOUND");
    assert.equal((await gqlOk(a, MeDocument, {}, bearer(other.first.token))).me?.id, other.first.user.id);
  });

  it("logs out everywhere over WebSocket too: the answer comes, then every socket closes", async () => {
    const { email, first } = await newAccount(b, "wseverywhere");
    const phone = await signIn(a, email, IPHONE);
    const phoneSocket = await liveSocket(a, phone.token);
    const ws = connectWs(b, bearer(first.token));
    const result = await wsRequest(ws.client, LogoutEverywhereDocument);
    assert.equal(result.data?.logoutEverywhere, 2, JSON.stringify(result));
    assert.equal(await ws.closed, 4403);
    assert.equal(await phoneSocket.closed, 4403);
    assert.equal((await gql(a, MeDocument, {}, bearer(phone.token))).status, 401);
    await Promise.all([ws.dispose(), phoneSocket.dispose()]);
  });

  it("logs out everywhere: every login of the caller ends, on every instance, and the count says how many", async (t) => {
    const { email, first } = await newAccount(a, "everywhere");
    const phone = await signIn(b, email, IPHONE);
    const script = await signIn(a, email, CURL);
    const sockets = [
      await liveSocket(a, first.token),
      await liveSocket(b, phone.token),
      await liveSocket(b, script.token),
    ];

    assert.equal((await gqlOk(b, LogoutEverywhereDocument, {}, bearer(script.token))).logoutEverywhere, 3);
    const answeredAt = Date.now();
    for (const [i, ws] of sockets.entries()) assert.equal(await closedWith(t, ws, answeredAt, `socket ${i}`), 4403);
    for (const creds of [first, phone, script]) {
      assert.equal((await gql(a, MeDocument, {}, bearer(creds.token))).status, 401);
      assert.equal(codeOf(await gql(b, RefreshDocument, { refreshToken: creds.refreshToken })), "UNAUTHENTICATED");
    }
    // Signing in again starts over.
    const again = await signIn(a, email);
    const listed = (await gqlOk(b, SessionsDocument, {}, bearer(again.token))).sessions;
    assert.deepEqual(
      listed.map((s) => s.current),
      [true],
    );
    await Promise.all(sockets.map((ws) => ws.dispose()));
  });

  it("an api instance started after a logout refuses that login's tokens too", async () => {
    const { first } = await newAccount(a, "late");
    assert.equal((await gqlOk(a, LogoutDocument, {}, bearer(first.token))).logout, true);
    const late = await startHerald({ ...cluster.env, ROLES: "api" });
    try {
      assert.equal((await gql(late.url, MeDocument, {}, bearer(first.token))).status, 401);
      const ws = connectWs(late.url, bearer(first.token));
      assert.equal(await ws.closed, 4403);
      await ws.dispose();
    } finally {
      assert.equal(await late.stop(), 0, late.output());
    }
  });
});

describe("keys", () => {
  const OLD = "old-secret-0123456789abcdef0123456789abcdef";
  const NEW = "new-secret-0123456789abcdef0123456789abcdef";

  it("rotates the JWT secret without signing anyone out, until the previous one is dropped", async () => {
    const env = { ...baseEnv(uniqueDatabase("e2e_rotation")), ROLES: "api,worker", JWT_SECRET: OLD };
    const run = async <T>(extra: Record<string, string>, body: (h: HeraldProcess) => Promise<T>): Promise<T> => {
      const herald = await startHerald({ ...env, ...extra });
      try {
        return await body(herald);
      } finally {
        assert.equal(await herald.stop(), 0, herald.output());
      }
    };
    const signedUp = await run({}, async (h) => (await newAccount(h.url, "rotating")).first);
    const renewed = await run({ JWT_SECRET: NEW, JWT_PREVIOUS_SECRETS: OLD }, async (h) => {
      assert.equal((await gqlOk(h.url, MeDocument, {}, bearer(signedUp.token))).me?.id, signedUp.user.id);
      return (await gqlOk(h.url, RefreshDocument, { refreshToken: signedUp.refreshToken })).refresh;
    });
    await run({ JWT_SECRET: NEW }, async (h) => {
      assert.equal((await gql(h.url, MeDocument, {}, bearer(signedUp.token))).status, 401, "the dropped key's token");
      assert.equal((await gqlOk(h.url, MeDocument, {}, bearer(renewed.token))).me?.id, signedUp.user.id);
    });
  });

  it("takes several named service keys at once, and records which one sent each request", async () => {
    const env: Record<string, string> = {
      ...baseEnv(uniqueDatabase("e2e_service_keys")),
      ROLES: "api,worker",
      SERVICE_API_KEYS: "billing:billing-key-0123456789,deploys:deploys-key-0123456789",
    };
    const herald = await startHerald(env);
    const mongo = new MongoClient(env["MONGO_URL"] ?? "");
    try {
      const { first } = await newAccount(herald.url, "recipient");
      const send = (key: string, idempotencyKey: string) =>
        gql(
          herald.url,
          SendNotificationDocument,
          { input: { recipientIds: [first.user.id], title: "t", body: "b", idempotencyKey } },
          { "x-api-key": key },
        );
      assert.equal((await send("billing-key-0123456789", "from-billing")).errors, undefined);
      assert.equal((await send("deploys-key-0123456789", "from-deploys")).errors, undefined);
      const wrong = await send("deploys-key-0123456780", "from-nobody");
      assert.equal(wrong.status, 401);
      assert.equal(codeOf(wrong), "UNAUTHENTICATED");

      const requests = await mongo
        .db()
        .collection("notification_requests")
        .find({}, { projection: { idempotencyKey: 1, sentBy: 1 } })
        .toArray();
      assert.deepEqual(requests.map((r) => [String(r["idempotencyKey"]), String(r["sentBy"])]).sort(), [
        ["from-billing", "billing"],
        ["from-deploys", "deploys"],
      ]);
    } finally {
      await mongo.close();
      assert.equal(await herald.stop(), 0, herald.output());
    }
  });
});
