// The client side of the Django-workload scenarios (load.ts): Herald's public GraphQL API used the
// way the reference implementation's benchmark uses its four JSON endpoints and its WebSocket.
import http from "node:http";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print, type ExecutionResult } from "graphql";
import type { Redis } from "ioredis";
import {
  BenchAddCommentDocument,
  BenchCreatePostDocument,
  BenchFollowDocument,
  BenchInboxEventsDocument,
  BenchInboxStartDocument,
  BenchNotificationAddedDocument,
  BenchRegisterDocument,
  type BenchInboxEventsSubscription,
  type BenchNotificationAddedSubscription,
} from "../generated/graphql.js";
import { bearer, connectWs, eventually, queryText, type WsConnection } from "../helpers/graphql-client.js";

export interface LoadUser {
  id: string;
  token: string;
}

/** Rejects when `promise` has not settled within `ms`; the request itself is left to finish or fail. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The four calls of the reference benchmark, each bounded by `timeoutMs` as its HTTP client is.
 * Sent with node:http over kept-alive connections, as the reference benchmark's aiohttp session
 * sends them: fetch() costs the client about twice the CPU per request, CPU the servers measured
 * beside it on the same cores would lose.
 */
export class LoadApi {
  // An idle connection is closed here after 4 s, before the server's keep-alive timeout (Node's
  // default, 5 s) closes it: a request sent on a connection the server is closing fails, which a
  // long soak at a steady rate with bursts can meet.
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256, timeout: 4_000 });

  constructor(
    private readonly url: string,
    private readonly tag: string,
    private readonly timeoutMs: number,
  ) {}

  async register(name: string): Promise<LoadUser> {
    const { register } = await this.call(
      BenchRegisterDocument,
      {
        input: { email: `${name}.${this.tag}@bench.example`, password: "correct horse battery", displayName: name },
      },
      {},
      "register",
    );
    return { id: register.user.id, token: register.token };
  }

  async createPost(author: LoadUser, title: string, body: string): Promise<string> {
    const { createPost } = await this.call(
      BenchCreatePostDocument,
      { input: { title, body } },
      bearer(author.token),
      "createPost",
    );
    return createPost.id;
  }

  async comment(author: LoadUser, postId: string, body: string): Promise<void> {
    await this.call(BenchAddCommentDocument, { input: { postId, body } }, bearer(author.token), "addComment");
  }

  async follow(follower: LoadUser, followee: LoadUser): Promise<void> {
    await this.call(BenchFollowDocument, { userId: followee.id }, bearer(follower.token), "follow");
  }

  /** The user's position in inboxEvents, as a client opening its inbox takes it: this starts their stream. */
  async streamCursor(user: LoadUser): Promise<string> {
    const { notifications } = await this.call(
      BenchInboxStartDocument,
      { first: 20 },
      bearer(user.token),
      "notifications.streamCursor",
    );
    return notifications.streamCursor;
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private async call<Data, Vars>(
    document: TypedDocumentNode<Data, Vars>,
    variables: Vars,
    headers: Record<string, string>,
    what: string,
  ): Promise<Data> {
    const query = queryText(document);
    const { status, result } = await within(
      this.post(JSON.stringify({ query, variables }), headers),
      this.timeoutMs,
      what,
    );
    if (result.errors || !result.data) {
      throw new Error(`GraphQL request failed (${status}): ${JSON.stringify(result.errors)}`);
    }
    return result.data as Data;
  }

  private post(body: string, headers: Record<string, string>): Promise<{ status: number; result: ExecutionResult }> {
    return postGraphql(`${this.url}/graphql`, this.agent, body, headers);
  }
}

/**
 * One GraphQL request over node:http: through `agent`'s kept-alive connections, or with `false`
 * on a connection of its own, as a client that has just come back opens one.
 */
export function postGraphql(
  url: string,
  agent: http.Agent | false,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; result: ExecutionResult }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          "content-length": Buffer.byteLength(body),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          try {
            const result = JSON.parse(Buffer.concat(chunks).toString("utf8")) as ExecutionResult;
            resolve({ status: res.statusCode ?? 0, result });
          } catch (err) {
            reject(new Error(`HTTP ${res.statusCode}: the answer is not JSON (${String(err)})`));
          }
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** One new notification's event (notificationAdded, or an ADDED of inboxEvents), stamped when graphql-ws handed it over. */
export interface Arrival {
  at: number;
  id: string;
  kind: string;
  body: string;
}

type Match = (event: Arrival) => boolean;

/** Which bodies an awaited event may have: exactly this one, or any that passes the test. */
export type BodyMatch = string | ((body: string) => boolean);

/** What the scenarios wait on: one user's new notifications, as a socket hands them over. */
export interface EventSource {
  /** The next event of `kind` (with a matching body, when given) within `timeoutMs`; undefined if none came. */
  next(kind: string, timeoutMs: number, body?: BodyMatch): Promise<Arrival | undefined>;
  drain(): void;
  /** Why the subscription ended, if it did. */
  readonly failed: string | undefined;
  close(): Promise<void>;
}

/**
 * Like the reference benchmark's socket, it queues every event on arrival and hands out the next
 * one that matches, dropping those before it; matching the body too keeps a late event from
 * standing in for another.
 */
abstract class QueuedEvents implements EventSource {
  private queue: Arrival[] = [];
  private waiter: { match: Match; resolve: (event: Arrival | undefined) => void } | undefined;
  private failure: string | undefined;

  protected constructor(private readonly connection: WsConnection) {}

  next(kind: string, timeoutMs: number, body?: BodyMatch): Promise<Arrival | undefined> {
    const bodyOk = (text: string) => (typeof body === "function" ? body(text) : body === undefined || text === body);
    const match: Match = (event) => event.kind === kind && bodyOk(event.body);
    while (this.queue.length > 0) {
      const event = this.queue.shift() as Arrival;
      if (match(event)) return Promise.resolve(event);
    }
    if (this.failure !== undefined) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      const finish = (event: Arrival | undefined) => {
        clearTimeout(timer);
        this.waiter = undefined;
        resolve(event);
      };
      this.waiter = { match, resolve: finish };
    });
  }

  drain(): void {
    this.queue = [];
  }

  get failed(): string | undefined {
    return this.failure;
  }

  close(): Promise<void> {
    return this.connection.dispose();
  }

  protected push(event: Arrival): void {
    if (!this.waiter) this.queue.push(event);
    else if (this.waiter.match(event)) this.waiter.resolve(event);
  }

  protected fail(reason: string): void {
    this.failure ??= reason;
    this.waiter?.resolve(undefined);
  }
}

/** A graphql-ws connection for `user`, once the server has acknowledged it. */
async function connectAs(apiUrl: string, user: LoadUser, timeoutMs: number): Promise<WsConnection> {
  const connection = connectWs(apiUrl, bearer(user.token));
  try {
    await within(
      new Promise<void>((resolve, reject) => {
        connection.client.on("connected", () => resolve());
        void connection.closed.then((code) => reject(new Error(`closed with ${code}`)));
      }),
      timeoutMs,
      "graphql-ws connection",
    );
  } catch (err) {
    await connection.dispose();
    throw err;
  }
  return connection;
}

/** One user's graphql-ws connection with a notificationAdded subscription. */
export class EventSocket extends QueuedEvents {
  private constructor(
    readonly user: LoadUser,
    connection: WsConnection,
  ) {
    super(connection);
  }

  /** Connected and subscribed; the subscription may still be on its way to Redis (see allListening). */
  static async open(apiUrl: string, user: LoadUser, timeoutMs: number): Promise<EventSocket> {
    const connection = await connectAs(apiUrl, user, timeoutMs);
    const socket = new EventSocket(user, connection);
    connection.client.subscribe<BenchNotificationAddedSubscription>(
      { query: print(BenchNotificationAddedDocument) },
      {
        next: (result) => {
          const at = performance.now();
          const event = result.data?.notificationAdded;
          if (event) socket.push({ at, id: event.id, kind: event.kind, body: event.body });
        },
        error: (err) => socket.fail(`subscription failed: ${JSON.stringify(err)}`),
        complete: () => socket.fail("the server ended the subscription"),
      },
    );
    return socket;
  }
}

/**
 * One user's graphql-ws connection following the inbox through inboxEvents from a position; each
 * ADDED event is handed out as the notification it carries. Counts what a client following the
 * stream must never see: a notification added twice, or a RESET.
 */
export class InboxEventSocket extends QueuedEvents {
  duplicates = 0;
  resets = 0;
  private readonly added = new Set<string>();

  private constructor(
    readonly user: LoadUser,
    connection: WsConnection,
  ) {
    super(connection);
  }

  /** Connected and subscribed from `after` (a streamCursor or an event's cursor): nothing after it is missed. */
  static async open(apiUrl: string, user: LoadUser, timeoutMs: number, after: string): Promise<InboxEventSocket> {
    const connection = await connectAs(apiUrl, user, timeoutMs);
    const socket = new InboxEventSocket(user, connection);
    connection.client.subscribe<BenchInboxEventsSubscription>(
      { query: print(BenchInboxEventsDocument), variables: { after } },
      {
        next: (result) => {
          const at = performance.now();
          const event = result.data?.inboxEvents;
          if (!event) return socket.fail(`subscription failed: ${JSON.stringify(result.errors)}`);
          if (event.type === "RESET") socket.resets += 1;
          if (event.type !== "ADDED" || !event.notification) return;
          const { id, kind, body } = event.notification;
          if (socket.added.has(id)) {
            socket.duplicates += 1;
            return;
          }
          socket.added.add(id);
          socket.push({ at, id, kind, body });
        },
        error: (err) => socket.fail(`subscription failed: ${JSON.stringify(err)}`),
        complete: () => socket.fail("the server ended the subscription"),
      },
    );
    return socket;
  }
}

/**
 * Until each user's notificationAdded subscription listens in Redis: only then can an event reach
 * its socket, so a missing event is Herald's loss and not the bench's haste.
 */
export async function allListening(redis: Redis, userIds: readonly string[], timeoutMs: number): Promise<void> {
  const batch = 1000;
  await eventually(
    async () => {
      for (let i = 0; i < userIds.length; i += batch) {
        const channels = userIds.slice(i, i + batch).map((id) => `INBOX:${id}`);
        const reply = (await redis.pubsub("NUMSUB", ...channels)) as (string | number)[];
        if (channels.some((_, j) => Number(reply[2 * j + 1]) === 0)) return undefined;
      }
      return true;
    },
    { timeoutMs, what: `${userIds.length} subscription(s) to listen in Redis`, intervalMs: 100 },
  );
}
