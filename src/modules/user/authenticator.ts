import { findBatched, type MikroORM } from "../../infra/orm.js";
import { Login } from "./login.entity.js";
import type { LoginEnds } from "./login-ends.js";
import { bearerToken, type TokenClaims, type TokenService } from "./token.service.js";

/** Tokens known good, kept while they live: about 200 bytes each. */
const KNOWN_TOKENS_KEPT = 10_000;

/**
 * Who a bearer token stands for, if anyone: its signature and expiry (TokenService), its login
 * not ended anywhere (LoginEnds, in memory), and, the first time this process sees the token, its
 * login found in the database for that very user. A token signed with the secret for a user or a
 * login that does not exist (an account deleted, a database restored) is refused like a forged one.
 * The lookup is one `_id` read per token and process, batched with those in flight.
 */
export class Authenticator {
  /**
   * Tokens this process has verified and found the login of. A client sends the same token with
   * every request until it expires, and checking its signature (WebCrypto, through libuv's thread
   * pool) cost about 0.6 ms of CPU per request; a token found here is only checked for expiry and
   * for its login's end.
   */
  private readonly known = new Map<string, TokenClaims>();

  constructor(
    private readonly tokens: TokenService,
    private readonly ends: LoginEnds,
    private readonly orm: MikroORM,
  ) {}

  async authenticate(header: unknown): Promise<TokenClaims | null> {
    const token = bearerToken(header);
    if (!token) return null;
    const claims = this.known.get(token) ?? (await this.verify(token));
    if (!claims) return null;
    if (claims.expiresAt.getTime() <= Date.now()) {
      this.known.delete(token);
      return null;
    }
    return this.ends.isEnded(claims.loginId) ? null : claims;
  }

  private async verify(token: string): Promise<TokenClaims | null> {
    const claims = await this.tokens.verify(token);
    if (!claims) return null;
    const login = await findBatched(this.orm.em, Login, claims.loginId);
    if (!login || login.endedAt || login.userId.toHexString() !== claims.userId) return null;
    if (this.known.size >= KNOWN_TOKENS_KEPT) {
      // Oldest first out: a Map iterates in insertion order.
      const oldest = this.known.keys().next();
      if (!oldest.done) this.known.delete(oldest.value);
    }
    this.known.set(token, claims);
    return claims;
  }
}
