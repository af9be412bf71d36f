import { ApolloLink } from "@apollo/client";
import { print } from "graphql";
import { tap } from "rxjs";
import { createClient, type Client, type ExecutionResult } from "graphql-ws";
import WebSocket from "ws";
import { InboxEventsDocument, type InboxEventFieldsFragment } from "../generated/graphql.js";
import { eventually } from "./graphql-client.js";

export type StreamEvent = InboxEventFieldsFragment;

/**
 * The resume recipe of docs/clients.md for a raw graphql-ws client. graphql-ws sends the very same payload
 * object again each time it reconnects, so moving `variables.after` to the cursor of every event
 * received makes each reconnect resume right after the last one: nothing missed, nothing twice.
 */
export function subscribeInbox(
  client: Client,
  after: string | null,
  sink: { next(event: StreamEvent): void; error?(error: unknown): void; complete?(): void },
): () => void {
  const variables = { after };
  return client.subscribe<{ inboxEvents: StreamEvent }>(
    { query: print(InboxEventsDocument), variables },
    {
      next: (result: ExecutionResult<{ inboxEvents: StreamEvent }>) => {
        const event = result.data?.inboxEvents;
        if (!event) return sink.error?.(result.errors);
        variables.after = event.cursor;
        sink.next(event);
      },
      error: (error) => sink.error?.(error),
      complete: () => sink.complete?.(),
    },
  );
}

/**
 * The resume recipe of docs/clients.md for Apollo Client: put before GraphQLWsLink. GraphQLWsLink hands the
 * operation's variables object to graphql-ws by reference, and graphql-ws sends it again on every
 * reconnect; this link gives the InboxEvents operation a copy of its own (Apollo's cache keys stay
 * as they were) and moves its `after` to the cursor of every event received.
 */
export const resumeInboxEventsLink = new ApolloLink((operation, forward) => {
  if (operation.operationName !== "InboxEvents") return forward(operation);
  const variables: Record<string, unknown> = { ...operation.variables };
  operation.variables = variables;
  return forward(operation).pipe(
    tap((result) => {
      const cursor = (result.data as { inboxEvents?: { cursor?: unknown } } | null | undefined)?.inboxEvents?.cursor;
      if (typeof cursor === "string") variables["after"] = cursor;
    }),
  );
});

/**
 * A graphql-ws client that keeps reconnecting, as a mobile app's should: at once the first time,
 * then with a growing, jittered wait (at most a second here; longer suits real apps). `url` is asked
 * on every connect, so a client can move to another instance.
 */
export function resilientClient(url: () => string, token: string): Client {
  return createClient({
    url: () => `${url().replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    retryWait: (retries) =>
      new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** retries) * (0.5 + Math.random()))),
  });
}

/**
 * One device following its inbox through the recipe: every event it was given, in order. Started
 * from a page's streamCursor, it may first hear again of notifications already on that page (their
 * events can be logged after the cursor was taken); as a client would, it takes those as known:
 * `known` names them, and their ADDED events are not recorded.
 */
export class LiveInbox {
  readonly events: StreamEvent[] = [];
  readonly client: Client;
  private failure: unknown;
  private readonly stop: () => void;

  constructor(url: () => string, token: string, after: string | null, known: ReadonlySet<string> = new Set()) {
    this.client = resilientClient(url, token);
    this.stop = subscribeInbox(this.client, after, {
      next: (event) => {
        if (event.type === "ADDED" && known.has(event.notificationId ?? "")) return;
        this.events.push(event);
      },
      error: (error) => (this.failure = error ?? "failed"),
    });
  }

  /** Waits until `count` events have arrived; fails at once if the subscription failed. */
  async untilCount(count: number, what: string, timeoutMs = 20_000): Promise<StreamEvent[]> {
    await eventually(
      () => {
        if (this.failure) throw new Error(`the inbox subscription failed: ${JSON.stringify(this.failure)}`);
        return Promise.resolve(this.events.length >= count ? true : undefined);
      },
      { timeoutMs, what: `${what}: ${count} events (have ${this.events.length})`, intervalMs: 20 },
    );
    return this.events;
  }

  get last(): StreamEvent | undefined {
    return this.events.at(-1);
  }

  async close(): Promise<void> {
    this.stop();
    await this.client.dispose();
  }
}
