import { print } from "graphql";
import { RefreshDocument, type SessionFieldsFragment } from "./generated/graphql";
import { GRAPHQL_PATH } from "./config";
import { graphQLErrorsIn } from "./errors";

/** One login: its access token, when that expires, the single-use refresh token, and whose it is. */
export type Session = SessionFieldsFragment;

const STORAGE_KEY = "herald.session";
/** Refresh this long before the access token expires, so no request goes out with a dying one. */
export const REFRESH_MARGIN_MS = 60_000;

/** The refresh token no longer works (the login ended here or elsewhere): sign in again. */
export class SignedOutError extends Error {
  constructor() {
    super("You were signed out: sign in again.");
    this.name = "SignedOutError";
  }
}

function readStored(): Session | null {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "null");
    return isSession(value) ? value : null;
  } catch {
    return null;
  }
}

function isSession(value: unknown): value is Session {
  if (typeof value !== "object" || value === null) return false;
  const { token, expiresAt, refreshToken, user } = value as Record<string, unknown>;
  return (
    typeof token === "string" &&
    typeof expiresAt === "string" &&
    typeof refreshToken === "string" &&
    typeof user === "object" &&
    user !== null &&
    typeof (user as Record<string, unknown>)["id"] === "string"
  );
}

let current = readStored();
const listeners = new Set<() => void>();

function adopt(session: Session | null): void {
  if (session?.token === current?.token && session?.user.id === current?.user.id) return;
  current = session;
  for (const listener of listeners) listener();
}

// localStorage is shared by every tab of the app: a sign-in, sign-out or refresh in one is followed here.
window.addEventListener("storage", (event) => {
  if (event.key === STORAGE_KEY || event.key === null) adopt(readStored());
});

export function getSession(): Session | null {
  return current;
}

export function subscribeSession(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function saveSession(session: Session): void {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  adopt(session);
}

export function clearSession(): void {
  localStorage.removeItem(STORAGE_KEY);
  adopt(null);
}

export function expiresSoon(session: Session): boolean {
  return Date.parse(session.expiresAt) - Date.now() < REFRESH_MARGIN_MS;
}

let refreshing: Promise<Session> | undefined;

/**
 * Replaces `staleToken` (expiring, or refused by the server) with a fresh session. A refresh token
 * works once and a second use ends the whole login, so refreshes are serialized across tabs with a
 * Web Lock, and inside it the stored session is read again: when another tab has already rotated
 * the tokens, those are taken instead of refreshing twice. Rejects with SignedOutError (and signs
 * out) when the login has ended; any other failure leaves the session as it is, to retry later.
 */
export function refreshSession(staleToken: string): Promise<Session> {
  refreshing ??= withRefreshLock(() => rotate(staleToken)).finally(() => (refreshing = undefined));
  return refreshing;
}

function withRefreshLock<T>(task: () => Promise<T>): Promise<T> {
  // Web Locks exist only in secure contexts (https, or http on localhost); elsewhere one tab is all we can guard.
  if (!("locks" in navigator)) return task();
  return navigator.locks.request("herald-refresh", task);
}

async function rotate(staleToken: string): Promise<Session> {
  const stored = readStored();
  if (!stored) {
    adopt(null);
    throw new SignedOutError();
  }
  if (stored.token !== staleToken) {
    adopt(stored);
    return stored;
  }
  const response = await fetch(GRAPHQL_PATH, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json, application/json" },
    body: JSON.stringify({
      operationName: "Refresh",
      query: print(RefreshDocument),
      variables: { refreshToken: stored.refreshToken },
    }),
  });
  const body: unknown = await response.json().catch(() => null);
  const data = (body as { data?: { refresh?: unknown } | null } | null)?.data?.refresh;
  if (isSession(data)) {
    saveSession(data);
    return data;
  }
  const errors = graphQLErrorsIn(body);
  if (errors.some((error) => error.extensions?.["code"] === "UNAUTHENTICATED")) {
    // A sign-in in another tab meanwhile (sign-ins take no lock) must not be undone by our ended login.
    const latest = readStored();
    if (latest && latest.refreshToken !== stored.refreshToken) {
      adopt(latest);
      return latest;
    }
    clearSession();
    throw new SignedOutError();
  }
  throw new Error(errors[0]?.message ?? `Refreshing the session failed (HTTP ${response.status})`);
}

/**
 * Refreshes the session shortly before its access token expires, and again after a failure that
 * was not the end of the login (offline, rate limited). Every tab runs one; the lock in
 * refreshSession makes the first do the work and the others take its result.
 */
export function keepSessionFresh(session: Session): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const schedule = (delayMs: number) => {
    timer = setTimeout(() => {
      refreshSession(session.token).catch((error: unknown) => {
        if (!(error instanceof SignedOutError)) schedule(15_000);
      });
    }, delayMs);
  };
  schedule(Math.max(0, Date.parse(session.expiresAt) - Date.now() - REFRESH_MARGIN_MS));
  return () => clearTimeout(timer);
}
