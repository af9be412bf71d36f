import { z } from "zod";
import type { LimitSettings } from "../infra/limits.js";

export const ROLES = ["api", "worker"] as const;
export type Role = (typeof ROLES)[number];

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const url = (protocols: string[]) =>
  z.url().refine((value) => protocols.some((p) => value.startsWith(`${p}://`)), {
    message: `must be a ${protocols.join(" or ")} URL`,
  });

/** How long one MongoDB operation may take, everything included (see createOrm). */
export const DEFAULT_MONGO_TIMEOUT_MS = 30_000;

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const schema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  MONGO_URL: url(["mongodb", "mongodb+srv"]),
  MONGO_TIMEOUT_MS: positiveInt(DEFAULT_MONGO_TIMEOUT_MS),
  REDIS_URL: url(["redis", "rediss"]),
  /** Signs access tokens and unsubscribe links; the key id in each token is derived from it. */
  JWT_SECRET: z.string().min(32, "must be at least 32 characters"),
  /** Earlier secrets (comma-separated) that still verify, while their tokens and links live on. */
  JWT_PREVIOUS_SECRETS: z
    .string()
    .default("")
    .transform(list)
    .pipe(z.array(z.string().min(32, "each must be at least 32 characters"))),
  /** Lifetime of an access token: short, since a stolen one works until it expires. */
  JWT_TTL_SECONDS: positiveInt(15 * 60),
  /** Lifetime of a refresh token; each refresh issues a new one, so a login used monthly lives on. */
  REFRESH_TTL_SECONDS: positiveInt(30 * 24 * 3600),
  /** The one service key, named `default`; SERVICE_API_KEYS holds several named ones. */
  SERVICE_API_KEY: z.string().min(16, "must be at least 16 characters").optional(),
  /** name:key pairs, comma-separated: several keys valid at once, so one is replaced without downtime. */
  SERVICE_API_KEYS: z
    .string()
    .default("")
    .transform(list)
    .pipe(
      z.array(
        z
          .string()
          .regex(
            /^[\w.-]{1,64}:.{16,}$/,
            "each must be name:key, the name of letters, digits, '.', '_' or '-', the key of 16+ characters",
          ),
      ),
    ),
  ROLES: z
    .string()
    .default("api,worker")
    .transform((value) =>
      value
        .split(",")
        .map((r) => r.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(ROLES)).nonempty("must name at least one of api, worker")),
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  PUBLIC_URL: url(["http", "https"]).default("http://localhost:4000"),
  SMTP_URL: url(["smtp", "smtps"]).optional(),
  EMAIL_FROM: z.string().min(3).default("Herald <notifications@herald.localhost>"),
  EMAIL_MAX_ATTEMPTS: positiveInt(5),
  EMAIL_RETRY_DELAY_MS: positiveInt(1000),
  /** Off only to measure polling against the Redis notification channel (benchmarks). */
  AGENDA_NOTIFICATIONS: z.enum(["on", "off"]).default("on"),
  AGENDA_PROCESS_EVERY_MS: positiveInt(5000),
  AGENDA_LOCK_LIFETIME_MS: positiveInt(60_000),
  // Jobs wait on the database far more than they compute, and those in flight together are
  // written together (GroupCommit): 64 made a comment cost FerretDB 30 % less CPU than 20.
  WORKER_CONCURRENCY: positiveInt(64),
  SHUTDOWN_TIMEOUT_MS: positiveInt(15000),
  /** How old unfinished work must be before the recovery sweep takes it for lost and redoes it. */
  RECOVERY_GRACE_MS: positiveInt(60_000),
  /** Events of each user's inbox stream kept for clients resuming (inboxEvents). */
  INBOX_HISTORY_EVENTS: positiveInt(1000),
  /** How long they are kept (48 hours: a phone asleep overnight, or off for a weekend day). */
  INBOX_HISTORY_SECONDS: positiveInt(48 * 3600),
  /**
   * Which proxies in front of Herald are trusted to say the client's address (X-Forwarded-For), as
   * Express's "trust proxy": by default those on private networks, the usual load balancers.
   */
  TRUST_PROXY: z
    .string()
    .default("loopback, linklocal, uniquelocal")
    .transform((value) => (/^\d+$/.test(value.trim()) ? Number(value) : value)),
  /** Off only to measure what the limits cost (benchmarks). */
  RATE_LIMITS: z.enum(["on", "off"]).default("on"),
  LIMIT_LOGIN_FAILURES: positiveInt(5),
  LIMIT_LOGINS_PER_ADDRESS: positiveInt(100),
  LIMIT_SIGNUPS_PER_ADDRESS: positiveInt(20),
  LIMIT_REFRESHES_PER_LOGIN: positiveInt(60),
  LIMIT_RECIPIENTS_PER_KEY: positiveInt(100_000),
  LIMIT_MUTATIONS_PER_USER: positiveInt(300),
  LIMIT_SOCKETS_PER_USER: positiveInt(20),
  LIMIT_SOCKETS_PER_ADDRESS: positiveInt(1000),
  LIMIT_SOCKET_ATTEMPTS_PER_ADDRESS: positiveInt(600),
  LIMIT_PERSISTED_QUERIES_PER_ADDRESS: positiveInt(100),
  LIMIT_SUBSCRIPTIONS_PER_SOCKET: positiveInt(50),
  LIMIT_OPERATIONS_PER_SOCKET: positiveInt(600),
  LIMIT_MESSAGES_PER_SOCKET: positiveInt(1200),
  /** When set, GET /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  /** Where OpenTelemetry traces go (OTLP over HTTP, e.g. http://collector:4318); no traces without it. */
  OTEL_EXPORTER_OTLP_ENDPOINT: url(["http", "https"]).optional(),
  OTEL_SERVICE_NAME: z.string().min(1).default("herald"),
  /** Browser origins allowed to call the API (comma-separated), or * for any. */
  CORS_ORIGINS: z
    .string()
    .default("*")
    .transform((value) =>
      value
        .split(",")
        .map((o) => o.trim().replace(/\/+$/, ""))
        .filter(Boolean),
    ),
});

type Env = z.infer<typeof schema>;

export interface Config {
  readonly env: Env["NODE_ENV"];
  readonly port: number;
  readonly mongoUrl: string;
  /** How long one MongoDB operation may take, everything included: then it fails. */
  readonly mongoTimeoutMs: number;
  readonly redisUrl: string;
  readonly jwt: {
    readonly secret: string;
    readonly previousSecrets: readonly string[];
    readonly ttlSeconds: number;
    readonly refreshTtlSeconds: number;
  };
  /** Keys other backends call with (x-api-key), each with the name logs and records give it. */
  readonly serviceKeys: readonly { readonly name: string; readonly key: string }[];
  readonly roles: readonly Role[];
  readonly logLevel: Env["LOG_LEVEL"];
  readonly publicUrl: string;
  readonly smtpUrl: string | undefined;
  readonly email: { readonly from: string; readonly maxAttempts: number; readonly retryDelayMs: number };
  readonly agenda: {
    readonly notifications: boolean;
    readonly processEveryMs: number;
    /** How long a job stays locked to a worker that went silent before another may run it. */
    readonly lockLifetimeMs: number;
    readonly concurrency: number;
    /** How old unfinished work must be before the recovery sweep redoes it. */
    readonly recoveryGraceMs: number;
  };
  readonly shutdownTimeoutMs: number;
  /** Each user's inbox stream, for clients resuming: events kept and for how long. */
  readonly inboxHistory: { readonly historyEvents: number; readonly historyMs: number };
  /** Proxies trusted to name the client's address (Express's "trust proxy" syntax). */
  readonly trustProxy: string | number;
  readonly limits: LimitSettings;
  /** `["*"]` allows any origin: safe because Herald authenticates with headers, never cookies. */
  readonly corsOrigins: readonly string[];
  /** Absent: /metrics is open to whoever reaches the port. */
  readonly metricsToken: string | undefined;
  /** Absent: no traces are recorded. */
  readonly tracing: { readonly otlpEndpoint: string; readonly serviceName: string } | undefined;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** The only reader of process.env. Values are never echoed back: secrets stay out of messages. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const given = emptyAsMissing(source);
  const parsed = schema.safeParse(given);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((issue) => `${issue.path.join(".") || "(environment)"}: ${describe(issue)}`);
  if (given["SERVICE_API_KEY"] === undefined && given["SERVICE_API_KEYS"] === undefined) {
    problems.push("SERVICE_API_KEY: is required (or SERVICE_API_KEYS)");
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const env = parsed.data;
  return deepFreeze({
    env: env.NODE_ENV,
    port: env.PORT,
    mongoUrl: env.MONGO_URL,
    mongoTimeoutMs: env.MONGO_TIMEOUT_MS,
    redisUrl: env.REDIS_URL,
    jwt: {
      secret: env.JWT_SECRET,
      previousSecrets: env.JWT_PREVIOUS_SECRETS,
      ttlSeconds: env.JWT_TTL_SECONDS,
      refreshTtlSeconds: env.REFRESH_TTL_SECONDS,
    },
    serviceKeys: serviceKeys(env.SERVICE_API_KEY, env.SERVICE_API_KEYS),
    roles: [...new Set(env.ROLES)],
    logLevel: env.LOG_LEVEL,
    publicUrl: env.PUBLIC_URL.replace(/\/+$/, ""),
    smtpUrl: env.SMTP_URL,
    email: { from: env.EMAIL_FROM, maxAttempts: env.EMAIL_MAX_ATTEMPTS, retryDelayMs: env.EMAIL_RETRY_DELAY_MS },
    agenda: {
      notifications: env.AGENDA_NOTIFICATIONS === "on",
      processEveryMs: env.AGENDA_PROCESS_EVERY_MS,
      lockLifetimeMs: env.AGENDA_LOCK_LIFETIME_MS,
      concurrency: env.WORKER_CONCURRENCY,
      recoveryGraceMs: env.RECOVERY_GRACE_MS,
    },
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    inboxHistory: { historyEvents: env.INBOX_HISTORY_EVENTS, historyMs: env.INBOX_HISTORY_SECONDS * 1000 },
    corsOrigins: env.CORS_ORIGINS.length > 0 ? env.CORS_ORIGINS : ["*"],
    metricsToken: env.METRICS_TOKEN,
    tracing: env.OTEL_EXPORTER_OTLP_ENDPOINT
      ? { otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, ""), serviceName: env.OTEL_SERVICE_NAME }
      : undefined,
    trustProxy: env.TRUST_PROXY,
    limits: {
      enabled: env.RATE_LIMITS === "on",
      loginFailures: env.LIMIT_LOGIN_FAILURES,
      loginsPerAddress: env.LIMIT_LOGINS_PER_ADDRESS,
      signupsPerAddress: env.LIMIT_SIGNUPS_PER_ADDRESS,
      refreshesPerLogin: env.LIMIT_REFRESHES_PER_LOGIN,
      recipientsPerKey: env.LIMIT_RECIPIENTS_PER_KEY,
      mutationsPerUser: env.LIMIT_MUTATIONS_PER_USER,
      socketsPerUser: env.LIMIT_SOCKETS_PER_USER,
      socketsPerAddress: env.LIMIT_SOCKETS_PER_ADDRESS,
      socketAttemptsPerAddress: env.LIMIT_SOCKET_ATTEMPTS_PER_ADDRESS,
      persistedQueriesPerAddress: env.LIMIT_PERSISTED_QUERIES_PER_ADDRESS,
      subscriptionsPerSocket: env.LIMIT_SUBSCRIPTIONS_PER_SOCKET,
      operationsPerSocket: env.LIMIT_OPERATIONS_PER_SOCKET,
      messagesPerSocket: env.LIMIT_MESSAGES_PER_SOCKET,
    },
  });
}

/** What the logs may say about the configuration: no secrets, no credentials inside URLs. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    env: config.env,
    port: config.port,
    roles: config.roles,
    mongoUrl: redactUrl(config.mongoUrl),
    mongoTimeoutMs: config.mongoTimeoutMs,
    redisUrl: redactUrl(config.redisUrl),
    smtpUrl: config.smtpUrl === undefined ? undefined : redactUrl(config.smtpUrl),
    publicUrl: config.publicUrl,
    agenda: config.agenda,
    inboxHistory: config.inboxHistory,
    corsOrigins: config.corsOrigins,
    metrics: config.metricsToken ? "token required" : "open",
    tracing: config.tracing ? { otlpEndpoint: redactUrl(config.tracing.otlpEndpoint) } : "off",
    jwt: {
      ttlSeconds: config.jwt.ttlSeconds,
      refreshTtlSeconds: config.jwt.refreshTtlSeconds,
      previousSecrets: config.jwt.previousSecrets.length,
    },
    serviceKeys: config.serviceKeys.map((k) => k.name),
    trustProxy: config.trustProxy,
    limits: config.limits,
  };
}

export function redactUrl(value: string): string {
  try {
    const parsed = new URL(value);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparsable URL)";
  }
}

function list(value: string): string[] {
  return value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

function serviceKeys(single: string | undefined, named: readonly string[]): { name: string; key: string }[] {
  const keys = named.map((pair) => {
    const at = pair.indexOf(":");
    return { name: pair.slice(0, at), key: pair.slice(at + 1) };
  });
  return single ? [{ name: "default", key: single }, ...keys] : keys;
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type" && issue.input === undefined) return "is required";
  return issue.message;
}

function emptyAsMissing(source: NodeJS.ProcessEnv): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(source).map(([k, v]) => [k, v === "" ? undefined : v]));
}

function deepFreeze<T extends object>(value: T): T {
  for (const child of Object.values(value)) {
    if (child !== null && typeof child === "object") deepFreeze(child as object);
  }
  return Object.freeze(value);
}
