import { SignJWT, jwtVerify } from "jose";

export interface TokenClaims {
  userId: string;
  expiresAt: Date;
}

/** Issues and checks the HS256 bearer tokens used over HTTP and in WebSocket connectionParams. */
export class TokenService {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    private readonly ttlSeconds: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  async issue(userId: string): Promise<string> {
    return new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(userId)
      .setIssuedAt()
      .setIssuer("herald")
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(this.key);
  }

  /**
   * Tokens this process has verified, with their claims. A client sends the same token with every
   * request until it expires, and checking its signature (WebCrypto, through libuv's thread pool)
   * cost about 0.6 ms of CPU per request; a token found here is only checked for expiry.
   */
  private readonly verified = new Map<string, TokenClaims>();

  /** The claims of a valid token, or null for anything else (expired, forged, malformed). */
  async verify(token: string): Promise<TokenClaims | null> {
    const known = this.verified.get(token);
    if (known) {
      if (known.expiresAt.getTime() > Date.now()) return known;
      this.verified.delete(token);
      return null;
    }
    let claims: TokenClaims;
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: ["HS256"], issuer: "herald" });
      // A subject that is not a user id was not issued here, whatever its signature says.
      if (typeof payload.sub !== "string" || !USER_ID.test(payload.sub) || typeof payload.exp !== "number") return null;
      claims = { userId: payload.sub, expiresAt: new Date(payload.exp * 1000) };
    } catch {
      return null;
    }
    // Oldest first out: a Map iterates in insertion order.
    if (this.verified.size >= VERIFIED_TOKENS_KEPT) {
      const oldest = this.verified.keys().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
    this.verified.set(token, claims);
    return claims;
  }
}

/** A user id as tokens carry it: an ObjectId's 24 hex digits. */
const USER_ID = /^[0-9a-f]{24}$/;

/** About 200 bytes each: a few MiB for the active sessions of a busy instance. */
const VERIFIED_TOKENS_KEPT = 10_000;

/** Unsubscribe links live long (a year) and can do one thing only: turn one kind of email off. */
const UNSUBSCRIBE_TTL = "365d";

export interface UnsubscribeClaims {
  userId: string;
  kind: string;
}

export class UnsubscribeTokens {
  private readonly key: Uint8Array;

  constructor(secret: string) {
    this.key = new TextEncoder().encode(secret);
  }

  async issue(userId: string, kind: string): Promise<string> {
    return new SignJWT({ kind })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(userId)
      .setAudience("herald:unsubscribe")
      .setIssuedAt()
      .setExpirationTime(UNSUBSCRIBE_TTL)
      .sign(this.key);
  }

  async verify(token: string): Promise<UnsubscribeClaims | null> {
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: ["HS256"], audience: "herald:unsubscribe" });
      if (typeof payload.sub !== "string" || !USER_ID.test(payload.sub) || typeof payload["kind"] !== "string") {
        return null;
      }
      return { userId: payload.sub, kind: payload["kind"] };
    } catch {
      return null;
    }
  }
}

/** `Bearer <token>` (case-insensitive scheme) to the token; anything else to undefined. */
export function bearerToken(header: unknown): string | undefined {
  if (typeof header !== "string") return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}
