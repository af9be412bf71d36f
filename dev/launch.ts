// Entry of `npm start`. With MONGO_URL and REDIS_URL set it only runs the app (main.js). Otherwise
// it first starts a local FerretDB and/or Redis whose data stays under .data/ between runs, and
// fills in development secrets, so a fresh checkout runs with no configuration.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { log, runMain } from "./cli.js";
import { projectRoot, runChild, startFerretDb, startRedis, stopAll, type RunningServer } from "./local-stack.js";

const MAIN = fileURLToPath(new URL("../src/main.js", import.meta.url));
const SECRET_NAMES = ["JWT_SECRET", "SERVICE_API_KEY"] as const;
type SecretName = (typeof SECRET_NAMES)[number];
type LocalSecrets = Record<SecretName, string>;

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (process.env["MONGO_URL"] && process.env["REDIS_URL"]) {
    return runChild(process.execPath, [MAIN, ...args], process.env);
  }
  const dataDir = path.join(projectRoot(), ".data");
  const env = { ...process.env };
  const servers = await startLocalServers(dataDir, env);
  try {
    await applyLocalSecrets(dataDir, env);
    return await runChild(process.execPath, [MAIN, ...args], env);
  } finally {
    await stopAll(servers);
  }
}

async function startLocalServers(dataDir: string, env: NodeJS.ProcessEnv): Promise<RunningServer[]> {
  const servers: RunningServer[] = [];
  try {
    if (!env["MONGO_URL"]) {
      const mongo = await startFerretDb({
        dataDir: path.join(dataDir, "ferretdb"),
      });
      servers.push(mongo);
      env["MONGO_URL"] = mongo.url;
      log(`started FerretDB at ${mongo.url} (data in .data/ferretdb/)`);
    }
    if (!env["REDIS_URL"]) {
      const redis = await startRedis({
        dataDir: path.join(dataDir, "redis"),
        persist: true,
      });
      servers.push(redis);
      env["REDIS_URL"] = redis.url;
      log(`started Redis at ${redis.url} (data in .data/redis/)`);
    }
    return servers;
  } catch (error) {
    await stopAll(servers);
    throw error;
  }
}

// Random per checkout, and stored so that issued tokens and configured API clients survive restarts.
async function applyLocalSecrets(dataDir: string, env: NodeJS.ProcessEnv): Promise<void> {
  const missing = SECRET_NAMES.filter((name) => !env[name]);
  if (missing.length === 0) return;
  const secrets = await loadOrCreateSecrets(path.join(dataDir, "local-secrets.json"));
  for (const name of missing) env[name] = secrets[name];
  log(
    `${missing.join(" and ")} come from .data/local-secrets.json: local development secrets, ` +
      "not for any shared deployment (set them in the environment there)",
  );
}

async function loadOrCreateSecrets(file: string): Promise<LocalSecrets> {
  const stored = await readSecretsFile(file);
  const secrets: LocalSecrets = {
    JWT_SECRET: stored["JWT_SECRET"] ?? randomSecret(),
    SERVICE_API_KEY: stored["SERVICE_API_KEY"] ?? randomSecret(),
  };
  if (SECRET_NAMES.some((name) => stored[name] === undefined)) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, `${JSON.stringify(secrets, null, 2)}\n`, {
      mode: 0o600,
    });
  }
  return secrets;
}

async function readSecretsFile(file: string): Promise<Partial<LocalSecrets>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null) throw new Error("not a JSON object");
    const record = parsed as Record<string, unknown>;
    const secrets: Partial<LocalSecrets> = {};
    for (const name of SECRET_NAMES) {
      const value = record[name];
      if (typeof value === "string" && value !== "") secrets[name] = value;
    }
    return secrets;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot read ${file} (${reason}); delete it to generate new local secrets`);
  }
}

function randomSecret(): string {
  return randomBytes(48).toString("base64url");
}

runMain(main);
