import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print, type ExecutionResult, type GraphQLFormattedError } from "graphql";
import { createClient, type Client } from "graphql-ws";
import type { Redis } from "ioredis";
import WebSocket from "ws";

export interface HttpResult<Data> {
  status: number;
  data: Data | null | undefined;
  errors: readonly GraphQLFormattedError[] | undefined;
}

// Each document's text, printed once: a benchmark sends the same few thousands of times.
const printed = new WeakMap<object, string>();

/** The document's text, as a client sends it. */
export function queryText(document: TypedDocumentNode<unknown, never>): string {
  let text = printed.get(document);
  if (text === undefined) {
    text = print(document);
    printed.set(document, text);
  }
  return text;
}

/** One GraphQL request over HTTP, as a client would send it. */
export async function gql<Data, Vars>(
  baseUrl: string,
  document: TypedDocumentNode<Data, Vars>,
  variables?: Vars,
  headers: Record<string, string> = {},
): Promise<HttpResult<Data>> {
  return postRaw<Data>(baseUrl, { query: queryText(document), variables }, headers);
}

export async function postRaw<Data = unknown>(
  baseUrl: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<HttpResult<Data>> {
  const res = await fetch(`${baseUrl}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as ExecutionResult<Data>;
  return { status: res.status, data: json.data, errors: json.errors };
}

/** The data of a request that must succeed; its errors otherwise. */
export async function gqlOk<Data, Vars>(
  baseUrl: string,
  document: TypedDocumentNode<Data, Vars>,
  variables?: Vars,
  headers: Record<string, string> = {},
): Promise<Data> {
  const result = await gql(baseUrl, document, variables, headers);
  if (result.errors || !result.data) {
    throw new Error(`GraphQL request failed (${result.status}): ${JSON.stringify(result.errors)}`);
  }
  return result.data;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export interface WsConnection {
  client: Client;
  /** Resolves with the close code once the server closes the socket. */
  closed: Promise<number>;
  dispose(): Promise<void>;
}

/** A graphql-ws client like a browser's: no retries, so a refusal shows up as a close code. */
export function connectWs(baseUrl: string, connectionParams: Record<string, unknown> | undefined): WsConnection {
  let onClosed: (code: number) => void = () => {};
  const closed = new Promise<number>((resolve) => (onClosed = resolve));
  const client = createClient({
    url: `${baseUrl.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams,
    lazy: false,
    retryAttempts: 0,
    // A refused or closed connection is observed through `closed`, not printed.
    onNonLazyError: () => {},
    on: { closed: (event) => onClosed((event as { code: number }).code) },
  });
  return { client, closed, dispose: () => client.dispose() as Promise<void> };
}

/** One query or mutation over an open graphql-ws client: its single result, errors included. */
export function wsRequest<Data, Vars>(
  client: Client,
  document: TypedDocumentNode<Data, Vars>,
  variables?: Vars,
): Promise<ExecutionResult<Data>> {
  return new Promise((resolve, reject) => {
    let result: ExecutionResult<Data> | undefined;
    client.subscribe<Data>(
      { query: queryText(document), ...(variables ? { variables } : {}) },
      {
        next: (value) => (result = value as ExecutionResult<Data>),
        error: (err) => {
          if (Array.isArray(err))
            resolve({ errors: err as GraphQLFormattedError[] } as unknown as ExecutionResult<Data>);
          else reject(err instanceof Error ? err : new Error(`graphql-ws: ${JSON.stringify(err)}`));
        },
        complete: () => (result ? resolve(result) : reject(new Error("the operation completed without a result"))),
      },
    );
  });
}

/**
 * A live subscription whose events are queued until a test takes them, so nothing that arrives
 * between two awaits is lost. `ready` resolves once the server has acknowledged the connection.
 */
export class Subscription<Data, Vars = Record<string, never>> {
  private readonly queue: ExecutionResult<Data>[] = [];
  private waiters: ((r: ExecutionResult<Data>) => void)[] = [];
  private failure: unknown;
  readonly done: Promise<void>;

  constructor(client: Client, document: TypedDocumentNode<Data, Vars>, variables?: Vars) {
    this.done = new Promise((resolve) => {
      client.subscribe<Data>(
        { query: print(document), ...(variables ? { variables } : {}) },
        {
          next: (value) => this.push(value as ExecutionResult<Data>),
          error: (err) => {
            this.failure = err;
            resolve();
          },
          complete: () => resolve(),
        },
      );
    });
  }

  private push(value: ExecutionResult<Data>): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(value);
    else this.queue.push(value);
  }

  /** The next event; rejects after `timeoutMs` so a missing event fails the test instead of hanging it. */
  next(timeoutMs = 5000): Promise<ExecutionResult<Data>> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(new Error(`subscription failed: ${JSON.stringify(this.failure)}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no subscription event within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (r: ExecutionResult<Data>) => {
        clearTimeout(timer);
        resolve(r);
      };
      this.waiters.push(waiter);
    });
  }

  /** Events received and not yet taken. */
  pending(): number {
    return this.queue.length;
  }

  error(): unknown {
    return this.failure;
  }
}

/** Polls `probe` until it returns a value; for state that appears asynchronously (a job's result). */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  options: { timeoutMs: number; what: string; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 20));
  }
}

/**
 * Waits until `subscribers` server-side subscriptions listen on a Redis channel: only then does an
 * event published on it reach the client, so a test may trigger it.
 */
export function subscribedInRedis(redis: Redis, channel: string, subscribers = 1): Promise<true> {
  return eventually(
    async () => {
      const [, count] = (await redis.pubsub("NUMSUB", channel)) as [string, number];
      return count >= subscribers ? true : undefined;
    },
    { timeoutMs: 5000, what: `${subscribers} Redis subscriber(s) on ${channel}` },
  );
}
