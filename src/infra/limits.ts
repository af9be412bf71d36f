import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import { rateLimited } from "../graphql/errors.js";
import type { Logger } from "./logger.js";
import { defineScripts, runScript, type Redis, type RedisScript } from "./redis.js";

/** Every limit, as configured (see config.ts for the defaults and their units). */
export interface LimitSettings {
  readonly enabled: boolean;
  /** Wrong passwords for one account from one address before each next one waits, doubling. */
  readonly loginFailures: number;
  /** Sign-in attempts per client address per 15 minutes. */
  readonly loginsPerAddress: number;
  /** Sign-ups per client address per hour. */
  readonly signupsPerAddress: number;
  /** Refreshes per login per hour. */
  readonly refreshesPerLogin: number;
  /** sendNotification recipients per service key per minute. */
  readonly recipientsPerKey: number;
  /** Mutations per user per minute. */
  readonly mutationsPerUser: number;
  /** Open WebSockets per user and per client address, at once. */
  readonly socketsPerUser: number;
  readonly socketsPerAddress: number;
  /** WebSocket upgrades per client address per minute. */
  readonly socketAttemptsPerAddress: number;
  /** Queries a client address registers as persisted queries (kept in Redis a day) per hour. */
  readonly persistedQueriesPerAddress: number;
  /** Subscriptions one socket holds at once. */
  readonly subscriptionsPerSocket: number;
  /** Operations one socket starts per minute. */
  readonly operationsPerSocket: number;
  /** Messages one socket sends per minute. */
  readonly messagesPerSocket: number;
}

/** The longest a sign-in waits after wrong passwords: the delay doubles up to this. */
const MAX_LOGIN_DELAY_S = 15 * 60;
/** An account's wrong passwords from every address together may be this many times one address's. */
const ACCOUNT_FAILURES_FACTOR = 10;
/** How long an open socket counts without its instance confirming it (it renews every third of this). */
const SOCKET_LEASE_MS = 90_000;

/**
 * Counts open sockets of one user or address: a sorted set of socket ids scored by when their lease
 * runs out, so that the sockets of an instance that died stop counting on their own.
 */
const OPEN_SOCKET: RedisScript = {
  name: "heraldOpenSocket",
  keys: 1,
  lua: `
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
`,
};

/**
 * Every limit Herald applies, counted in Redis where they must hold across api instances (by user,
 * account, address, login or service key) and in memory where they concern one socket. Built on
 * rate-limiter-flexible. A refusal throws RATE_LIMITED with `retryAfterSeconds`. When Redis fails
 * a command, the request is let through (and logged): the limits protect Herald, they must not be
 * what takes it down.
 */
export class Limits {
  private readonly loginsByAddress: RateLimiterAbstract;
  private readonly failuresByAccountAndAddress: RateLimiterAbstract;
  private readonly failuresByAccount: RateLimiterAbstract;
  private readonly loginDelays: RateLimiterAbstract;
  private readonly signups: RateLimiterAbstract;
  private readonly refreshes: RateLimiterAbstract;
  private readonly recipients: RateLimiterAbstract;
  private readonly mutations: RateLimiterAbstract;
  private readonly socketAttempts: RateLimiterAbstract;
  private readonly persistedQueries: RateLimiterAbstract;

  private readonly prefix: string;
  /** Each counter's name, for the refusals reported. */
  private readonly names = new Map<RateLimiterAbstract, string>();

  constructor(
    private readonly redis: Redis,
    readonly settings: LimitSettings,
    private readonly logger: Logger,
    /** Keeps the counts of deployments that share a Redis apart: the MongoDB database name. */
    readonly namespace: string,
    /** Told of every refusal, with the limit's name (herald_rate_limited_total). */
    private readonly refused: (limit: string) => void = () => undefined,
  ) {
    this.prefix = `herald:limit:${namespace}:`;
    const counter = (keyPrefix: string, points: number, duration: number) => {
      const limiter = new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: `${this.prefix}${keyPrefix}`,
        points,
        duration,
      });
      this.names.set(limiter, keyPrefix);
      return limiter;
    };
    this.loginsByAddress = counter("login-address", settings.loginsPerAddress, 15 * 60);
    // Counters only (as many points as can be): the delays decide, from their counts.
    this.failuresByAccountAndAddress = counter("login-fail", Number.MAX_SAFE_INTEGER, 3600);
    this.failuresByAccount = counter("login-fail-account", Number.MAX_SAFE_INTEGER, 3600);
    this.loginDelays = counter("login-delay", 1, 1);
    this.signups = counter("signup", settings.signupsPerAddress, 3600);
    this.refreshes = counter("refresh", settings.refreshesPerLogin, 3600);
    this.recipients = counter("recipients", settings.recipientsPerKey, 60);
    this.mutations = counter("mutation", settings.mutationsPerUser, 60);
    this.socketAttempts = counter("socket-attempt", settings.socketAttemptsPerAddress, 60);
    this.persistedQueries = counter("persisted-query", settings.persistedQueriesPerAddress, 3600);
    defineScripts(redis, [OPEN_SOCKET]);
  }

  /** Before a password is checked: the address's attempts, and any delay earned by wrong passwords. */
  async beforeLogin(account: string, address: string | undefined): Promise<void> {
    if (!this.settings.enabled) return;
    for (const key of [loginKey(account, address), loginKey(account, undefined)]) {
      const delay = await this.quietly(() => this.loginDelays.get(key));
      // A delay is a block: its count is over the limiter's single point.
      if (delay && delay.consumedPoints > 1 && delay.msBeforeNext > 0) {
        this.refused("login-delay");
        throw rateLimited("Too many wrong passwords: wait before signing in again", delay.msBeforeNext / 1000);
      }
    }
    await this.take(this.loginsByAddress, address ?? "unknown", 1, "Too many sign-in attempts from this address");
  }

  /**
   * A wrong password: past the free ones, the next attempt for that account from that address
   * waits 1 s, then 2, 4, … up to 15 minutes; from every address together the allowance is ten
   * times larger, so that an attacker cannot lock the owner out from afar so easily.
   */
  async loginFailed(account: string, address: string | undefined): Promise<void> {
    if (!this.settings.enabled) return;
    const free = this.settings.loginFailures;
    for (const [counter, key, allowed] of [
      [this.failuresByAccountAndAddress, loginKey(account, address), free],
      [this.failuresByAccount, loginKey(account, undefined), free * ACCOUNT_FAILURES_FACTOR],
    ] as const) {
      const counted = await this.quietly(() => counter.penalty(key, 1));
      if (!counted || counted.consumedPoints < allowed) continue;
      const delay = Math.min(MAX_LOGIN_DELAY_S, 2 ** (counted.consumedPoints - allowed));
      await this.quietly(() => this.loginDelays.block(key, delay));
    }
  }

  /**
   * Runs a password check under the sign-in limits: refused while a wait is on, a wrong password
   * (as `wrong` tells it from the check's error) counted, a right one forgiving the address's.
   */
  async passwordCheck<T>(
    account: string,
    address: string | undefined,
    check: () => Promise<T>,
    wrong: (err: unknown) => boolean,
  ): Promise<T> {
    await this.beforeLogin(account, address);
    let result: T;
    try {
      result = await check();
    } catch (err) {
      if (wrong(err)) await this.loginFailed(account, address);
      throw err;
    }
    await this.loginSucceeded(account, address);
    return result;
  }

  /** A right password forgives this address's wrong ones for the account. */
  async loginSucceeded(account: string, address: string | undefined): Promise<void> {
    if (!this.settings.enabled) return;
    const key = loginKey(account, address);
    await this.quietly(() => this.failuresByAccountAndAddress.delete(key));
    await this.quietly(() => this.loginDelays.delete(key));
  }

  signup(address: string | undefined): Promise<void> {
    return this.take(this.signups, address ?? "unknown", 1, "Too many sign-ups from this address");
  }

  refresh(loginOrAddress: string): Promise<void> {
    return this.take(this.refreshes, loginOrAddress, 1, "Too many refreshes of this login");
  }

  recipientsFor(keyName: string, count: number): Promise<void> {
    return this.take(this.recipients, keyName, Math.max(1, count), "Too many recipients for this service key");
  }

  mutation(userId: string): Promise<void> {
    return this.take(this.mutations, userId, 1, "Too many changes: slow down");
  }

  /** A WebSocket upgrade from `address`; answers the seconds to wait, or 0 when it may go on. */
  socketAttempt(address: string | undefined): Promise<number> {
    return this.waitOf(this.socketAttempts, address ?? "unknown", 1);
  }

  /**
   * A query to register as a persisted query, from `address`: whether it may be stored. Past the
   * limit the query still runs, unstored; the client sends its text again next time.
   */
  async persistQuery(address: string | undefined): Promise<boolean> {
    return (await this.waitOf(this.persistedQueries, address ?? "unknown", 1)) === 0;
  }

  /**
   * Counts a socket against its user's and its address's open sockets. Answers null when either is
   * full, else the function that stops counting it; while it counts, renew() keeps its lease.
   */
  async openSocket(socketId: string, userId: string, address: string | undefined): Promise<OpenSocket | null> {
    const keys = [`${this.prefix}sockets:u:${userId}`, `${this.prefix}sockets:a:${address ?? "unknown"}`];
    const release = () => {
      for (const key of keys) this.redis.zrem(key, socketId).catch(() => undefined);
    };
    if (!this.settings.enabled) return { release: () => undefined, renew: () => undefined };
    const limits = [this.settings.socketsPerUser, this.settings.socketsPerAddress];
    for (const [i, key] of keys.entries()) {
      const admitted = await this.quietly(() =>
        runScript(this.redis, OPEN_SOCKET, key, Date.now(), socketId, limits[i] ?? 0, SOCKET_LEASE_MS),
      );
      if (admitted === 0) {
        this.refused(i === 0 ? "sockets-user" : "sockets-address");
        release();
        return null;
      }
    }
    return {
      release,
      renew: () => {
        const until = Date.now() + SOCKET_LEASE_MS;
        for (const key of keys) this.redis.zadd(key, "XX", until, socketId).catch(() => undefined);
      },
    };
  }

  /** How often an open socket renews its lease. */
  readonly socketRenewMs = SOCKET_LEASE_MS / 3;

  /** The limits of one socket, counted in this process: the socket lives here only. */
  forSocket(): SocketLimits {
    return new SocketLimits(this.settings, this.refused);
  }

  /** Counts `points` against `key`; refused, throws RATE_LIMITED with `message`. */
  private async take(limiter: RateLimiterAbstract, key: string, points: number, message: string): Promise<void> {
    const wait = await this.waitOf(limiter, key, points);
    if (wait > 0) throw rateLimited(message, wait);
  }

  /** Counts `points` against `key`: the seconds to wait when refused, else 0 (also when Redis fails). */
  private async waitOf(limiter: RateLimiterAbstract, key: string, points: number): Promise<number> {
    if (!this.settings.enabled) return 0;
    try {
      await limiter.consume(key, points);
      return 0;
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        this.refused(this.names.get(limiter) ?? "unknown");
        return secondsToWait(err);
      }
      this.logger.warn({ err }, "a limit could not be counted; the request goes on");
      return 0;
    }
  }

  /** Runs a counter's call, letting the request through when Redis cannot answer. */
  private async quietly<T>(call: () => Promise<T>): Promise<T | null> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof RateLimiterRes) return err as T;
      this.logger.warn({ err }, "a limit could not be counted; the request goes on");
      return null;
    }
  }
}

export interface OpenSocket {
  release(): void;
  renew(): void;
}

/** Operations and messages of one socket, per minute. */
export class SocketLimits {
  private readonly operations: RateLimiterMemory;
  private readonly messages: RateLimiterMemory;

  constructor(
    private readonly settings: LimitSettings,
    private readonly refused: (limit: string) => void = () => undefined,
  ) {
    this.operations = new RateLimiterMemory({ points: settings.operationsPerSocket, duration: 60 });
    this.messages = new RateLimiterMemory({ points: settings.messagesPerSocket, duration: 60 });
  }

  /** Answers the seconds to wait before another operation, or 0 when it may start. */
  async operation(): Promise<number> {
    if (!this.settings.enabled) return 0;
    const wait = await waitFor(this.operations);
    if (wait > 0) this.refused("socket-operations");
    return wait;
  }

  /** Answers whether the socket went over its message rate with this message. */
  async message(): Promise<boolean> {
    if (!this.settings.enabled) return false;
    const over = (await waitFor(this.messages)) > 0;
    if (over) this.refused("socket-messages");
    return over;
  }
}

async function waitFor(limiter: RateLimiterMemory): Promise<number> {
  try {
    await limiter.consume("socket");
    return 0;
  } catch (err) {
    if (err instanceof RateLimiterRes) return secondsToWait(err);
    throw err;
  }
}

function loginKey(account: string, address: string | undefined): string {
  return address === undefined ? account : `${account}|${address}`;
}

/** When a refused caller may come back, in whole seconds and at least 1, as `retryAfterSeconds` says. */
function secondsToWait(refusal: RateLimiterRes): number {
  return Math.max(1, Math.ceil(refusal.msBeforeNext / 1000));
}
