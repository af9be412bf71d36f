import { createHash } from "node:crypto";
import { SignJWT, jwtVerify, type JWTHeaderParameters } from "jose";

export interface TokenClaims {
  userId: string;
  /** The login (session) the token belongs to: ending it ends the token too. */
  loginId: string;
  expiresAt: Date;
}

/**
 * The secrets that sign and verify: the current one signs, each token naming it by a key id
 * derived from it; earlier ones still verify the tokens and links they signed until those expire,
 * so a secret is replaced without signing everyone out.
 */
export class Keyring {
  readonly current: { id: string; key: Uint8Array };
  private readonly byId: Map<string, Uint8Array>;

  constructor(current: string, previous: readonly string[] = []) {
    this.current = { id: keyId(current), key: new TextEncoder().encode(current) };
    this.byId = new Map([current, ...previous].map((secret) => [keyId(secret), new TextEncoder().encode(secret)]));
  }

  /** The key a token names; one naming none was signed before key ids, by the current key. */
  keyFor = (header: JWTHeaderParameters): Uint8Array => {
    if (header.kid === undefined) return this.current.key;
    const key = this.byId.get(header.kid);
    if (!key) throw new Error("unknown key id");
    return key;
  };
}

/** A short public name for a secret: a hash, so the token reveals nothing of the secret. */
function keyId(secret: string): string {
  return createHash("sha256").update(secret).digest("base64url").slice(0, 12);
}

/** Issues and checks the HS256 access tokens used over HTTP and in WebSocket connectionParams. */
export class TokenService {
  constructor(
    private readonly keys: Keyring,
    readonly ttlSeconds: number,
  ) {}

  async issue(userId: string, loginId: string): Promise<{ token: string; expiresAt: Date }> {
    const expiresAt = new Date((Math.floor(Date.now() / 1000) + this.ttlSeconds) * 1000);
    const token = await new SignJWT({ sid: loginId })
      .setProtectedHeader({ alg: "HS256", kid: this.keys.current.id })
      .setSubject(userId)
      .setIssuedAt()
      .setIssuer("herald")
      .setExpirationTime(expiresAt)
      .sign(this.keys.current.key);
    return { token, expiresAt };
  }

  /** The claims of a valid token, or null for anything else (expired, forged, malformed). */
  async verify(token: string): Promise<TokenClaims | null> {
    try {
      const { payload } = await jwtVerify(token, this.keys.keyFor, { algorithms: ["HS256"], issuer: "herald" });
      const { sub, sid, exp } = payload;
      // Ids that are not ours were not issued here, whatever the signature says; a token without
      // a login (issued before logins were kept) cannot be ended, so it is not taken either.
      if (typeof sub !== "string" || !OBJECT_ID.test(sub) || typeof exp !== "number") return null;
      if (typeof sid !== "string" || !OBJECT_ID.test(sid)) return null;
      return { userId: sub, loginId: sid, expiresAt: new Date(exp * 1000) };
    } catch {
      return null;
    }
  }
}

/** A user or login id as tokens carry it: an ObjectId's 24 hex digits. */
const OBJECT_ID = /^[0-9a-f]{24}$/;

/** Unsubscribe links live long (a year) and can do one thing only: turn one kind of email off. */
const UNSUBSCRIBE_TTL = "365d";

export interface UnsubscribeClaims {
  userId: string;
  kind: string;
}

export class UnsubscribeTokens {
  constructor(private readonly keys: Keyring) {}

  async issue(userId: string, kind: string): Promise<string> {
    return new SignJWT({ kind })
      .setProtectedHeader({ alg: "HS256", kid: this.keys.current.id })
      .setSubject(userId)
      .setAudience("herald:unsubscribe")
      .setIssuedAt()
      .setExpirationTime(UNSUBSCRIBE_TTL)
      .sign(this.keys.current.key);
  }

  async verify(token: string): Promise<UnsubscribeClaims | null> {
    try {
      const { payload } = await jwtVerify(token, this.keys.keyFor, {
        algorithms: ["HS256"],
        audience: "herald:unsubscribe",
      });
      if (typeof payload.sub !== "string" || !OBJECT_ID.test(payload.sub) || typeof payload["kind"] !== "string") {
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
