import { createHash, randomBytes } from "node:crypto";
import type { FilterQuery } from "@mikro-orm/core";
import { ObjectId } from "@mikro-orm/mongodb";
import Bowser from "bowser";
import type { ClientInfo } from "../../graphql/context.js";
import { notFound, unauthenticated } from "../../graphql/errors.js";
import { isDuplicateKeyError, type EntityManager } from "../../infra/orm.js";
import { Login, SpentRefreshToken } from "./login.entity.js";
import type { LoginEnds } from "./login-ends.js";
import type { TokenService } from "./token.service.js";
import { User } from "./user.entity.js";

/** What a sign-in or a refresh hands the client. */
export interface Credentials {
  token: string;
  expiresAt: Date;
  refreshToken: string;
  user: User;
}

const INVALID_REFRESH = "The refresh token is invalid or expired: sign in again";

/**
 * Logins and their tokens. An access token is short-lived and checked by signature alone; the
 * refresh token is single-use: each refresh spends it and hands out the next, and a spent one
 * presented again means two parties hold the login's tokens, so the whole login ends.
 */
export class SessionService {
  constructor(
    private readonly tokens: TokenService,
    private readonly ends: LoginEnds,
    private readonly refreshTtlSeconds: number,
  ) {}

  /** A new login for `user` (at register and login). */
  async start(em: EntityManager, user: User, client: ClientInfo): Promise<Credentials> {
    const secret = newSecret();
    const login = new Login(user._id, deviceLabel(client.userAgent), hashOf(secret), this.refreshExpiry());
    await em.persist(login).flush();
    return this.credentials(user, login, secret);
  }

  /** Spends `refreshToken` and hands out the next one with a fresh access token. */
  async refresh(em: EntityManager, refreshToken: string): Promise<Credentials> {
    const parsed = parseRefreshToken(refreshToken);
    if (!parsed) throw unauthenticated(INVALID_REFRESH);
    const login = await em.findOne(Login, { _id: parsed.loginId });
    if (!login || login.endedAt) throw unauthenticated(INVALID_REFRESH);
    const hash = hashOf(parsed.secret);
    if (hash !== login.refreshHash) {
      const spent = await em.findOne(SpentRefreshToken, { _id: hash });
      if (spent?.loginId.equals(login._id)) await this.theft(em, login);
      throw unauthenticated(INVALID_REFRESH);
    }
    if (login.refreshExpiresAt.getTime() <= Date.now()) throw unauthenticated(INVALID_REFRESH);
    try {
      await em.insert(SpentRefreshToken, new SpentRefreshToken(hash, login._id));
    } catch (err) {
      // Another refresh with this very token got there first: one of the two is not the owner.
      if (isDuplicateKeyError(err)) await this.theft(em, login);
      throw err;
    }
    const user = await em.findOne(User, { _id: login.userId });
    if (!user) throw unauthenticated(INVALID_REFRESH);
    const secret = newSecret();
    const now = new Date();
    const changed = await em.nativeUpdate(
      Login,
      { _id: login._id, endedAt: null },
      { refreshHash: hashOf(secret), refreshExpiresAt: this.refreshExpiry(), lastUsedAt: now },
    );
    if (changed === 0) throw unauthenticated(INVALID_REFRESH);
    login.lastUsedAt = now;
    return this.credentials(user, login, secret);
  }

  /** Ends one of the user's logins; another user's, or one already over, is NOT_FOUND. */
  async end(em: EntityManager, userId: string, loginId: string): Promise<void> {
    if (!ObjectId.isValid(loginId)) throw notFound("Session");
    const changed = await this.markEnded(em, { _id: new ObjectId(loginId), userId: new ObjectId(userId) });
    if (changed === 0) throw notFound("Session");
    await this.ends.end([loginId]);
  }

  /**
   * Ends the caller's own login. Announced even when it had ended already, so that a logout
   * retried after a failed announcement still reaches every instance.
   */
  async logout(em: EntityManager, userId: string, loginId: string): Promise<void> {
    await this.markEnded(em, { _id: new ObjectId(loginId), userId: new ObjectId(userId) });
    await this.ends.end([loginId]);
  }

  /**
   * Ends every login of the user, or every one but `keep` (a password changed on it); answers how
   * many were live and ended.
   */
  async endAll(em: EntityManager, userId: string, keep?: string): Promise<number> {
    const live = (await this.list(em, userId)).filter((l) => l.id !== keep);
    if (live.length === 0) return 0;
    await this.markEnded(em, { _id: { $in: live.map((l) => l._id) } });
    await this.ends.end(live.map((l) => l.id));
    return live.length;
  }

  /** The user's live logins, most recently used first. */
  async list(em: EntityManager, userId: string): Promise<Login[]> {
    const logins = await em.find(Login, { userId: new ObjectId(userId), endedAt: null });
    const now = Date.now();
    return logins
      .filter((l) => l.refreshExpiresAt.getTime() > now)
      .sort((a, b) => b.lastUsedAt.getTime() - a.lastUsedAt.getTime());
  }

  private async theft(em: EntityManager, login: Login): Promise<void> {
    await this.markEnded(em, { _id: login._id });
    await this.ends.end([login.id]);
  }

  /** Marks the live logins `filter` finds ended; answers how many it marked. */
  private markEnded(em: EntityManager, filter: { _id: unknown; userId?: ObjectId }): Promise<number> {
    return em.nativeUpdate(Login, { ...filter, endedAt: null } as FilterQuery<Login>, { endedAt: new Date() });
  }

  private async credentials(user: User, login: Login, secret: string): Promise<Credentials> {
    const { token, expiresAt } = await this.tokens.issue(user.id, login.id);
    return { token, expiresAt, refreshToken: `${login.id}.${secret}`, user };
  }

  private refreshExpiry(): Date {
    return new Date(Date.now() + this.refreshTtlSeconds * 1000);
  }
}

/** 256 random bits: only its hash is stored, and guessing one is hopeless. */
function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

function hashOf(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** The login a refresh token names, if it is one of ours in form (what its limit is counted by). */
export function refreshLoginId(token: string): string | null {
  return parseRefreshToken(token)?.loginId.toHexString() ?? null;
}

function parseRefreshToken(token: string): { loginId: ObjectId; secret: string } | null {
  const match = /^([0-9a-f]{24})\.([\w-]{43})$/.exec(token);
  return match?.[1] && match[2] ? { loginId: new ObjectId(match[1]), secret: match[2] } : null;
}

/** "Firefox 128 on Linux", "Safari on iOS", or the agent's first word when no browser is named. */
export function deviceLabel(userAgent: string | undefined): string {
  if (!userAgent) return "Unknown device";
  const parsed = Bowser.parse(userAgent);
  const browser = parsed.browser.name ? [parsed.browser.name, parsed.browser.version?.split(".")[0]] : [];
  const system = parsed.os.name;
  const label = [browser.filter(Boolean).join(" "), system ? `on ${system}` : ""].filter(Boolean).join(" ");
  return (label || userAgent.split(/[\s/]/)[0] || "Unknown device").slice(0, 80);
}
