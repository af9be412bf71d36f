import type { ApolloCache, ApolloClient, Reference, TypePolicies } from "@apollo/client";
import {
  UnreadCountDocument,
  type NotificationFilter,
  type NotificationKind,
  type NotificationStatus,
} from "../generated/graphql";

/**
 * How the inbox lives in Apollo's cache: each filter's list is one `notifications` field of the
 * root query (pages appended by cursor), its items references to the one `Notification:<id>`
 * entry that queries, mutations and stream events all write. An event therefore changes an item
 * everywhere by itself; what it cannot change by itself is which lists hold the item, which is
 * what this file does.
 */

export interface InboxFilter {
  status: NotificationStatus;
  archived: boolean;
  /** null: every kind. */
  kinds: NotificationKind[] | null;
}

export const DEFAULT_FILTER: InboxFilter = { status: "ALL", archived: false, kinds: null };
export const PAGE_SIZE = 20;

/** The fields of a notification that decide where it is listed. */
export interface Placeable {
  id: string;
  kind: NotificationKind;
  createdAt: string;
  readAt: string | null;
  archivedAt: string | null;
}

interface StoredEdge {
  __typename?: "NotificationEdge";
  node: Reference;
}

interface StoredConnection {
  edges: StoredEdge[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  streamCursor?: string;
}

type ReadField = <T>(fieldName: string, from: Reference) => T | undefined;

export function normalizeFilter(filter: NotificationFilter | null | undefined): InboxFilter {
  return {
    status: filter?.status ?? "ALL",
    archived: filter?.archived ?? false,
    kinds: filter?.kinds?.length ? [...filter.kinds].sort() : null,
  };
}

/** What the API expects: `kinds` left out means every kind (an empty list would mean none). */
export function toVariables(filter: InboxFilter): NotificationFilter {
  return { status: filter.status, archived: filter.archived, ...(filter.kinds ? { kinds: filter.kinds } : {}) };
}

// The list of a filter is stored under "notifications:<this key>", so a modifier can tell which
// filter a stored list answers (Apollo hands modifiers the field's store name, not its arguments).
const FIELD_PREFIX = "notifications:";

function filterOfField(storeFieldName: string): InboxFilter | undefined {
  if (!storeFieldName.startsWith(FIELD_PREFIX)) return undefined;
  try {
    return JSON.parse(storeFieldName.slice(FIELD_PREFIX.length)) as InboxFilter;
  } catch {
    return undefined;
  }
}

export function matches(filter: InboxFilter, n: Placeable): boolean {
  if (filter.archived !== (n.archivedAt !== null)) return false;
  if (filter.status === "UNREAD" && n.readAt !== null) return false;
  if (filter.status === "READ" && n.readAt === null) return false;
  return filter.kinds === null || filter.kinds.includes(n.kind);
}

export const typePolicies: TypePolicies = {
  Query: {
    fields: {
      notifications: {
        keyArgs: (args) => JSON.stringify(normalizeFilter(args?.["filter"] as NotificationFilter | undefined)),
        merge(existing: StoredConnection | undefined, incoming: StoredConnection, { args, readField }) {
          // A first page (a refetch too) starts the list again; a later page extends it.
          if (!existing || !args?.["after"]) return incoming;
          const listed = new Set(existing.edges.map((edge) => readField<string>("id", edge.node)));
          return {
            ...existing,
            ...incoming,
            edges: [...existing.edges, ...incoming.edges.filter((edge) => !listed.has(readField("id", edge.node)))],
          };
        },
      },
    },
  },
  // One set of preferences per user: updatePreferences's answer then replaces what the query read.
  Preferences: { keyFields: [] },
  KindPreference: { keyFields: ["kind"] },
};

function newerThan(a: { id: string; createdAt: string }, b: { id?: string; createdAt?: string }): boolean {
  const [ta, tb] = [Date.parse(a.createdAt), Date.parse(b.createdAt ?? "")];
  if (ta !== tb) return Number.isNaN(tb) || ta > tb;
  return a.id > (b.id ?? "");
}

/** The list with the notification in its place (newest first), or as it was when a later page will bring it. */
function insert(list: StoredConnection, n: Placeable, node: Reference, readField: ReadField): StoredConnection {
  const index = list.edges.findIndex((edge) =>
    newerThan(n, {
      id: readField<string>("id", edge.node),
      createdAt: readField<string>("createdAt", edge.node),
    }),
  );
  if (index === -1 && list.pageInfo.hasNextPage) return list;
  const edges = [...list.edges];
  edges.splice(index === -1 ? edges.length : index, 0, { __typename: "NotificationEdge", node });
  return { ...list, edges };
}

/**
 * Puts a notification, in the state given (already written to its cache entry), into every cached
 * list it matches and takes it out of every other. Idempotent: a list that already holds it keeps
 * it once, so an ADDED heard again, or an event echoing one's own mutation, changes nothing.
 */
export function placeNotification(cache: ApolloCache, n: Placeable): void {
  const node = cache.identify({ __typename: "Notification", id: n.id });
  if (!node) return;
  cache.modify<{ notifications: unknown }>({
    id: "ROOT_QUERY",
    fields: {
      notifications(value, { storeFieldName, readField, toReference }) {
        const list = value as StoredConnection;
        const filter = filterOfField(storeFieldName);
        const ref = toReference(node);
        if (!filter || !ref || !Array.isArray(list.edges)) return value;
        const listed = list.edges.some((edge) => readField("id", edge.node) === n.id);
        const belongs = matches(filter, n);
        if (listed && !belongs)
          return { ...list, edges: list.edges.filter((edge) => readField("id", edge.node) !== n.id) };
        if (!listed && belongs) return insert(list, n, ref, readField);
        return value;
      },
    },
  });
}

/** Takes a notification out of every list and drops its entry. Unknown ids are fine (DELETED may repeat). */
export function removeNotification(cache: ApolloCache, id: string): void {
  cache.modify<{ notifications: unknown }>({
    id: "ROOT_QUERY",
    fields: {
      notifications(value, { readField }) {
        const list = value as StoredConnection;
        if (!Array.isArray(list.edges)) return value;
        const edges = list.edges.filter((edge) => readField("id", edge.node) !== id);
        return edges.length === list.edges.length ? value : { ...list, edges };
      },
    },
  });
  cache.evict({ id: cache.identify({ __typename: "Notification", id }) });
  cache.gc();
}

/** ALL_READ (or one's own "Mark all read"): every unread notification, archived ones included, is read at `at`. */
export function markAllRead(cache: ApolloCache, at: string): void {
  for (const [id, entry] of Object.entries(cache.extract() as Record<string, { __typename?: string } | undefined>)) {
    if (entry?.__typename !== "Notification") continue;
    cache.modify<{ readAt: unknown }>({ id, fields: { readAt: (readAt) => readAt ?? at } });
  }
  cache.modify<{ notifications: unknown }>({
    id: "ROOT_QUERY",
    fields: {
      notifications(value, { storeFieldName, DELETE }) {
        const list = value as StoredConnection;
        const filter = filterOfField(storeFieldName);
        if (filter?.status === "UNREAD")
          return { ...list, edges: [], pageInfo: { ...list.pageInfo, hasNextPage: false } };
        // What a "Read" list gains is not all in the cache: drop it, to be read again when shown.
        if (filter?.status === "READ") return DELETE;
        return value;
      },
    },
  });
}

export function setUnreadCount(cache: ApolloCache, unreadCount: number): void {
  cache.writeQuery({ query: UnreadCountDocument, data: { unreadCount } });
}

/** RESET, or preferences that hide or show a kind: every list is read again, the shown ones at once. */
export async function reloadInbox(client: ApolloClient): Promise<void> {
  await client.refetchQueries({
    updateCache(cache) {
      cache.evict({ id: "ROOT_QUERY", fieldName: "notifications" });
      cache.gc();
    },
  });
}
