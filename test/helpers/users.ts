import { RegisterDocument, UnreadCountDocument } from "../generated/graphql.js";
import { bearer, eventually, gqlOk } from "./graphql-client.js";

/** A user signed up through the API, with what tests need to act as them. */
export interface TestUser {
  id: string;
  email: string;
  name: string;
  token: string;
  auth: Record<string, string>;
}

let signedUp = 0;

/** Signs a new user up through the API, under a fresh address; the display name is used as given. */
export async function signUp(apiUrl: string, displayName: string): Promise<TestUser> {
  signedUp += 1;
  const email = `${displayName.toLowerCase().replace(/[^a-z0-9]+/g, ".")}.${signedUp}.${Date.now()}@example.com`;
  const { register } = await gqlOk(apiUrl, RegisterDocument, {
    input: { email, password: "correct horse battery", displayName },
  });
  return {
    id: register.user.id,
    email,
    name: register.user.displayName,
    token: register.token,
    auth: bearer(register.token),
  };
}

/** Waits until the user's unread count is `expected` (1: the WELCOME has arrived). */
export function untilUnread(apiUrl: string, user: TestUser, expected: number, timeoutMs = 10_000): Promise<true> {
  return eventually(
    async () => ((await gqlOk(apiUrl, UnreadCountDocument, {}, user.auth)).unreadCount === expected ? true : undefined),
    { timeoutMs, what: `an unread count of ${expected} for ${user.name}` },
  );
}
