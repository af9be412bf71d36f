import { ApolloLink, type ApolloClient } from "@apollo/client";
import { CombinedGraphQLErrors } from "@apollo/client/errors";
import type { Subscription } from "rxjs";
import { tap } from "rxjs";
import {
  InboxEventsDocument,
  InboxStartDocument,
  RemindersDocument,
  type InboxEventsSubscription,
} from "./generated/graphql";
import {
  DEFAULT_FILTER,
  markAllRead,
  PAGE_SIZE,
  placeNotification,
  reloadInbox,
  removeNotification,
  setUnreadCount,
  toVariables,
} from "./inbox/cache";

export type InboxEvent = InboxEventsSubscription["inboxEvents"];

/**
 * The resume recipe of docs/clients.md: graphql-ws sends the very same subscribe payload again on
 * every reconnect, and GraphQLWsLink hands it this operation's variables object. Giving the
 * InboxEvents operation a copy of its own (Apollo's cache keys stay as they were) and moving its
 * `after` to the cursor of each event received makes every reconnect resume right after the last
 * event: an offline tab catches up, nothing missed and nothing twice.
 */
export const resumeInboxEvents = new ApolloLink((operation, forward) => {
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
 * Applies one event to the cache. Events carry state, not deltas, and a replay may repeat what a
 * page or one's own mutation already showed: every branch is safe to run twice. (Apollo has
 * already written `notification` to its cache entry; what is left is list membership and the count.)
 */
export function applyInboxEvent(client: ApolloClient, event: InboxEvent): void {
  const { cache } = client;
  switch (event.type) {
    case "ADDED":
    case "READ":
    case "UNREAD":
    case "ARCHIVED":
      if (event.notification) placeNotification(cache, event.notification);
      // A reminder that fired has left the pending list.
      if (event.type === "ADDED" && event.notification?.kind === "REMINDER") {
        void client.refetchQueries({ include: [RemindersDocument] });
      }
      break;
    case "DELETED":
      if (event.notificationId) removeNotification(cache, event.notificationId);
      break;
    case "ALL_READ":
      markAllRead(cache, event.at);
      break;
    case "RESET":
      // The stream could not resume: read the inbox again; the stream goes on from this event's cursor.
      reloadInbox(client).catch(() => undefined);
      break;
  }
  setUnreadCount(cache, event.unreadCount);
}

const MAX_RESTART_WAIT_MS = 10_000;

/**
 * Follows the inbox for as long as the tab is signed in: reads the first page together with its
 * streamCursor and the unread count (the bell and the inbox then read both from the cache, so a
 * page load costs one request; `onStarted` says when they may), subscribes from that cursor, and
 * keeps the last event's cursor. graphql-ws itself reconnects forever and resumes through
 * `resumeInboxEvents`; when the subscription ends anyway (a fatal close, an error), it is started
 * again from the last cursor received.
 */
export function followInbox(client: ApolloClient, onStarted: () => void = () => undefined): () => void {
  let stopped = false;
  let cursor: string | null = null;
  let subscription: Subscription | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let attempts = 0;

  const later = (run: () => void) => {
    if (stopped) return;
    timer = setTimeout(run, Math.min(MAX_RESTART_WAIT_MS, 500 * 2 ** attempts++));
  };

  const start = () => {
    client
      .query({
        query: InboxStartDocument,
        variables: { first: PAGE_SIZE, filter: toVariables(DEFAULT_FILTER) },
        fetchPolicy: "network-only",
      })
      .then(({ data }) => {
        if (stopped) return;
        if (!data) throw new Error("no inbox");
        cursor = data.notifications.streamCursor;
        onStarted();
        follow();
      })
      .catch(() => later(start));
  };

  const follow = () => {
    let refused = false;
    subscription = client.subscribe({ query: InboxEventsDocument, variables: { after: cursor } }).subscribe({
      next: ({ data, error }) => {
        const event = data?.inboxEvents;
        if (event) {
          attempts = 0;
          cursor = event.cursor;
          applyInboxEvent(client, event);
        } else if (CombinedGraphQLErrors.is(error)) {
          refused = true;
        }
      },
      // A cursor the server refuses cannot be resumed from: start again from a fresh page.
      complete: () => later(refused ? start : follow),
    });
  };

  start();
  return () => {
    stopped = true;
    clearTimeout(timer);
    subscription?.unsubscribe();
  };
}
