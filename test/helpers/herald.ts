import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { ObjectId, type Db } from "mongodb";
import { freePort } from "../../dev/local-stack.js";
import { Keyring, TokenService } from "../../src/modules/user/token.service.js";
import { eventually } from "./graphql-client.js";
import { testMongoUrl, testRedisUrl } from "./env.js";

const MAIN = fileURLToPath(new URL("../../src/main.js", import.meta.url));

export const TEST_SERVICE_KEY = "test-service-key-0123456789";
export const TEST_JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789";

/** A running Herald OS process, started as `npm start` would start it. */
export interface HeraldProcess {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** The environment it was started with (PORT aside), to start a sibling. */
  readonly env: Record<string, string>;
  /** What the process printed, for failure messages. */
  output(): string;
  /** SIGTERM, then the exit code (null when a signal ended it). */
  stop(): Promise<number | null>;
}

/** A fresh database per test file, so files never see each other's data. */
export function uniqueDatabase(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString("hex")}`;
}

const GENEROUS_LIMITS = {
  LIMIT_LOGINS_PER_ADDRESS: "1000000",
  LIMIT_SIGNUPS_PER_ADDRESS: "1000000",
  LIMIT_REFRESHES_PER_LOGIN: "1000000",
  LIMIT_RECIPIENTS_PER_KEY: "100000000",
  LIMIT_MUTATIONS_PER_USER: "1000000",
  LIMIT_SOCKETS_PER_USER: "1000",
  LIMIT_SOCKETS_PER_ADDRESS: "1000000",
  LIMIT_SOCKET_ATTEMPTS_PER_ADDRESS: "1000000",
  LIMIT_PERSISTED_QUERIES_PER_ADDRESS: "1000000",
  LIMIT_SUBSCRIPTIONS_PER_SOCKET: "1000",
  LIMIT_OPERATIONS_PER_SOCKET: "1000000",
  LIMIT_MESSAGES_PER_SOCKET: "1000000",
};

export function baseEnv(database: string): Record<string, string> {
  return {
    MONGO_URL: testMongoUrl(database),
    REDIS_URL: testRedisUrl(),
    JWT_SECRET: TEST_JWT_SECRET,
    SERVICE_API_KEY: TEST_SERVICE_KEY,
    LOG_LEVEL: process.env["TEST_LOG_LEVEL"] ?? "warn",
    // Every test signs up, signs in and connects from this one address: the limits are exercised,
    // out of reach (test/e2e/limits.test.ts sets low ones).
    ...GENEROUS_LIMITS,
    // As deployed: libraries such as Apollo Server behave differently under NODE_ENV=test.
    NODE_ENV: "production",
  };
}

export async function startHerald(env: Record<string, string>): Promise<HeraldProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env["PATH"] ?? "",
      // Node's own options for Herald's processes alone, e.g. --cpu-prof to profile a benchmark.
      ...(process.env["HERALD_NODE_OPTIONS"] ? { NODE_OPTIONS: process.env["HERALD_NODE_OPTIONS"] } : {}),
      ...env,
      PORT: String(port),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const proc: HeraldProcess = {
    url,
    port,
    child,
    env,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
  try {
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`herald exited with ${child.exitCode}:\n${output}`);
        const ready = await fetch(`${url}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
        return ready ? true : undefined;
      },
      { timeoutMs: 30_000, what: `herald (${env["ROLES"] ?? "api,worker"}) to be ready`, intervalMs: 50 },
    );
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return proc;
}

/** One worker and `apis` api instances on one fresh database, as separate OS processes. */
export interface Cluster {
  readonly worker: HeraldProcess;
  readonly apis: HeraldProcess[];
  readonly env: Record<string, string>;
  /** SIGTERM to every process; throws, with their output, unless every one exits 0. */
  stop(): Promise<void>;
}

export async function startCluster(prefix: string, apis = 2, extraEnv: Record<string, string> = {}): Promise<Cluster> {
  const env = { ...baseEnv(uniqueDatabase(prefix)), ...extraEnv };
  const [worker, ...apiProcesses] = await Promise.all([
    startHerald({ ...env, ROLES: "worker" }),
    ...Array.from({ length: apis }, () => startHerald({ ...env, ROLES: "api" })),
  ]);
  if (!worker) throw new Error("no worker started");
  return {
    worker,
    apis: apiProcesses,
    env,
    stop: async () => {
      const procs = [...apiProcesses, worker];
      const codes = await Promise.all(procs.map((p) => p.stop()));
      if (codes.some((code) => code !== 0)) {
        throw new Error(
          `not every process exited 0 on SIGTERM (${codes.join(", ")}):\n${procs.map((p) => p.output()).join("\n")}`,
        );
      }
    },
  };
}

/**
 * Access tokens for users seeded straight into the database (benchmarks), as the Herald started
 * with TEST_JWT_SECRET would issue them at sign-in: each for a login stored like a sign-in's.
 */
export async function seedLogins(db: Db, userIds: readonly string[], ttlSeconds = 6 * 3600): Promise<string[]> {
  const tokens = new TokenService(new Keyring(TEST_JWT_SECRET), ttlSeconds);
  const now = new Date();
  const logins = userIds.map((userId) => ({
    _id: new ObjectId(),
    userId: new ObjectId(userId),
    device: "benchmark",
    createdAt: now,
    lastUsedAt: now,
    refreshHash: "",
    refreshExpiresAt: new Date(now.getTime() + ttlSeconds * 1000),
    endedAt: null,
  }));
  for (let i = 0; i < logins.length; i += 1000) await db.collection("logins").insertMany(logins.slice(i, i + 1000));
  return Promise.all(logins.map(async (l) => (await tokens.issue(l.userId.toHexString(), l._id.toHexString())).token));
}
