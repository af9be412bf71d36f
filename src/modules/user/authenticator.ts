import { findBatched, type MikroORM } from "../../infra/orm.js";
import { Login } from "./login.entity.js";
import type { LoginEnds } from "./login-ends.js";
import { bearerToken, type TokenClaims, type TokenService } from "./token.service.js";

/** Tokens whose login was found, kept while they live: about 200 bytes each. */
const KNOWN_TOKENS_KEPT = 10_000;

/**
 * Who a bearer token stands for, if anyone: its signature and expiry (TokenService), its login
 * not ended anywhere (LoginEnds, in memory), and, the first time this process sees the token, its
 * login found in the database for that very user. A token signed with the secret for a user or a
 * login that does not exist (an account deleted, a database restored) is refused like a forged one.
 * The lookup is one `_id` read per token and process, batched with those in flight.
 */
export class Authenticator {
  private readonly known = new Map<string, TokenClaims>();

  constructor(
    private readonly tokens: TokenService,
    private readonly ends: LoginEnds,
    private readonly orm: MikroORM,
  ) {}

  async authenticate(header: unknown): Promise<TokenClaims | null> {
    const token = bearerToken(header);
    const claims = token ? await this.tokens.verify(token) : null;
    if (!token || !claims || this.ends.isEnded(claims.loginId)) return null;
    if (this.known.has(token)) return claims;
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
