import { z } from "zod";

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
  JWT_SECRET: z.string().min(32, "must be at least 32 characters"),
  JWT_TTL_SECONDS: positiveInt(7 * 24 * 3600),
  SERVICE_API_KEY: z.string().min(16, "must be at least 16 characters"),
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
  readonly jwt: { readonly secret: string; readonly ttlSeconds: number };
  readonly serviceApiKey: string;
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
  /** `["*"]` allows any origin: safe because Herald authenticates with headers, never cookies. */
  readonly corsOrigins: readonly string[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** The only reader of process.env. Values are never echoed back: secrets stay out of messages. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(emptyAsMissing(source));
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join(".") || "(environment)"}: ${describe(issue)}`),
    );
  }
  const env = parsed.data;
  return deepFreeze({
    env: env.NODE_ENV,
    port: env.PORT,
    mongoUrl: env.MONGO_URL,
    mongoTimeoutMs: env.MONGO_TIMEOUT_MS,
    redisUrl: env.REDIS_URL,
    jwt: { secret: env.JWT_SECRET, ttlSeconds: env.JWT_TTL_SECONDS },
    serviceApiKey: env.SERVICE_API_KEY,
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
