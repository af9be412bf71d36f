import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { projectRoot } from "../../dev/local-stack.js";
import {
  buildSchema,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLOutputType,
  type GraphQLSchema,
} from "graphql";
import { createClient } from "graphql-ws";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { bearer, eventually, postRaw } from "../helpers/graphql-client.js";
import {
  baseEnv,
  startHerald,
  TEST_JWT_SECRET,
  TEST_SERVICE_KEY,
  uniqueDatabase,
  type HeraldProcess,
} from "../helpers/herald.js";
import { signUp, type TestUser } from "../helpers/users.js";
import {
  containsRaw,
  deepList,
  describeValue,
  hostilesFor,
  HUGE,
  literal,
  MISSING,
  Random,
  Raw,
  toJson,
  type FuzzValue,
  type Hostile,
} from "../helpers/fuzz-values.js";

// ---------------------------------------------------------------------------------------------
// Knobs. The seed is printed first thing, so a failing run can be replayed with FUZZ_SEED.

const SEED = process.env["FUZZ_SEED"] ? Number(process.env["FUZZ_SEED"]) >>> 0 : randomInt(2 ** 31);
/** Planned operations beyond this are dropped (after a seeded shuffle), to bound the run. */
const OPERATION_LIMIT = Number(process.env["FUZZ_OPERATIONS"] ?? 3000);
const IN_FLIGHT = 8;
const REQUEST_TIMEOUT_MS = 15_000;
/** How long a subscription is listened to before it is ended: long enough to see it refused. */
const SUBSCRIPTION_LISTEN_MS = 300;
/** Sending stops here, so a pathologically slow server fails the run instead of hanging it. */
const FUZZ_DEADLINE_MS = 80_000;
/** The express.json limit of the api role. */
const BODY_LIMIT_BYTES = 1024 * 1024;
/** Objects below the root field's type that a selection descends into. */
const SELECTION_DEPTH = 4;

/**
 * Who calls, and how often. Rate limiting will make volume per caller matter: adjust here. A
 * weight of 0 removes a caller.
 */
const CALLER_WEIGHTS = {
  anonymous: 1.5,
  fuzzer: 6,
  service: 1.5,
  "service key + bearer": 0.3,
  "wrong x-api-key": 0.3,
  "JWT, wrong secret": 0.4,
  "JWT, expired": 0.3,
  "JWT, alg none": 0.2,
  "garbage bearer": 0.3,
  "Basic auth": 0.1,
  "JWT, user that does not exist": 1.2,
  "JWT, subject not an id": 1.5,
} as const;
type CallerName = keyof typeof CALLER_WEIGHTS;
const DISPOSABLE = "disposable user";

/** The closed set of codes of docs/api.md, plus the request codes that pass through formatError. */
const ALLOWED_CODES = new Set([
  "UNAUTHENTICATED",
  "FORBIDDEN",
  "NOT_FOUND",
  "BAD_USER_INPUT",
  "CONFLICT",
  "RATE_LIMITED",
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_REQUEST",
  "PERSISTED_QUERY_NOT_FOUND",
  "PERSISTED_QUERY_NOT_SUPPORTED",
  "OPERATION_RESOLUTION_FAILURE",
]);

/** A server that closes with these gave up on the socket because of something it did not expect. */
const BROKEN_CLOSE_CODES = new Set([4500, 1011]);

/** Text that only an unhandled error or a driver puts in an answer. */
const LEAK_PATTERNS: readonly (readonly [string, RegExp])[] = [
  ["a stack trace", /\s{2,}at [\w.<>$]+ \(|\bat (?:async )?[\w.<>$]+ \((?:file|node):/],
  ["a node_modules path", /node_modules/],
  ["a source path", /\/src\/|\/dist\/|\.[jt]s:\d+/],
  ["a file path", /(?:^|[\s"'(=])\/(?:home|usr|opt|app|tmp|var|root|etc|srv)\//],
  ["MongoDB driver text", /Mongo[A-Za-z]*Error|MongoServerError|E11000/],
  ["BSON text", /BSON/],
  ["ObjectId text", /ObjectId/],
  ["MikroORM text", /MikroORM|EntityManager|Collection\./],
  ["Redis text", /ReplyError|WRONGTYPE|ioredis|ERR wrong/],
  ["JavaScript engine text", /Maximum call stack|Invalid time value|Invalid array length|Cannot read propert/],
  // graphql-js writes `Field "a" is not defined`: a quote before "is" is GraphQL's, a name is JavaScript's.
  ["a JavaScript error", /[\w$\]] is not (?:defined|a function|iterable)/],
  ["a JavaScript error name", /\b(?:TypeError|RangeError|URIError|ReferenceError|SyntaxError|EvalError)\b/],
];

const PASSWORD = "correct horse battery";

// ---------------------------------------------------------------------------------------------
// The world the fuzzer attacks: a canary whose view must not change, a fuzzer and a bystander.

interface Ids {
  notifications: string[];
  post: string;
  reminder: string;
  activity: string[];
  cursor: string;
  streamCursor: string;
}

interface World {
  canary: TestUser;
  fuzzer: TestUser;
  bystander: TestUser;
  canaryIds: Ids;
  fuzzerIds: Ids;
  bystanderPost: string;
  /**
   * A user of its own for the operations that end the caller's login (logout, endSession, a refresh
   * token spent twice): ended with the fuzzer's token, they would leave the rest of the run unsigned.
   */
  disposable: TestUser;
  disposableRefreshToken: string;
  disposableSessions: string[];
  canarySessions: string[];
  /** Well formed, and no user, notification or post has it. */
  ghostId: string;
  /** Written into the canary's private data only: seen by anyone else, it leaked. */
  marker: string;
  craftedCursors: string[];
  craftedStreamCursors: string[];
}

interface Caller {
  name: string;
  kind: "anonymous" | "user" | "service" | "ghost" | "refused";
  headers: Record<string, string>;
  /** connectionParams; undefined sends connection_init without a payload. */
  wsParams: Record<string, unknown> | undefined;
  weight: number;
}

type Transport = "http-post" | "http-get" | "ws";

interface Planned {
  target: string;
  caller: string;
  transport: string;
  mode: string;
  input: string;
  run: () => Promise<string[]>;
}

interface Failure {
  target: string;
  caller: string;
  transport: string;
  mode: string;
  input: string;
  /** `what##detail@@requestId`: the detail and the server's request id are optional. */
  problem: string;
}

/**
 * Every Query, Mutation and Subscription field of the checked-in schema, called by every kind of
 * caller over every transport with boundary and hostile arguments, plus malformed HTTP bodies,
 * WebSocket frames and documents. Hostile input must get a client error: never a 5xx, an HTML page,
 * an internal error, driver or engine text, a broken socket or a dead process; and a canary user's
 * view must come out of it unchanged. All weaknesses are reported at once, grouped.
 */
describe(`schema-driven fuzzing (FUZZ_SEED=${SEED})`, () => {
  let herald: HeraldProcess;
  let world: World;
  let canaryBefore: unknown;
  let schema: GraphQLSchema;
  const serverLines: string[] = [];
  let exited: string | undefined;
  const inFlight = new Set<Planned>();

  before(async () => {
    console.log(`fuzz seed ${SEED} (replay: FUZZ_SEED=${SEED})`);
    herald = await startHerald({ ...baseEnv(uniqueDatabase("e2e_fuzz")), ROLES: "api,worker", LOG_LEVEL: "error" });
    // Chunks split lines anywhere: a line is kept once its end has arrived.
    const keeper = () => {
      let partial = "";
      return (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split("\n");
        partial = lines.pop() ?? "";
        if (serverLines.length < 50_000) serverLines.push(...lines.filter(Boolean));
      };
    };
    herald.child.stdout?.on("data", keeper());
    herald.child.stderr?.on("data", keeper());
    herald.child.once("exit", (code, signal) => {
      exited = `Herald exited (code ${code}, signal ${signal}) with in flight: ${[...inFlight]
        .map((op) => `${op.target} [${op.caller}, ${op.transport}, ${op.mode}] ${op.input}`)
        .join("; ")}`;
    });
    schema = buildSchema(readFileSync(path.join(projectRoot(), "schema/schema.graphql"), "utf8"));
    world = await buildWorld(herald.url, schema);
    canaryBefore = await stableSnapshot(herald.url, world, schema);
  });

  after(async () => {
    if (herald) assert.equal(await herald.stop(), 0, herald.output());
  });

  it("answers every hostile input with a client error, leaks nothing, and leaves other users untouched", async () => {
    const started = Date.now();
    const rnd = new Random(SEED);
    const failures: Failure[] = [];
    const all = callers(await tokens(world));
    const ctx: Ctx = {
      url: herald.url,
      world,
      rnd,
      schema,
      now: Date.now(),
      callers: all.filter((c) => c.name !== DISPOSABLE),
      disposable: all.find((c) => c.name === DISPOSABLE) as Caller,
    };

    const planned = planAll(ctx);
    const fixed = [...hostileHttp(ctx), ...hostileFrames(ctx), ...hostileDocuments(ctx)];
    const fuzzed = rnd.shuffle(planned).slice(0, Math.max(0, OPERATION_LIMIT - fixed.length));
    const queue = rnd.shuffle([...fixed, ...fuzzed]);
    console.log(`${queue.length} operations planned (${planned.length} generated, ${fixed.length} fixed)`);

    let sent = 0;
    let next = 0;
    const deadline = started + FUZZ_DEADLINE_MS;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < queue.length && !exited && Date.now() < deadline) {
          const op = queue[next++] as Planned;
          inFlight.add(op);
          sent++;
          try {
            for (const problem of await op.run()) failures.push({ ...op, problem });
          } catch (err) {
            failures.push({ ...op, problem: `the test could not send it: ${String(err)}` });
          } finally {
            inFlight.delete(op);
          }
        }
      }),
    );
    const fuzzSeconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`${sent} of ${queue.length} operations sent in ${fuzzSeconds} s`);
    const codes = [...codesSeen.entries()].sort(([, a], [, b]) => b - a);
    console.log(`error codes answered: ${codes.map(([code, n]) => `${code} ${n}`).join(", ")}`);
    const general = (problem: string): Failure => ({
      target: "Herald",
      caller: "-",
      transport: "-",
      mode: "-",
      input: "-",
      problem,
    });
    if (sent < queue.length && !exited) {
      failures.push(general(`only ${sent} of ${queue.length} operations were answered within ${FUZZ_DEADLINE_MS} ms`));
    }
    if (exited) failures.push(general(exited));
    else {
      const ready = await fetch(`${herald.url}/readyz`).then(
        (r) => r.status,
        (err: unknown) => String(err),
      );
      if (ready !== 200) failures.push(general(`/readyz answers ${ready} after the run`));
      // Most operations ran as the fuzzer: had its login ended midway, they tested only sign-in.
      const me = await postRaw<{ me: { id: string } | null }>(
        herald.url,
        { query: "{ me { id } }" },
        world.fuzzer.auth,
      );
      if (me.data?.me?.id !== world.fuzzer.id) {
        failures.push(general(`the fuzzer's token stopped working during the run: ${short(me.errors ?? me.data)}`));
      }
      const after = await stableSnapshot(herald.url, world, schema).catch((err: unknown) => String(err));
      const changes = canaryChanges(canaryBefore, after);
      if (changes.length > 0) {
        failures.push({
          ...general(`the canary's view changed:\n      ${changes.join("\n      ")}`),
          target: "canary",
        });
      }
    }

    const report = formatReport(failures, serverLines);
    if (failures.length > 0) assert.fail(report);
  });
});

// ---------------------------------------------------------------------------------------------
// Set-up

async function ok<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<T> {
  const r = await postRaw<T>(url, { query, variables }, headers);
  if (r.errors || !r.data) throw new Error(`set-up request failed (${r.status}): ${JSON.stringify(r.errors)}`);
  return r.data;
}

const NOTIFICATION_PAGE = `query Page($n: Int) {
  notifications(first: $n) { edges { cursor node { id kind title body } } streamCursor }
  activity(first: 100) { id verb }
}`;

async function idsOf(url: string, user: TestUser, post: string, reminder: string): Promise<Ids> {
  const page = await ok<{
    notifications: { edges: { cursor: string; node: { id: string } }[]; streamCursor: string };
    activity: { id: string }[];
  }>(url, NOTIFICATION_PAGE, { n: 100 }, user.auth);
  return {
    notifications: page.notifications.edges.map((e) => e.node.id),
    post,
    reminder,
    activity: page.activity.map((a) => a.id),
    cursor: page.notifications.edges[0]?.cursor ?? "",
    streamCursor: page.notifications.streamCursor,
  };
}

async function buildWorld(url: string, schema: GraphQLSchema): Promise<World> {
  const marker = `canary-private-${randomInt(1e9)}`;
  const service = { "x-api-key": TEST_SERVICE_KEY };
  const [canary, fuzzer, bystander, disposableSignUp] = await Promise.all([
    signUp(url, "Canary"),
    signUp(url, "Fuzzer"),
    signUp(url, "Bystander"),
    signUp(url, "Disposable"),
  ]);
  // Where logins have refresh tokens, the disposable user signs in once more to hold one.
  const refreshable = hasField(schema, "AuthPayload", "refreshToken");
  const disposableLogin = refreshable
    ? (
        await ok<{ login: { token: string; refreshToken: string } }>(
          url,
          "mutation($input: LoginInput!) { login(input: $input) { token refreshToken } }",
          { input: { email: disposableSignUp.email, password: PASSWORD } },
        )
      ).login
    : { token: disposableSignUp.token, refreshToken: "" };
  const disposable = { ...disposableSignUp, token: disposableLogin.token, auth: bearer(disposableLogin.token) };
  const sessionsOf = async (user: TestUser) =>
    hasField(schema, "Query", "sessions")
      ? (await ok<{ sessions: { id: string }[] }>(url, "{ sessions { id } }", {}, user.auth)).sessions.map((x) => x.id)
      : [];
  const activityHas = (user: TestUser, verb: string) =>
    eventually(
      async () => {
        const { activity } = await ok<{ activity: { verb: string }[] }>(
          url,
          "{ activity(first: 100) { verb } }",
          {},
          user.auth,
        );
        return activity.some((a) => a.verb === verb) ? true : undefined;
      },
      { timeoutMs: 15_000, what: `${user.name}'s ${verb} activity` },
    );
  const createPost = async (user: TestUser, title: string) =>
    (
      await ok<{ createPost: { id: string } }>(
        url,
        "mutation($input: CreatePostInput!) { createPost(input: $input) { id } }",
        { input: { title, body: `${title}, the body` } },
        user.auth,
      )
    ).createPost.id;
  const remind = async (user: TestUser, title: string) =>
    (
      await ok<{ scheduleReminder: { id: string } }>(
        url,
        "mutation($input: ScheduleReminderInput!) { scheduleReminder(input: $input) { id } }",
        { input: { title, body: title, sendAt: new Date(Date.now() + 30 * 86_400_000).toISOString() } },
        user.auth,
      )
    ).scheduleReminder.id;
  const send = (recipientIds: string[], body: string) =>
    ok(
      url,
      "mutation($input: SendNotificationInput!) { sendNotification(input: $input) { id } }",
      { input: { recipientIds, title: "System notice", body, idempotencyKey: `setup-${randomInt(1e9)}` } },
      service,
    );

  // The bystander's post is fanned out before the canary follows, so it never reaches the canary.
  const bystanderPost = await createPost(bystander, "Bystander's post");
  await activityHas(bystander, "post.created");

  const canaryPost = await createPost(canary, "Canary's public post");
  await ok(url, "mutation($id: ID!) { follow(userId: $id) { id } }", { id: bystander.id }, canary.auth);
  const canaryReminder = await remind(canary, `Reminder ${marker}`);
  await ok(
    url,
    "mutation { updatePreferences(input: { kinds: [{ kind: NEW_POST, email: true }, { kind: NEW_FOLLOWER, inApp: false }] }) { digest } }",
    {},
    canary.auth,
  );
  await send([canary.id], `For the canary only: ${marker}`);

  const fuzzerPost = await createPost(fuzzer, "Fuzzer's post");
  const fuzzerReminder = await remind(fuzzer, "Fuzzer's reminder");
  await send([fuzzer.id], "For the fuzzer");
  await ok(url, "mutation($id: ID!) { follow(userId: $id) { id } }", { id: bystander.id }, fuzzer.auth);

  for (const user of [canary, fuzzer]) {
    const ids = await eventually(
      async () => {
        const page = await ok<{ notifications: { edges: { node: { id: string; kind: string } }[] } }>(
          url,
          NOTIFICATION_PAGE,
          { n: 100 },
          user.auth,
        );
        const kinds = page.notifications.edges.map((e) => e.node.kind);
        return kinds.includes("WELCOME") && kinds.includes("SYSTEM") ? page.notifications.edges : undefined;
      },
      { timeoutMs: 15_000, what: `${user.name}'s WELCOME and SYSTEM notifications` },
    );
    const welcome = ids.find((e) => e.node.kind === "WELCOME")?.node.id;
    await ok(url, "mutation($id: ID!) { markNotificationRead(id: $id) { id } }", { id: welcome }, user.auth);
  }
  await activityHas(canary, "post.created");
  await activityHas(fuzzer, "post.created");

  const canaryIds = await idsOf(url, canary, canaryPost, canaryReminder);
  const fuzzerIds = await idsOf(url, fuzzer, fuzzerPost, fuzzerReminder);
  const b64 = (text: string) => Buffer.from(text).toString("base64url");
  const hex = "6b04dd3b8252ce855395bab6";
  const [version, epoch, seq, id] = Buffer.from(fuzzerIds.streamCursor, "base64url").toString().split(":");
  const [, canaryEpoch] = Buffer.from(canaryIds.streamCursor, "base64url").toString().split(":");
  return {
    canary,
    fuzzer,
    bystander,
    canaryIds,
    fuzzerIds,
    bystanderPost,
    disposable,
    disposableRefreshToken: disposableLogin.refreshToken,
    disposableSessions: await sessionsOf(disposable),
    canarySessions: await sessionsOf(canary),
    ghostId: hex,
    marker,
    craftedCursors: [
      b64(JSON.stringify([1e300, hex])),
      b64(JSON.stringify([-8.64e15 - 1, hex])),
      b64(JSON.stringify([0, "zz"])),
      b64(JSON.stringify([Date.now(), { $ne: null }])),
      b64("[]"),
      b64('{"__proto__": 1}'),
      b64("\uD800"),
      "not a cursor",
      "====",
    ],
    craftedStreamCursors: [
      b64(`${version}:${epoch}:999999999999999:${id}`),
      b64(`${version}:${epoch}:0:0-0`),
      b64(`${version}:${epoch}:${seq}:99999999999999999999-99999999999999999999`),
      b64(`${version}:${canaryEpoch}:${seq}:${id}`),
      b64(`i2:${epoch}:${seq}:${id}`),
      b64(`${version}:${epoch}:${seq}:${id}:extra`),
      b64(`${version}:${epoch}:-1:${id}`),
      b64("x".repeat(150)),
    ],
  };
}

function hasField(schema: GraphQLSchema, type: string, field: string): boolean {
  const named = schema.getType(type);
  return isObjectType(named) && field in named.getFields();
}

const snapshotQuery = (schema: GraphQLSchema) => `query CanarySnapshot($n: Int, $post: ID!) {
  me { id displayName email followerCount createdAt }
  unreadCount
  current: notifications(first: $n) { edges { cursor node { ...N } } pageInfo { hasNextPage endCursor } }
  archived: notifications(first: $n, filter: { archived: true, status: ALL }) { edges { node { ...N } } }
  preferences { digest kinds { kind inApp email digest } }
  reminders { id title body sendAt createdAt }
  activity(first: $n) { id verb targetType targetId createdAt actor { id } }
  post(id: $post) { id title body createdAt author { id displayName email followerCount } }
  ${hasField(schema, "Query", "sessions") ? "sessions { id device createdAt current }" : ""}
}
fragment N on Notification {
  id kind title body readAt archivedAt createdAt
  actor { id displayName } post { id title } comment { id body } deliveries { channel status }
}`;

/** Everything the canary can see, once two reads a moment apart agree (background jobs settled). */
async function stableSnapshot(url: string, world: World, schema: GraphQLSchema): Promise<unknown> {
  let previous = "";
  return eventually(
    async () => {
      const r = await postRaw(
        url,
        { query: snapshotQuery(schema), variables: { n: 100, post: world.canaryIds.post } },
        world.canary.auth,
      );
      const current = JSON.stringify({ data: r.data, errors: r.errors });
      const settled = current === previous;
      previous = current;
      if (!settled) await new Promise((resolve) => setTimeout(resolve, 400));
      return settled ? (JSON.parse(current) as unknown) : undefined;
    },
    { timeoutMs: 20_000, what: "the canary's view to settle", intervalMs: 0 },
  );
}

interface SnapshotNode {
  id: string;
  kind: string;
  title: string;
  actor: { id: string } | null;
}

/** Notifications are matched by id (a new one shifts every position); the rest is compared path by path. */
function canaryChanges(before: unknown, after: unknown): string[] {
  if (typeof after === "string") return [`it could not be read: ${after}`];
  type Snapshot = { data?: Record<string, unknown> | null; errors?: unknown };
  const b = before as Snapshot;
  const a = after as Snapshot;
  const out: string[] = [];
  differences(b.errors, a.errors, "errors", out);
  const nodes = (s: Snapshot, list: string) =>
    new Map(
      ((s.data?.[list] as { edges?: { node: SnapshotNode }[] } | undefined)?.edges ?? []).map((e) => [
        e.node.id,
        e.node,
      ]),
    );
  for (const list of ["current", "archived"]) {
    const was = nodes(b, list);
    const now = nodes(a, list);
    const label = (n: SnapshotNode) => `${n.kind} "${n.title}"${n.actor ? ` by ${n.actor.id}` : ""}`;
    for (const [id, node] of now) if (!was.has(id)) out.push(`${list} notifications: ${label(node)} appeared`);
    for (const [id, node] of was) {
      const later = now.get(id);
      if (!later) out.push(`${list} notifications: ${label(node)} is gone`);
      else differences(node, later, `${list} notification ${node.kind} ${id}`, out);
    }
  }
  for (const key of new Set([...Object.keys(b.data ?? {}), ...Object.keys(a.data ?? {})])) {
    if (key !== "current" && key !== "archived") differences(b.data?.[key], a.data?.[key], key, out);
  }
  return out;
}

function differences(before: unknown, after: unknown, at = "", out: string[] = []): string[] {
  if (out.length >= 12) return out;
  if (
    typeof before !== typeof after ||
    Array.isArray(before) !== Array.isArray(after) ||
    before === null ||
    after === null
  ) {
    if (before !== after) out.push(`${at || "(root)"}: ${short(before)} → ${short(after)}`);
    return out;
  }
  if (typeof before !== "object") {
    if (before !== after) out.push(`${at}: ${short(before)} → ${short(after)}`);
    return out;
  }
  const a = before as Record<string, unknown>;
  const b = after as Record<string, unknown>;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) differences(a[key], b[key], `${at}.${key}`, out);
  return out;
}

const short = (value: unknown) => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
};

// ---------------------------------------------------------------------------------------------
// Callers

interface Tokens {
  fuzzer: string;
  disposable: string;
  wrongSecret: string;
  expired: string;
  algNone: string;
  ghost: string;
  badSubjects: [string, string][];
}

async function tokens(world: World): Promise<Tokens> {
  const key = new TextEncoder().encode(TEST_JWT_SECRET);
  // `sid` names a login where tokens belong to one; elsewhere it is an unknown claim, ignored.
  const sign = (sub: string, options: { secret?: Uint8Array; expiresAt?: number; sid?: string } = {}) =>
    new SignJWT({ sid: options.sid ?? randomBytes(12).toString("hex") })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(sub)
      .setIssuedAt()
      .setIssuer("herald")
      .setExpirationTime(options.expiresAt ?? "1h")
      .sign(options.secret ?? key);
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const subjects = ["not-an-id", "42", "zzzzzzzzzzzzzzzzzzzzzzzz", "😀", `${world.ghostId} `, "x".repeat(2000)];
  return {
    fuzzer: world.fuzzer.token,
    disposable: world.disposable.token,
    wrongSecret: await sign(world.canary.id, {
      secret: new TextEncoder().encode("not-the-secret-0123456789abcdef0123"),
    }),
    expired: await sign(world.fuzzer.id, { expiresAt: Math.floor(Date.now() / 1000) - 60 }),
    algNone: `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: world.canary.id, iss: "herald", exp: 9_999_999_999 })}.`,
    ghost: await sign(world.ghostId),
    badSubjects: [
      ...(await Promise.all(
        subjects.map(async (s): Promise<[string, string]> => [`subject ${describeValue(s)}`, await sign(s)]),
      )),
      [`login id "not-an-id"`, await sign(world.fuzzer.id, { sid: "not-an-id" })],
    ],
  };
}

function callers(t: Tokens): Caller[] {
  const w = CALLER_WEIGHTS;
  const user = (name: CallerName, token: string, kind: Caller["kind"], weight: number = w[name]): Caller => ({
    name,
    kind,
    headers: bearer(token),
    wsParams: { authorization: `Bearer ${token}` },
    weight,
  });
  const list: Caller[] = [
    { name: "anonymous", kind: "anonymous", headers: {}, wsParams: undefined, weight: w.anonymous },
    user("fuzzer", t.fuzzer, "user"),
    { ...user("fuzzer", t.disposable, "user"), name: DISPOSABLE },
    {
      ...user("service key + bearer", t.fuzzer, "service"),
      headers: { "x-api-key": TEST_SERVICE_KEY, ...bearer(t.fuzzer) },
    },
    {
      name: "service",
      kind: "service",
      headers: { "x-api-key": TEST_SERVICE_KEY },
      wsParams: { "x-api-key": TEST_SERVICE_KEY },
      weight: w.service,
    },
    {
      name: "wrong x-api-key",
      kind: "refused",
      headers: { "x-api-key": "wrong-key-0123456789" },
      wsParams: { "x-api-key": "wrong-key-0123456789" },
      weight: w["wrong x-api-key"],
    },
    user("JWT, wrong secret", t.wrongSecret, "refused"),
    user("JWT, expired", t.expired, "refused"),
    user("JWT, alg none", t.algNone, "refused"),
    user("garbage bearer", "not.a.token", "refused"),
    {
      name: "Basic auth",
      kind: "refused",
      headers: { authorization: "Basic dXNlcjpwYXNz" },
      wsParams: { authorization: "Basic dXNlcjpwYXNz" },
      weight: w["Basic auth"],
    },
    user("JWT, user that does not exist", t.ghost, "ghost"),
    ...t.badSubjects.map(([label, token]) => ({
      ...user("JWT, subject not an id", token, "ghost", w["JWT, subject not an id"] / t.badSubjects.length),
      name: `JWT, ${label}`,
    })),
  ];
  return list.filter((c) => c.weight > 0);
}

// ---------------------------------------------------------------------------------------------
// Planning: every argument slot of every root field gets every hostile value of its type.

interface Ctx {
  url: string;
  world: World;
  rnd: Random;
  schema: GraphQLSchema;
  now: number;
  callers: Caller[];
  /** The disposable user, standing in for the fuzzer in ENDS_LOGIN operations. */
  disposable: Caller;
}

/** Where a hostile value goes: an argument, a field of an input object, or a list's first item. */
interface Slot {
  path: (string | number)[];
  type: GraphQLInputType;
  name: string;
}

/** Operations that end the caller's login, or may: the fuzzer's token must outlive the run. */
// changePassword ends the caller's other logins, and both it and changeEmail change how the caller signs in.
const ENDS_LOGIN = new Set(["logout", "logoutEverywhere", "endSession", "refresh", "changePassword", "changeEmail"]);

/** Operations whose success legitimately changes another user: the canary must never be their target. */
const REACHES_OTHERS = new Set(["follow", "unfollow", "addComment", "sendNotification"]);

function slotsOf(args: readonly GraphQLArgument[]): Slot[] {
  const slots: Slot[] = [];
  const walk = (slotPath: (string | number)[], type: GraphQLInputType, name: string, depth: number) => {
    slots.push({ path: slotPath, type, name });
    if (depth > 4) return;
    const inner = isNonNullType(type) ? type.ofType : type;
    if (isListType(inner)) walk([...slotPath, 0], inner.ofType, `${name}[]`, depth + 1);
    else if (isInputObjectType(inner)) {
      for (const f of Object.values(inner.getFields())) walk([...slotPath, f.name], f.type, f.name, depth + 1);
    }
  };
  for (const arg of args) walk([arg.name], arg.type, arg.name, 0);
  return slots;
}

function otherUsersIds(world: World): Hostile[] {
  const c = world.canaryIds;
  return [
    { value: world.canary.id, label: "canary's user id" },
    ...c.notifications.map((id) => ({ value: id, label: "canary's notification id" })),
    { value: c.post, label: "canary's post id" },
    { value: c.reminder, label: "canary's reminder id" },
    { value: c.activity[0] ?? "", label: "canary's activity id" },
    ...world.canarySessions.map((id) => ({ value: id, label: "canary's session id" })),
    { value: world.bystander.id, label: "bystander's user id" },
    { value: world.ghostId, label: "unknown id" },
  ];
}

function afterHostiles(world: World): Hostile[] {
  const c = world.canaryIds;
  return [
    { value: c.cursor, label: "canary's page cursor" },
    { value: c.streamCursor, label: "canary's stream cursor" },
    { value: c.activity[0] ?? "", label: "canary's activity id" },
    ...world.craftedCursors.map((value, i) => ({ value, label: `crafted page cursor #${i}` })),
    ...world.craftedStreamCursors.map((value, i) => ({ value, label: `crafted stream cursor #${i}` })),
  ];
}

function baseline(ctx: Ctx, field: string, slot: string, type: GraphQLInputType, depth = 0): FuzzValue {
  const { rnd, world } = ctx;
  const inner = isNonNullType(type) ? type.ofType : type;
  if (!isNonNullType(type) && depth === 0 && rnd.chance(0.3)) return MISSING;
  if (isListType(inner)) return [baseline(ctx, field, slot, inner.ofType, depth + 1)];
  if (isInputObjectType(inner)) {
    const out: Record<string, FuzzValue> = {};
    for (const f of Object.values(inner.getFields())) {
      if (!isNonNullType(f.type) && rnd.chance(0.5)) continue;
      out[f.name] = baseline(ctx, field, f.name, f.type, depth + 1);
    }
    return out;
  }
  if (isEnumType(inner)) return rnd.pick(inner.getValues().map((v) => v.name));
  const f = world.fuzzerIds;
  const c = world.canaryIds;
  const day = 86_400_000;
  switch (`${field}.${slot}`) {
    case "register.email":
      return `fuzz.${rnd.hex(10)}@example.com`;
    case "login.email":
      return rnd.pick([world.fuzzer.email, world.canary.email, "nobody@example.com"]);
    case "login.password":
    case "register.password":
      return PASSWORD;
    case "sendNotification.idempotencyKey":
      return `fuzz-${rnd.hex(12)}`;
    case "sendNotification.recipientIds":
      return rnd.pick([world.fuzzer.id, world.bystander.id, world.canary.id]);
    case "follow.userId":
    case "unfollow.userId":
      return rnd.pick([world.bystander.id, world.fuzzer.id, world.ghostId, world.canary.id]);
    case "addComment.postId":
      return rnd.pick([world.bystanderPost, f.post, c.post]);
    case "post.id":
      return rnd.pick([c.post, world.bystanderPost, f.post]);
    case "cancelReminder.id":
      return rnd.pick([f.reminder, c.reminder]);
    case "activity.after":
      return rnd.pick([f.activity[0] ?? "", c.activity[0] ?? ""]);
    case "notifications.after":
      return rnd.pick([f.cursor, c.cursor]);
    case "refresh.refreshToken":
      return rnd.pick([world.disposableRefreshToken, "not a refresh token"]);
    case "endSession.id":
      return rnd.pick([...world.disposableSessions, world.ghostId]);
    case "inboxEvents.after":
      return rnd.pick([f.streamCursor, c.streamCursor, ...world.craftedStreamCursors.slice(0, 2)]);
  }
  switch (getNamedType(inner).name) {
    case "ID":
      return rnd.pick([...f.notifications, ...c.notifications, world.ghostId]);
    case "Int":
      return rnd.pick([1, 5, 20]);
    case "Boolean":
      return rnd.chance(0.5);
    case "DateTime":
      return new Date(ctx.now + (1 + rnd.int(200)) * day).toISOString();
    default:
      return slot === "displayName" ? "Fuzz Tester" : `fuzz ${slot}`;
  }
}

function setAt(root: Record<string, FuzzValue>, at: (string | number)[], value: FuzzValue): void {
  let node: FuzzValue = root;
  for (let i = 0; i < at.length - 1; i++) {
    const key = at[i] as string | number;
    const container = node as Record<string | number, FuzzValue>;
    let child = container[key];
    if (child === undefined || child === null || child === MISSING || typeof child !== "object") {
      child = typeof at[i + 1] === "number" ? [] : {};
      container[key] = child;
    }
    node = child;
  }
  (node as Record<string | number, FuzzValue>)[at[at.length - 1] as string | number] = value;
}

/** Swaps the canary's ids for the bystander's, for callers whose success would legitimately reach the canary. */
function spareCanary(value: FuzzValue, world: World): FuzzValue {
  if (value === world.canary.id) return world.bystander.id;
  if (value === world.canaryIds.post) return world.bystanderPost;
  if (Array.isArray(value)) return value.map((v) => spareCanary(v, world));
  if (value instanceof Raw) return value;
  if (value && typeof value === "object") {
    const out: Record<string, FuzzValue> = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, {
        value: spareCanary(v, world),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return value;
}

function pickCaller(ctx: Ctx, kinds?: readonly Caller["kind"][]): Caller {
  const pool = kinds ? ctx.callers.filter((c) => kinds.includes(c.kind)) : ctx.callers;
  return ctx.rnd.weighted(pool.map((c) => [c, c.weight] as const));
}

function pickTransport(ctx: Ctx, root: string, caller: Caller): Transport {
  if (root === "subscription") return "ws";
  const socketsUseful = caller.kind === "user" || caller.kind === "ghost";
  const ws = socketsUseful ? 0.25 : 0.04;
  if (root === "query")
    return ctx.rnd.weighted([
      ["http-post", 0.55],
      ["http-get", 0.2],
      ["ws", ws],
    ]);
  return ctx.rnd.weighted([
    ["http-post", 0.72],
    ["http-get", 0.03],
    ["ws", ws],
  ]);
}

function planAll(ctx: Ctx): Planned[] {
  const ops: Planned[] = [];
  const roots = [
    ["query", ctx.schema.getQueryType()],
    ["mutation", ctx.schema.getMutationType()],
    ["subscription", ctx.schema.getSubscriptionType()],
  ] as const;
  for (const [root, type] of roots) {
    if (!type) continue;
    for (const field of Object.values(type.getFields())) ops.push(...planField(ctx, root, field));
  }
  return ops;
}

interface Mutation {
  slot?: Slot;
  hostile?: Hostile;
  unknownArgument?: boolean;
  wrongVariableType?: boolean;
}

function planField(
  ctx: Ctx,
  root: "query" | "mutation" | "subscription",
  field: GraphQLField<unknown, unknown>,
): Planned[] {
  const { rnd, world } = ctx;
  const ops: Planned[] = [];
  const socketKinds = ["user", "ghost"] as const;
  const callerFor = () => (root === "subscription" && rnd.chance(0.9) ? pickCaller(ctx, socketKinds) : pickCaller(ctx));
  for (const slot of slotsOf(field.args)) {
    const values = [...hostilesFor(slot.type, slot.name, rnd, ctx.now)];
    if (isNonNullType(slot.type)) values.push({ value: null, label: "null for a required value" });
    values.push({ value: MISSING, label: "left out" });
    const named = getNamedType(slot.type);
    if (named.name === "ID") values.push(...otherUsersIds(world));
    if (slot.name === "after") values.push(...afterHostiles(world));
    // Mostly from a caller the resolver serves, so the value gets past authentication to the code
    // that has to refuse it; every caller still gets sane arguments below.
    const served = pickCaller(ctx, field.name === "sendNotification" ? ["service"] : ["user"]);
    for (const hostile of values) {
      ops.push(graphqlOp(ctx, root, field, rnd.chance(0.8) ? served : callerFor(), { slot, hostile }));
    }
  }
  // Each caller with sane arguments, so that every authorisation path runs.
  for (const caller of ctx.callers) {
    if (root === "subscription" && caller.kind !== "user" && caller.kind !== "ghost" && rnd.chance(0.7)) continue;
    for (let i = 0; i < 2; i++) ops.push(graphqlOp(ctx, root, field, caller, {}));
  }
  ops.push(graphqlOp(ctx, root, field, callerFor(), { unknownArgument: true }));
  if (field.args.length > 0) ops.push(graphqlOp(ctx, root, field, callerFor(), { wrongVariableType: true }));
  if (root === "subscription") {
    // Not served over HTTP: the refusal must still be a client error.
    for (const caller of ctx.callers.filter((c) => c.kind === "user" || c.kind === "anonymous")) {
      ops.push(
        graphqlOp(ctx, root, field, caller, {}, "http-post"),
        graphqlOp(ctx, root, field, caller, {}, "http-get"),
      );
    }
  }
  return ops;
}

function selectionFor(type: GraphQLOutputType, depth: number, rnd: Random): string {
  const named = getNamedType(type);
  if (!isObjectType(named)) return "";
  const parts: string[] = [];
  for (const f of Object.values(named.getFields())) {
    if (f.args.some((a) => isNonNullType(a.type))) continue;
    if (isLeafType(getNamedType(f.type))) parts.push(f.name);
    else if (depth < SELECTION_DEPTH) {
      const inner = selectionFor(f.type, depth + 1, rnd);
      if (inner) parts.push(`${f.name} ${inner}`);
    }
  }
  if (rnd.chance(0.1)) parts.push("__typename");
  return `{ ${parts.join(" ")} }`;
}

function wrongDeclaredType(type: GraphQLInputType, rnd: Random): string {
  if (isNonNullType(type) && rnd.chance(0.5)) return String(type.ofType);
  return rnd.pick(["String", "Int!", "[String]", "Boolean", "UnknownType", "NotificationKind", "LoginInput"]);
}

function graphqlOp(
  ctx: Ctx,
  root: "query" | "mutation" | "subscription",
  field: GraphQLField<unknown, unknown>,
  caller: Caller,
  mutation: Mutation,
  forcedTransport?: Transport,
): Planned {
  const { rnd, world } = ctx;
  // Over graphql-ws the service key is not read: "service key + bearer" acts there as the fuzzer.
  if (ENDS_LOGIN.has(field.name) && (caller.kind === "user" || caller.name === "service key + bearer")) {
    caller = ctx.disposable;
  }
  let args: Record<string, FuzzValue> = {};
  for (const arg of field.args) args[arg.name] = baseline(ctx, field.name, arg.name, arg.type);
  // The canary's password is no secret to this test, but a caller that knows it is the canary.
  const credentials = args["input"] as Record<string, FuzzValue> | undefined;
  if (field.name === "login" && credentials?.["email"] === world.canary.email) {
    credentials["password"] = "not the canary's password";
  }
  if (mutation.slot && mutation.hostile) setAt(args, mutation.slot.path, mutation.hostile.value);
  let spared = false;
  // A token naming no existing user is reported by ghostProblems; its legitimate effects on the
  // canary would only repeat that finding.
  if (
    REACHES_OTHERS.has(field.name) &&
    (caller.kind === "user" || caller.kind === "service" || caller.kind === "ghost")
  ) {
    const before = containsRaw(args) ? "" : JSON.stringify(toJson(args));
    args = spareCanary(args, world) as Record<string, FuzzValue>;
    spared = before !== "" && before !== JSON.stringify(toJson(args));
  }

  const transport = forcedTransport ?? pickTransport(ctx, root, caller);
  let mode: "inline" | "variables" | "mixed" = rnd.weighted([
    ["inline", 0.4],
    ["variables", 0.45],
    ["mixed", 0.15],
  ]);
  if (mutation.hostile?.variablesOnly || mutation.wrongVariableType) mode = "variables";
  if (mutation.hostile && containsRaw(mutation.hostile.value)) mode = "inline";

  const decls: string[] = [];
  const variables: Record<string, unknown> = {};
  const emit = (value: FuzzValue, type: GraphQLInputType | undefined, varChance: number, nested: number): string => {
    if (type && value !== MISSING && !containsRaw(value) && rnd.chance(varChance)) {
      const name = `v${decls.length}`;
      const declared = mutation.wrongVariableType && decls.length === 0 ? wrongDeclaredType(type, rnd) : String(type);
      decls.push(`$${name}: ${declared}`);
      variables[name] = toJson(value);
      return `$${name}`;
    }
    const nestedChance = mode === "mixed" ? 0.3 : 0;
    const inner = type && isNonNullType(type) ? type.ofType : type;
    if (Array.isArray(value) && nested < 8) {
      const item = inner && isListType(inner) ? inner.ofType : undefined;
      const items = value.filter((v) => v !== MISSING);
      return `[${items.map((v) => emit(v, item, nestedChance, nested + 1)).join(", ")}]`;
    }
    if (value && typeof value === "object" && !Array.isArray(value) && !containsRaw(value) && nested < 8) {
      const named = type ? getNamedType(type) : undefined;
      const fields = named && isInputObjectType(named) ? named.getFields() : {};
      const entries = Object.entries(value as Record<string, FuzzValue>).filter(([, v]) => v !== MISSING);
      return `{${entries.map(([k, v]) => `${k}: ${emit(v, fields[k]?.type, nestedChance, nested + 1)}`).join(", ")}}`;
    }
    return literal(value, type);
  };

  const printed: string[] = [];
  for (const arg of field.args) {
    const value = args[arg.name] as FuzzValue;
    if (value === MISSING) {
      // A variable declared and never given is another way of leaving a value out.
      if (mode !== "inline" && rnd.chance(0.3)) {
        const name = `v${decls.length}`;
        decls.push(`$${name}: ${String(arg.type)}`);
        printed.push(`${arg.name}: $${name}`);
      }
      continue;
    }
    const topChance = mode === "variables" ? 1 : mode === "mixed" ? 0.3 : 0;
    printed.push(`${arg.name}: ${emit(value, arg.type, topChance, 0)}`);
  }
  if (mutation.unknownArgument) printed.push("bogus: 1");

  const selection = rnd.chance(0.2)
    ? isLeafType(getNamedType(field.type))
      ? ""
      : "{ __typename }"
    : selectionFor(field.type, 1, rnd);
  const argText = printed.length > 0 ? `(${printed.join(", ")})` : "";
  const header = decls.length > 0 ? `${root} Fuzz(${decls.join(", ")})` : root;
  const query = `${header} { ${field.name}${argText} ${selection} }`;
  const input = describeMutation(mutation, args) + (spared ? " (the canary's id swapped for the bystander's)" : "");
  const target = `${root === "query" ? "Query" : root === "mutation" ? "Mutation" : "Subscription"}.${field.name}`;
  const op: Planned = {
    target,
    caller: caller.name,
    transport,
    mode,
    input,
    run: () =>
      transport === "ws"
        ? wsOperation(ctx, caller, { query, variables }, root === "subscription" ? "subscription" : "single", {
            root,
            field: field.name,
          })
        : httpOperation(ctx, caller, transport, { query, variables }, { root, field: field.name }),
  };
  return op;
}

function describeMutation(mutation: Mutation, args: Record<string, FuzzValue>): string {
  if (mutation.unknownArgument) return "an unknown argument";
  if (mutation.wrongVariableType) return "a variable declared with the wrong type";
  if (mutation.slot && mutation.hostile) {
    const at = mutation.slot.path
      .map((p) => (typeof p === "number" ? `[${p}]` : p))
      .join(".")
      .replace(/\.\[/g, "[");
    return `${at} = ${mutation.hostile.label}`;
  }
  const given = Object.entries(args)
    .filter(([, v]) => v !== MISSING)
    .map(([k, v]) => `${k}: ${describeValue(v)}`)
    .join(", ");
  return `sane arguments${given ? ` (${given})` : ""}`;
}

// ---------------------------------------------------------------------------------------------
// Transports and the checks every answer goes through

interface Exchange {
  status: number;
  contentType: string;
  text: string;
}

async function exchange(
  url: string,
  init: { method: string; path?: string; headers?: Record<string, string>; body?: string | Buffer; search?: string },
): Promise<Exchange> {
  const res = await fetch(`${url}${init.path ?? "/graphql"}${init.search ?? ""}`, {
    method: init.method,
    headers: init.headers ?? {},
    ...(init.body !== undefined ? { body: typeof init.body === "string" ? init.body : new Uint8Array(init.body) } : {}),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  return { status: res.status, contentType: res.headers.get("content-type") ?? "", text: await res.text() };
}

let requestCounter = 0;

/** A request id of our own, so the server's log line for a masked error can be found again. */
function requestIdHeader(): Record<string, string> {
  requestCounter += 1;
  return { "x-request-id": `fuzz-${SEED}-${requestCounter}` };
}

async function httpOperation(
  ctx: Ctx,
  caller: Caller,
  transport: Transport,
  request: { query: string; variables: Record<string, unknown>; operationName?: string },
  about: { root: string; field?: string },
): Promise<string[]> {
  const idHeader = requestIdHeader();
  const headers = {
    ...caller.headers,
    ...idHeader,
    accept: ctx.rnd.chance(0.8) ? "application/json" : "application/graphql-response+json",
  };
  const hasVariables = Object.keys(request.variables).length > 0;
  let answer: Exchange;
  const requestText = JSON.stringify(request);
  const search =
    `?query=${encodeURIComponent(request.query)}` +
    (hasVariables ? `&variables=${encodeURIComponent(JSON.stringify(request.variables))}` : "") +
    (request.operationName ? `&operationName=${encodeURIComponent(request.operationName)}` : "");
  try {
    // Node refuses request lines over 16 KB before Express sees them; such queries go by POST.
    if (transport === "http-get" && search.length < 8000) {
      answer = await exchange(ctx.url, { method: "GET", headers, search });
    } else {
      answer = await exchange(ctx.url, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: requestText,
      });
    }
  } catch (err) {
    return [`no HTTP answer: ${errorText(err)}`];
  }
  const problems = checkHttp(answer, requestText, ctx.world, idHeader["x-request-id"]);
  problems.push(...ghostProblems(caller, about, parseJson(answer.text)));
  return problems;
}

/**
 * A validly signed token for a user that does not exist is not a user: a mutation it makes must
 * be refused, or it writes data about nobody (a post without an author, a follow from no one).
 */
function ghostProblems(caller: Caller, about: { root: string; field?: string }, body: unknown): string[] {
  if (about.root !== "mutation" || !about.field || caller.kind !== "ghost") return [];
  // Signing up, in and refreshing authenticate by their arguments, not as the caller.
  if (about.field === "register" || about.field === "login" || about.field === "refresh") return [];
  const data = (body as { data?: Record<string, unknown> | null } | undefined)?.data;
  const value = data?.[about.field];
  return value !== undefined && value !== null
    ? ["a token naming no existing user was accepted (the mutation succeeded)"]
    : [];
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}

function checkHttp(
  answer: Exchange,
  requestText: string,
  world: World,
  requestId?: string,
  htmlAllowed = false,
): string[] {
  const problems: string[] = [];
  // `problem@@id`: the id the server logged the cause under, looked up when the report is written.
  const tag = (p: string) => (requestId && !p.includes("@@") ? `${p}@@${requestId}` : p);
  if (answer.status >= 500) problems.push(tag(`HTTP ${answer.status}`));
  const html = /text\/html/i.test(answer.contentType) || /^\s*<(!doctype|html)/i.test(answer.text);
  if (html && !htmlAllowed) problems.push(`HTTP ${answer.status} answered with HTML`);
  if (!htmlAllowed) {
    const body = parseJson(answer.text) as { errors?: unknown; data?: unknown } | undefined;
    if (body === undefined || body === null || typeof body !== "object") {
      if (!html)
        problems.push(
          `HTTP ${answer.status} answered with ${answer.contentType || "no content type"}, not JSON##${short(answer.text)}`,
        );
    } else {
      if (answer.status >= 400 && !Array.isArray(body.errors))
        problems.push(`HTTP ${answer.status} JSON without errors`);
      if (Array.isArray(body.errors)) problems.push(...checkErrors(body.errors).map(tag));
    }
  }
  problems.push(...checkLeaks(answer.text, requestText, world));
  return problems;
}

/** Codes answered, by code: a run mostly answered RATE_LIMITED tested little else. */
const codesSeen = new Map<string, number>();

function checkErrors(errors: unknown): string[] {
  if (!Array.isArray(errors)) return [`errors is not a list: ${short(errors)}`];
  const problems: string[] = [];
  for (const e of errors as { message?: unknown; extensions?: { code?: unknown; requestId?: unknown } }[]) {
    const code = e?.extensions?.code;
    codesSeen.set(String(code), (codesSeen.get(String(code)) ?? 0) + 1);
    const message = typeof e?.message === "string" ? normaliseMessage(e.message) : short(e?.message);
    // Herald's formatError masks with a requestId; a masked error without one came from elsewhere.
    const logged = typeof e?.extensions?.requestId === "string" ? `@@${e.extensions.requestId}` : "@@none";
    if (code === undefined) problems.push(`an error without extensions.code##"${message}"`);
    else if (code === "INTERNAL_SERVER_ERROR") problems.push(`INTERNAL_SERVER_ERROR: "${message}"${logged}`);
    else if (typeof code !== "string" || !ALLOWED_CODES.has(code))
      problems.push(`code ${short(code)} is not in the closed set##"${message}"`);
  }
  return problems;
}

/** Error messages echo names and positions: reduced so that one weakness reads as one line. */
function normaliseMessage(message: string): string {
  const text = message
    .replace(/\$v\d+/g, "$v")
    .replace(/line \d+, column \d+/g, "line L, column C")
    .replace(/"[^"]{60,}"/g, '"…"');
  return text.length > 140 ? `${text.slice(0, 140)}…` : text;
}

function checkLeaks(text: string, requestText: string, world: World): string[] {
  const problems: string[] = [];
  for (const [what, pattern] of LEAK_PATTERNS) {
    const found = pattern.exec(text);
    if (found && !requestText.includes(found[0].trim())) {
      const at = Math.max(0, found.index - 40);
      problems.push(`the answer contains ${what}##…${text.slice(at, found.index + 80).replace(/\s+/g, " ")}…`);
      break;
    }
  }
  for (const secret of [world.marker, world.canary.email]) {
    if (text.includes(secret) && !requestText.includes(secret))
      problems.push("the answer holds the canary's private data");
  }
  return problems;
}

function checkCloseCode(code: number, reason: string, requestText: string, world: World): string[] {
  const problems: string[] = [];
  if (BROKEN_CLOSE_CODES.has(code)) problems.push(`WebSocket closed with ${code}##"${reason}"`);
  problems.push(...checkLeaks(reason, requestText, world));
  return problems;
}

interface CloseLike {
  code: number;
  reason?: string;
}

const isClose = (value: unknown): value is CloseLike =>
  typeof value === "object" && value !== null && typeof (value as { code?: unknown }).code === "number";

/** One operation over graphql-ws, on a socket of its own so that a close names its cause. */
function wsOperation(
  ctx: Ctx,
  caller: Caller,
  payload: { query: string; variables: Record<string, unknown>; operationName?: string },
  kind: "subscription" | "single",
  about: { root: string; field?: string } = { root: "document" },
): Promise<string[]> {
  const connectionParams = caller.wsParams;
  const requestText = JSON.stringify({ payload, connectionParams });
  return new Promise((resolve) => {
    const problems: string[] = [];
    let finished = false;
    const client = createClient({
      url: `${ctx.url.replace(/^http/, "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams,
      lazy: true,
      retryAttempts: 0,
      on: {
        closed: (event) => {
          if (!finished && isClose(event))
            problems.push(...checkCloseCode(event.code, event.reason ?? "", requestText, ctx.world));
        },
      },
    });
    const finish = (timedOut: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (timedOut) problems.push(`no answer over WebSocket within ${REQUEST_TIMEOUT_MS} ms`);
      unsubscribe();
      // dispose() awaits the connection, so it rejects when the server refused the socket.
      Promise.resolve(client.dispose()).catch(() => {});
      resolve([...new Set(problems)]);
    };
    const timer = setTimeout(
      () => finish(kind !== "subscription"),
      kind === "subscription" ? SUBSCRIPTION_LISTEN_MS : REQUEST_TIMEOUT_MS,
    );
    const unsubscribe = client.subscribe(
      {
        query: payload.query,
        variables: payload.variables,
        ...(payload.operationName ? { operationName: payload.operationName } : {}),
      },
      {
        next: (result) => {
          const r = result as { errors?: unknown };
          if (r.errors) problems.push(...checkErrors(r.errors));
          problems.push(...checkLeaks(JSON.stringify(result), requestText, ctx.world));
          problems.push(...ghostProblems(caller, about, result));
          if (kind === "subscription") finish(false);
        },
        error: (err) => {
          if (Array.isArray(err)) {
            problems.push(...checkErrors(err), ...checkLeaks(JSON.stringify(err), requestText, ctx.world));
          } else if (isClose(err)) {
            problems.push(...checkCloseCode(err.code, err.reason ?? "", requestText, ctx.world));
          } else {
            problems.push(`WebSocket failed: ${errorText(err)}`);
          }
          finish(false);
        },
        complete: () => finish(false),
      },
    );
  });
}

/** A socket of our own, speaking the protocol by hand, to send frames no client library would. */
async function rawFrames(
  ctx: Ctx,
  frames: (string | Buffer)[],
  options: { init?: unknown; protocol?: string | string[]; label: string },
): Promise<string[]> {
  const problems: string[] = [];
  const requestText = frames.map((f) => f.toString()).join("\n") + JSON.stringify(options.init ?? null);
  const socket = new WebSocket(`${ctx.url.replace(/^http/, "ws")}/graphql`, options.protocol ?? "graphql-transport-ws");
  const messages: string[] = [];
  let waiter: ((message: string | undefined) => void) | undefined;
  let closed: CloseLike | undefined;
  const closedPromise = new Promise<void>((resolve) => {
    socket.on("close", (code, reason) => {
      closed = { code, reason: reason.toString() };
      waiter?.(undefined);
      resolve();
    });
  });
  socket.on("error", () => {});
  socket.on("message", (data) => {
    const text = (data as Buffer).toString();
    messages.push(text);
    waiter?.(text);
  });
  const waitFor = (predicate: (m: string) => boolean, ms: number) =>
    new Promise<boolean>((resolve) => {
      if (messages.some(predicate)) return resolve(true);
      if (closed) return resolve(false);
      const timer = setTimeout(() => {
        waiter = undefined;
        resolve(false);
      }, ms);
      waiter = (m) => {
        if (m === undefined || predicate(m)) {
          clearTimeout(timer);
          waiter = undefined;
          resolve(m !== undefined);
        }
      };
    });
  const opened = await new Promise<boolean>((resolve) => {
    socket.once("open", () => resolve(true));
    socket.once("close", () => resolve(false));
    socket.once("unexpected-response", (_req, res) => {
      problems.push(
        ...(res.statusCode && res.statusCode >= 500 ? [`WebSocket upgrade answered ${res.statusCode}`] : []),
      );
      resolve(false);
    });
  });
  if (opened) {
    if (options.init !== undefined) {
      socket.send(JSON.stringify({ type: "connection_init", payload: options.init }));
      await waitFor((m) => m.includes('"connection_ack"'), 3000);
    }
    for (const frame of frames) if (socket.readyState === WebSocket.OPEN) socket.send(frame);
    // A pong answered after the frames means the socket survived them.
    if (socket.readyState === WebSocket.OPEN) {
      const before = messages.length;
      socket.send(JSON.stringify({ type: "ping" }));
      await waitFor((m) => m.includes('"pong"') && messages.indexOf(m) >= before, 2000);
    }
    if (socket.readyState === WebSocket.OPEN) socket.close(1000);
    await Promise.race([closedPromise, new Promise((r) => setTimeout(r, 2000))]);
  }
  if (socket.readyState !== WebSocket.CLOSED) socket.terminate();
  if (closed) problems.push(...checkCloseCode(closed.code, closed.reason ?? "", requestText, ctx.world));
  for (const text of messages) {
    const message = parseJson(text) as { type?: string; payload?: unknown } | undefined;
    if (message?.type === "error") problems.push(...checkErrors(message.payload));
    if (message?.type === "next") {
      const errors = (message.payload as { errors?: unknown } | undefined)?.errors;
      if (errors) problems.push(...checkErrors(errors));
    }
    problems.push(...checkLeaks(text, requestText, ctx.world));
  }
  return [...new Set(problems)];
}

// ---------------------------------------------------------------------------------------------
// Fixed hostile sets: HTTP bodies, WebSocket frames, and documents no schema walk produces

function fixedOp(
  target: string,
  caller: string,
  transport: string,
  input: string,
  run: () => Promise<string[]>,
): Planned {
  return { target, caller, transport, mode: "-", input, run };
}

function hostileHttp(ctx: Ctx): Planned[] {
  const { world } = ctx;
  const json = "application/json";
  const typename = '{"query":"{ __typename }"}';
  const specs: {
    label: string;
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    search?: string;
    htmlAllowed?: boolean;
  }[] = [
    { label: "not JSON", body: "{not json" },
    { label: "truncated JSON", body: '{"query":"{ me { id } }"' },
    { label: "null", body: "null" },
    { label: "a bare string", body: '"{ __typename }"' },
    { label: "a number", body: "42" },
    { label: "true", body: "true" },
    { label: "an empty array", body: "[]" },
    { label: "a batch of two", body: `[${typename},${typename}]` },
    { label: "an empty body", body: "" },
    { label: "whitespace only", body: "   \n " },
    { label: "NUL bytes after the JSON", body: `${typename}\u0000\u0000` },
    { label: "NUL bytes only", body: "\u0000\u0000\u0000" },
    { label: "an escaped NUL in the query", body: '{"query":"{ __typename \\u0000 }"}' },
    { label: "a lone surrogate escape in the query", body: '{"query":"{ __typename } #\\ud800"}' },
    {
      label: "invalid UTF-8",
      body: Buffer.concat([
        Buffer.from('{"query":"{ __typename }","x":"'),
        Buffer.from([0xff, 0xfe, 0xc3]),
        Buffer.from('"}'),
      ]),
    },
    { label: "a UTF-8 byte order mark", body: `\uFEFF${typename}` },
    {
      label: "content-type charset=utf-16 on a UTF-8 body",
      headers: { "content-type": `${json}; charset=utf-16` },
      body: typename,
    },
    {
      label: "a UTF-16LE body declared as such",
      headers: { "content-type": `${json}; charset=utf-16le` },
      body: Buffer.from(typename, "utf16le"),
    },
    { label: "content-type charset=bogus", headers: { "content-type": `${json}; charset=bogus` }, body: typename },
    { label: "content-encoding gzip on a plain body", headers: { "content-encoding": "gzip" }, body: typename },
    { label: "content-encoding deflate on a plain body", headers: { "content-encoding": "deflate" }, body: typename },
    { label: "content-encoding br on a plain body", headers: { "content-encoding": "br" }, body: typename },
    { label: "content-encoding zzz", headers: { "content-encoding": "zzz" }, body: typename },
    { label: "a gzipped body", headers: { "content-encoding": "gzip" }, body: gzipSync(typename) },
    {
      label: "a gzip bomb (20 MB inflated)",
      headers: { "content-encoding": "gzip" },
      body: gzipSync(`{"query":"{ __typename }","x":"${"a".repeat(20 * 1024 * 1024)}"}`),
    },
    { label: "content-type text/plain", headers: { "content-type": "text/plain" }, body: typename },
    {
      label: "content-type form-urlencoded",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "query=%7B__typename%7D",
    },
    {
      label: "content-type multipart/form-data",
      headers: { "content-type": "multipart/form-data; boundary=x" },
      body: `--x\r\nContent-Disposition: form-data; name="query"\r\n\r\n{ __typename }\r\n--x--`,
    },
    {
      label: "content-type application/graphql",
      headers: { "content-type": "application/graphql" },
      body: "{ __typename }",
    },
    { label: "content-type application/xml", headers: { "content-type": "application/xml" }, body: "<query/>" },
    { label: "no content-type", headers: { "content-type": "" }, body: Buffer.from(typename) },
    {
      label: "a body over the size limit",
      body: `{"query":"{ __typename }","x":"${"a".repeat(BODY_LIMIT_BYTES + 1024)}"}`,
    },
    { label: "query is a number", body: '{"query":5}' },
    { label: "query is null", body: '{"query":null}' },
    { label: "query is an object", body: '{"query":{}}' },
    { label: "query is a list", body: '{"query":["{ __typename }"]}' },
    { label: "no query", body: "{}" },
    { label: "variables is a string", body: '{"query":"{ __typename }","variables":"{}"}' },
    { label: "variables is a list", body: '{"query":"{ __typename }","variables":[1]}' },
    { label: "variables is a number", body: '{"query":"{ __typename }","variables":5}' },
    { label: "operationName is a number", body: '{"query":"{ __typename }","operationName":5}' },
    { label: "operationName names nothing", body: '{"query":"query A { __typename }","operationName":"Nope"}' },
    { label: "two anonymous operations", body: '{"query":"{ __typename } { __typename }"}' },
    { label: "two operations, no operationName", body: '{"query":"query A { __typename } query B { __typename }"}' },
    { label: "extensions is a string", body: '{"query":"{ __typename }","extensions":"x"}' },
    { label: "an unknown persisted query", body: '{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}' },
    {
      label: "a persisted query of version 2",
      body: '{"extensions":{"persistedQuery":{"version":2,"sha256Hash":"abc"}}}',
    },
    {
      label: "a persisted query whose hash does not match",
      body: '{"query":"{ __typename }","extensions":{"persistedQuery":{"version":1,"sha256Hash":"0000"}}}',
    },
    { label: "__proto__ in the body", body: '{"__proto__":{"query":"{ __typename }"},"query":"{ __typename }"}' },
    {
      label: "a variable of 1e400",
      body: '{"query":"query($f: Int) { activity(first: $f) { id } }","variables":{"f":1e400}}',
    },
    {
      label: "a variable of -0",
      body: '{"query":"query($f: Int) { activity(first: $f) { id } }","variables":{"f":-0}}',
    },
    {
      label: "a variable nested 100,000 deep",
      body: `{"query":"query($f: Int) { activity(first: $f) { id } }","variables":{"f":${"[".repeat(100_000)}${"]".repeat(100_000)}}}`,
    },
    { label: "an 8 KB bearer token", headers: { authorization: `Bearer ${"a".repeat(8 * 1024)}` }, body: typename },
    { label: "a bearer scheme without a token", headers: { authorization: "Bearer" }, body: typename },
    { label: "a bearer with two tokens", headers: { authorization: "Bearer a.b.c d.e.f" }, body: typename },
    { label: "an empty x-api-key", headers: { "x-api-key": " " }, body: typename },
    { label: "accept text/html on POST", headers: { accept: "text/html" }, body: typename },
    { label: "accept application/xml", headers: { accept: "application/xml" }, body: typename },
    {
      label: "GET with a mutation",
      method: "GET",
      search: `?query=${encodeURIComponent("mutation { markAllNotificationsRead }")}`,
    },
    {
      label: "GET with variables not JSON",
      method: "GET",
      search: `?query=${encodeURIComponent("query($f: Int) { activity(first: $f) { id } }")}&variables=%7Bbad`,
    },
    {
      label: "GET with variables a list",
      method: "GET",
      search: `?query=${encodeURIComponent("{ __typename }")}&variables=%5B1%5D`,
    },
    { label: "GET with query twice", method: "GET", search: "?query=%7B__typename%7D&query=%7B__typename%7D" },
    { label: "GET with query[a]", method: "GET", search: "?query[a]=b" },
    { label: "GET without query", method: "GET", search: "?variables=%7B%7D" },
    { label: "GET with extensions not JSON", method: "GET", search: "?query=%7B__typename%7D&extensions=%7Bx" },
    { label: "GET with a lone surrogate escape", method: "GET", search: "?query=%7B__typename%7D%ED%A0%80" },
    { label: "GET with bad percent-encoding", method: "GET", search: "?query=%E0%A4%A&variables=%" },
    { label: "PUT", method: "PUT", body: typename },
    { label: "DELETE", method: "DELETE" },
    { label: "PATCH", method: "PATCH", body: typename },
    { label: "an unknown path", method: "GET", path: "/nope" },
    { label: "POST to an unknown path", path: "/nope", body: typename },
    { label: "a path under /graphql", method: "POST", path: "/graphql/extra", body: typename },
    {
      label: "GET /unsubscribe with a garbage token",
      method: "GET",
      path: "/unsubscribe",
      search: "?token=garbage",
      htmlAllowed: true,
    },
    {
      label: "POST /unsubscribe with a garbage token",
      method: "POST",
      path: "/unsubscribe",
      search: "?token=garbage",
      htmlAllowed: true,
    },
    {
      label: "POST /unsubscribe with token twice",
      method: "POST",
      path: "/unsubscribe",
      search: "?token=a&token=b",
      htmlAllowed: true,
    },
    {
      label: "POST /unsubscribe with a lone surrogate",
      method: "POST",
      path: "/unsubscribe",
      search: "?token=%ED%A0%80",
      htmlAllowed: true,
    },
    {
      label: "GET /unsubscribe with a huge token",
      method: "GET",
      path: "/unsubscribe",
      search: `?token=${"a".repeat(7000)}`,
      htmlAllowed: true,
    },
  ];
  const ops: Planned[] = [];
  const httpCallers = [
    ctx.callers.find((c) => c.kind === "user"),
    ctx.callers.find((c) => c.kind === "anonymous"),
  ].filter((c): c is Caller => c !== undefined);
  for (const spec of specs) {
    for (const caller of httpCallers) {
      const method = spec.method ?? "POST";
      ops.push(
        fixedOp(`HTTP ${method} ${spec.path ?? "/graphql"}`, caller.name, "http", spec.label, async () => {
          const headers: Record<string, string> = {
            accept: json,
            ...(spec.body !== undefined ? { "content-type": json } : {}),
            ...caller.headers,
            ...requestIdHeader(),
            ...spec.headers,
          };
          for (const [k, v] of Object.entries(headers)) if (v === "") delete headers[k];
          try {
            const answer = await exchange(ctx.url, {
              method,
              headers,
              ...(spec.path ? { path: spec.path } : {}),
              ...(spec.body !== undefined ? { body: spec.body } : {}),
              ...(spec.search ? { search: spec.search } : {}),
            });
            return checkHttp(
              answer,
              spec.body?.toString().slice(0, 10_000) ?? spec.search ?? "",
              world,
              headers["x-request-id"],
              spec.htmlAllowed,
            );
          } catch (err) {
            return [`no HTTP answer: ${errorText(err)}`];
          }
        }),
      );
    }
  }
  // Unsubscribe links signed with the right secret but naming no user, or no valid user id.
  for (const sub of [world.ghostId, "not-an-id"]) {
    ops.push(
      fixedOp("HTTP POST /unsubscribe", "anonymous", "http", `a signed link for user ${sub}`, async () => {
        const token = await new SignJWT({ kind: "SYSTEM" })
          .setProtectedHeader({ alg: "HS256" })
          .setSubject(sub)
          .setAudience("herald:unsubscribe")
          .setIssuedAt()
          .setExpirationTime("1h")
          .sign(new TextEncoder().encode(TEST_JWT_SECRET));
        try {
          const answer = await exchange(ctx.url, { method: "POST", path: "/unsubscribe", search: `?token=${token}` });
          return checkHttp(answer, "", world, undefined, true);
        } catch (err) {
          return [`no HTTP answer: ${errorText(err)}`];
        }
      }),
    );
  }
  return ops;
}

function hostileFrames(ctx: Ctx): Planned[] {
  const auth = { authorization: `Bearer ${ctx.world.fuzzer.token}` };
  const sub = (payload: unknown, id: unknown = "1") => JSON.stringify({ id, type: "subscribe", payload });
  const live = "subscription { unreadCountChanged }";
  const specs: { label: string; frames: (string | Buffer)[]; init?: unknown; protocol?: string | string[] }[] = [
    { label: "invalid JSON", frames: ["{not json"] },
    {
      label: "a next message from the client",
      frames: [JSON.stringify({ id: "1", type: "next", payload: { data: {} } })],
    },
    { label: "an error message from the client", frames: [JSON.stringify({ id: "1", type: "error", payload: [] })] },
    { label: "connection_ack from the client", frames: [JSON.stringify({ type: "connection_ack" })] },
    { label: "an unknown message type", frames: [JSON.stringify({ type: "bogus" })] },
    { label: "no type", frames: [JSON.stringify({ id: "1" })] },
    { label: "null", frames: ["null"] },
    { label: "a list", frames: ["[]"] },
    { label: "a number", frames: ["42"] },
    { label: "a string", frames: ['"subscribe"'] },
    {
      label: "a 5 MB message",
      frames: [JSON.stringify({ type: "ping", payload: { x: "a".repeat(5 * 1024 * 1024) } })],
    },
    { label: "5 MB of invalid JSON", frames: ["{".repeat(5 * 1024 * 1024)] },
    { label: "a binary frame of invalid UTF-8", frames: [Buffer.from([0xff, 0xfe, 0x00, 0xc3])] },
    { label: "NUL bytes", frames: ["\u0000\u0000"] },
    { label: "a lone surrogate escape", frames: ['{"type":"ping","payload":{"x":"\\ud800"}}'] },
    { label: "subscribe with a null payload", frames: [sub(null)] },
    { label: "subscribe with a string payload", frames: [sub("{ __typename }")] },
    { label: "subscribe with query a number", frames: [sub({ query: 5 })] },
    { label: "subscribe without query", frames: [sub({})] },
    { label: "subscribe with variables a string", frames: [sub({ query: live, variables: "x" })] },
    { label: "subscribe with variables a list", frames: [sub({ query: live, variables: [1] })] },
    { label: "subscribe with extensions a number", frames: [sub({ query: live, extensions: 5 })] },
    { label: "subscribe with operationName a number", frames: [sub({ query: live, operationName: 5 })] },
    { label: "subscribe without id", frames: [JSON.stringify({ type: "subscribe", payload: { query: live } })] },
    { label: "subscribe with id a number", frames: [sub({ query: live }, 5)] },
    { label: "subscribe with an empty id", frames: [sub({ query: live }, "")] },
    { label: "subscribe with a 100 KB id", frames: [sub({ query: live }, "i".repeat(HUGE))] },
    { label: "the same id twice", frames: [sub({ query: live }), sub({ query: live })] },
    { label: "complete for an unknown id", frames: [JSON.stringify({ id: "nope", type: "complete" })] },
    {
      label: "a variable of the wrong type",
      frames: [sub({ query: "subscription($a: String) { inboxEvents(after: $a) { cursor } }", variables: { a: 5 } })],
    },
    {
      label: "a query with a variable of the wrong type",
      frames: [sub({ query: "query($f: Int) { activity(first: $f) { id } }", variables: { f: "x" } })],
    },
    { label: "a 1 MB query", frames: [sub({ query: `{ __typename ${"#".repeat(1024 * 1024)}\n}` })] },
    { label: "subscribe before connection_init", frames: [sub({ query: live })], init: undefined },
    { label: "connection_init twice", frames: [JSON.stringify({ type: "connection_init", payload: auth })] },
    { label: "connection_init with a string payload", frames: [], init: "Bearer x" },
    { label: "connection_init with authorization a number", frames: [], init: { authorization: 5 } },
    { label: "connection_init with authorization an object", frames: [], init: { authorization: { $ne: null } } },
    {
      label: "connection_init with authorization a list",
      frames: [],
      init: { authorization: [`Bearer ${ctx.world.fuzzer.token}`] },
    },
    { label: "connection_init with a lone surrogate token", frames: [], init: { authorization: "Bearer \uD800" } },
    { label: "connection_init with a 100 KB token", frames: [], init: { authorization: `Bearer ${"a".repeat(HUGE)}` } },
    { label: "an unknown subprotocol", frames: [], init: auth, protocol: "bogus" },
    {
      label: "the legacy subscriptions-transport-ws protocol",
      frames: [JSON.stringify({ type: "start", id: "1", payload: { query: live } })],
      init: auth,
      protocol: "graphql-ws",
    },
  ];
  return specs.map((spec) =>
    fixedOp("WebSocket frame", "fuzzer", "ws-raw", spec.label, () =>
      rawFrames(ctx, spec.frames, {
        label: spec.label,
        init: "init" in spec ? spec.init : auth,
        ...(spec.protocol ? { protocol: spec.protocol } : {}),
      }),
    ),
  );
}

function hostileDocuments(ctx: Ctx): Planned[] {
  const introspectionDepth = `{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }`;
  const docs: { label: string; query: string; variables?: Record<string, unknown>; operationName?: string }[] = [
    { label: "selection nested past the depth limit", query: introspectionDepth },
    { label: "16 aliases", query: `{ ${Array.from({ length: 16 }, (_, i) => `a${i}: __typename`).join(" ")} }` },
    { label: "5,000 aliases", query: `{ ${Array.from({ length: 5000 }, (_, i) => `a${i}: __typename`).join(" ")} }` },
    { label: "2,000 identical fields", query: `{ ${"me { id } ".repeat(2000)} }` },
    { label: "a fragment cycle", query: "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }" },
    { label: "a fragment on an unknown type", query: "query { ...A } fragment A on Nope { id }" },
    { label: "braces nested 20,000 deep", query: `${"{ me ".repeat(20_000)}${"}".repeat(20_000)}` },
    {
      label: "a list literal nested 20,000 deep",
      query: `{ post(id: ${"[".repeat(20_000)}"x"${"]".repeat(20_000)}) { id } }`,
    },
    {
      label: "an object literal nested 5,000 deep",
      query: `{ post(id: ${"{a: ".repeat(5000)}1${"}".repeat(5000)}) { id } }`,
    },
    { label: "@skip(if:) with a string", query: '{ me @skip(if: "yes") { id } }' },
    { label: "@include with an undefined variable", query: "{ me @include(if: $nope) { id } }" },
    { label: "an unknown directive", query: "{ me @bogus { id } }" },
    { label: "@skip twice", query: "{ me @skip(if: false) @skip(if: false) { id } }" },
    { label: "a variable declared twice", query: "query($a: Int, $a: Int) { activity(first: $a) { id } }" },
    { label: "a variable of an input type used as a scalar", query: "query($a: LoginInput) { post(id: $a) { id } }" },
    { label: "an unused variable", query: "query($a: Int) { __typename }", variables: { a: "x" } },
    {
      label: "a mutation and a query, operationName the mutation, over an unknown name",
      query: "query A { __typename } mutation B { markAllNotificationsRead }",
      operationName: "C",
    },
    {
      label: "a subscription over HTTP, named among queries",
      query: "query A { __typename } subscription B { unreadCountChanged }",
      operationName: "B",
    },
    {
      label: "introspection of a lone surrogate type name",
      query: "query($n: String!) { __type(name: $n) { name } }",
      variables: { n: "\uD800" },
    },
    {
      label: "__type with a 100 KB name",
      query: "query($n: String!) { __type(name: $n) { name } }",
      variables: { n: "a".repeat(HUGE) },
    },
    { label: "900 KB of comments", query: `${"#".repeat(900 * 1024)}\n{ __typename }` },
    { label: "100,000 tokens", query: `{ __typename ${"@skip(if: false) ".repeat(20_000)} }` },
    { label: "an unterminated string", query: '{ post(id: "abc) { id } }' },
    { label: "a block string with NUL", query: '{ post(id: """\u0000""") { id } }' },
    { label: "a document of emoji", query: "😀".repeat(10_000) },
    {
      label: "too many variable errors",
      query: `query(${Array.from({ length: 60 }, (_, i) => `$v${i}: Int`).join(", ")}) { __typename }`,
      variables: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`v${i}`, "x"])),
    },
    {
      label: "a list variable with 200 wrong items",
      query: "query($k: [NotificationKind!]) { notifications(filter: { kinds: $k }) { pageInfo { hasNextPage } } }",
      variables: { k: Array.from({ length: 200 }, () => 5) },
    },
    {
      label: "a deep variable in a list position",
      query: "query($k: [NotificationKind!]) { notifications(filter: { kinds: $k }) { pageInfo { hasNextPage } } }",
      variables: { k: deepList(500, "SYSTEM") },
    },
  ];
  const ops: Planned[] = [];
  const fuzzer = ctx.callers.find((c) => c.kind === "user") as Caller;
  const anonymous = ctx.callers.find((c) => c.kind === "anonymous") as Caller;
  for (const doc of docs) {
    const request = {
      query: doc.query,
      variables: doc.variables ?? {},
      ...(doc.operationName ? { operationName: doc.operationName } : {}),
    };
    for (const caller of [fuzzer, anonymous]) {
      ops.push(
        fixedOp("document", caller.name, "http-post", doc.label, () =>
          httpOperation(ctx, caller, "http-post", request, { root: "document" }),
        ),
      );
    }
    ops.push(
      fixedOp("document", fuzzer.name, "http-get", doc.label, () =>
        httpOperation(ctx, fuzzer, "http-get", request, { root: "document" }),
      ),
    );
    const listen = /subscription/.test(doc.query) ? "subscription" : "single";
    ops.push(fixedOp("document", fuzzer.name, "ws", doc.label, () => wsOperation(ctx, fuzzer, request, listen)));
  }
  return ops;
}

// ---------------------------------------------------------------------------------------------
// The report: one line per weakness, with the server's own account of masked errors

function serverErrors(lines: readonly string[]): Map<string, string> {
  const byRequest = new Map<string, string>();
  for (const line of lines) {
    const entry = parseJson(line) as { requestId?: string; err?: { type?: string; message?: string } } | undefined;
    if (!entry?.requestId || !entry.err) continue;
    const message = (entry.err.message ?? "").split("\n")[0] ?? "";
    byRequest.set(entry.requestId, normaliseCause(`${entry.err.type ?? "Error"}: ${message}`));
  }
  return byRequest;
}

/** Causes that differ only in the value or position they name are one weakness. */
function normaliseCause(cause: string): string {
  if (/^GraphQLError: Variable "\$\w+" /.test(cause))
    return 'GraphQLError: Variable "$…" got invalid value … (variable coercion)';
  return cause.length > 160 ? `${cause.slice(0, 160)}…` : cause;
}

function causeOf(requestId: string | undefined, logged: ReadonlyMap<string, string>): string {
  if (requestId === undefined) return "";
  if (requestId === "none") return " [no requestId: not masked by Herald's formatError, and not logged]";
  // graphql-ws's onError logs every error under the one id "ws": the log cannot tell which.
  if (requestId === "ws" || requestId === "unknown")
    return ` [requestId "${requestId}": the log cannot name the cause]`;
  const cause = logged.get(requestId);
  return cause ? ` [server log: ${cause}]` : "";
}

function formatReport(failures: readonly Failure[], lines: readonly string[]): string {
  const logged = serverErrors(lines);
  const groups = new Map<string, { targets: Set<string>; examples: Map<string, string>; count: number }>();
  for (const f of failures) {
    const [described = "", requestId] = f.problem.split("@@");
    const [problem = "", detail] = described.split("##");
    const key = `${problem}${causeOf(requestId, logged)}`;
    const group = groups.get(key) ?? { targets: new Set<string>(), examples: new Map<string, string>(), count: 0 };
    group.count++;
    const example = `${f.target} · ${f.caller} / ${f.transport}${f.mode !== "-" ? ` / ${f.mode}` : ""}: ${f.input}${detail ? ` → ${detail}` : ""}`;
    // The first example of each target comes first, so every target shows. Findings about the
    // whole run (the canary, the process) have no operation to show.
    if (f.caller === "-") group.examples.clear();
    else if (!group.targets.has(f.target)) group.examples.set(`0${f.target}${example}`, example);
    else group.examples.set(`1${example}`, example);
    group.targets.add(f.target);
    groups.set(key, group);
  }
  const sorted = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
  const out = [
    `${sorted.length} distinct weakness(es) in ${failures.length} failed operation(s). Replay: FUZZ_SEED=${SEED}`,
  ];
  for (const [key, group] of sorted) {
    const [title, ...more] = key.split("\n");
    out.push("", `• ${title} — ${group.count}× in ${[...group.targets].sort().join(", ")}`, ...more);
    const examples = [...group.examples.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, e]) => e);
    for (const example of examples.slice(0, 16)) out.push(`    ${example}`);
    if (examples.length > 16) out.push(`    … and ${examples.length - 16} more`);
  }
  return out.join("\n");
}
