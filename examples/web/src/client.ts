import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { ServerError } from "@apollo/client/errors";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { OperationTypeNode } from "graphql";
import { createClient, type Client } from "graphql-ws";
import { catchError, from, mergeMap, of, throwError } from "rxjs";
import { expiresSoon, getSession, refreshSession, SignedOutError, type Session } from "./auth";
import { GRAPHQL_PATH, socketUrl } from "./config";
import { graphQLErrorsIn } from "./errors";
import { typePolicies } from "./inbox/cache";
import { resumeInboxEvents } from "./live";

export type ConnectionState = "connecting" | "live" | "offline";

export interface Connection {
  get: () => ConnectionState;
  subscribe: (listener: () => void) => () => void;
}

export interface HeraldClient {
  client: ApolloClient;
  connection: Connection;
  dispose(): void;
}

/** graphql-ws waits this long at most between reconnects; a growing, jittered wait below it. */
const MAX_RETRY_WAIT_MS = 3_000;
const KEEPALIVE_MS = 10_000;
/** A ping unanswered this long means the connection is dead, even if the browser has not noticed. */
const PONG_TIMEOUT_MS = 5_000;

/** A session whose token is good for at least the refresh margin, or null when signed out. */
async function usableSession(): Promise<Session | null> {
  const session = getSession();
  if (!session || !expiresSoon(session)) return session;
  try {
    return await refreshSession(session.token);
  } catch (error) {
    if (error instanceof SignedOutError) return null;
    return session; // offline or refused for now: the server will say if the token is no good
  }
}

/**
 * Apollo Client over HTTP for queries and mutations and graphql-ws for subscriptions, as
 * docs/clients.md sets it up, plus what a browser tab needs: tokens refreshed before they expire
 * and after a refusal, a socket that never gives up, and a connection state to show.
 */
export function createHeraldClient(): HeraldClient {
  let state: ConnectionState = "connecting";
  const listeners = new Set<() => void>();
  const setState = (next: ConnectionState) => {
    if (next === state) return;
    state = next;
    for (const listener of listeners) listener();
  };

  let refusedToken: string | undefined;
  let sentToken: string | undefined;
  let wakeRetry: (() => void) | undefined;
  let pongTimer: ReturnType<typeof setTimeout> | undefined;

  const socket: Client = createClient({
    url: socketUrl,
    // Called on every connect, so a reconnect carries the current token, refreshed when it was refused (4403).
    connectionParams: async () => {
      let session = getSession();
      if (session && (session.token === refusedToken || expiresSoon(session))) {
        // Never throw here: graphql-ws takes an error in connectionParams as fatal and stops retrying.
        session = await refreshSession(session.token).catch(() => getSession());
      }
      sentToken = session?.token;
      return { authorization: `Bearer ${session?.token ?? ""}` };
    },
    lazy: true,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: (retries) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(MAX_RETRY_WAIT_MS, 250 * 2 ** retries) * (0.5 + Math.random() / 2));
        wakeRetry = () => {
          clearTimeout(timer);
          resolve();
        };
      }).finally(() => (wakeRetry = undefined)),
    keepAlive: KEEPALIVE_MS,
    on: {
      connecting: (isRetry) => setState(isRetry ? "offline" : "connecting"),
      connected: () => setState("live"),
      closed: (event) => {
        clearTimeout(pongTimer);
        if ((event as { code?: unknown } | undefined)?.code === 4403) refusedToken = sentToken;
        setState("offline");
      },
      ping: (received) => {
        if (!received) pongTimer = setTimeout(() => socket.terminate(), PONG_TIMEOUT_MS);
      },
      pong: (received) => {
        if (received) clearTimeout(pongTimer);
      },
    },
  });

  // The browser knows before any timeout does: drop a socket that cannot work, retry at once when back.
  const onOffline = () => {
    if (state !== "offline") socket.terminate();
  };
  const onOnline = () => wakeRetry?.();
  window.addEventListener("offline", onOffline);
  window.addEventListener("online", onOnline);

  const auth = new ApolloLink((operation, forward) =>
    from(usableSession()).pipe(
      mergeMap((session) => {
        const headers = operation.getContext()["headers"] as Record<string, string> | undefined;
        operation.setContext({
          headers: { ...headers, ...(session ? { authorization: `Bearer ${session.token}` } : {}) },
          sentToken: session?.token,
        });
        return forward(operation);
      }),
    ),
  );

  // A request refused for its token (expired early, or rotated by another tab) is sent again once,
  // after a refresh; a request sent without a token (sign-in) keeps its answer.
  const retryUnauthenticated = new ApolloLink((operation, forward) => {
    const retry = (original: () => ReturnType<typeof forward>) => {
      const token = operation.getContext()["sentToken"] as string | undefined;
      if (!token) return original();
      return from(
        refreshSession(token).then(
          () => true,
          () => false,
        ),
      ).pipe(mergeMap((refreshed) => (refreshed ? forward(operation) : original())));
    };
    return forward(operation).pipe(
      mergeMap((result) =>
        graphQLErrorsIn(result).some((error) => error.extensions?.["code"] === "UNAUTHENTICATED")
          ? retry(() => of(result))
          : of(result),
      ),
      catchError((error: unknown) =>
        ServerError.is(error) && error.statusCode === 401
          ? retry(() => throwError(() => error))
          : throwError(() => error),
      ),
    );
  });

  const link = ApolloLink.split(
    ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
    resumeInboxEvents.concat(new GraphQLWsLink(socket)),
    ApolloLink.from([retryUnauthenticated, auth, new HttpLink({ uri: GRAPHQL_PATH })]),
  );

  const client = new ApolloClient({ link, cache: new InMemoryCache({ typePolicies }) });

  return {
    client,
    connection: {
      get: () => state,
      subscribe: (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    },
    dispose: () => {
      window.removeEventListener("offline", onOffline);
      window.removeEventListener("online", onOnline);
      clearTimeout(pongTimer);
      client.stop();
      // dispose() waits for a connect in progress, which fails when nothing is subscribed any more: fine here.
      Promise.resolve(socket.dispose()).catch(() => undefined);
    },
  };
}
