// Entry of `npm test`: starts a throwaway FerretDB and Redis (unless MONGO_URL / REDIS_URL name
// servers to use), runs the compiled tests with node --test against them, then cleans up.
//
//   node dist/test/run.js [--node-test-option=value ...] [file, directory or glob ...]
//
// Without files it runs dist/test/**/*.test.js. Options for node --test must be written with '='
// (--test-name-pattern=inbox) so they cannot be mistaken for file names.
import { existsSync, globSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { redactUrl } from "../src/config/config.js";
import { log, runMain } from "../dev/cli.js";
import { projectRoot, runChild, startFerretDb, startRedis, stopAll, type RunningServer } from "../dev/local-stack.js";

const DEFAULT_PATTERN = "dist/test/**/*.test.js";
const NODE_TEST_ARGS = ["--test", "--test-concurrency=1", "--test-reporter=spec"];

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const options = args.filter((arg) => arg.startsWith("-"));
  // Resolved before any server starts, so a typo fails fast.
  const files = testFiles(args.filter((arg) => !arg.startsWith("-")));
  const tempDir = await mkdtemp(path.join(tmpdir(), "herald-test-"));
  const servers: RunningServer[] = [];
  try {
    const mongoUrl = await mongoForTests(tempDir, servers);
    const redisUrl = await redisForTests(tempDir, servers);
    const env = {
      ...process.env,
      TEST_MONGO_URL: mongoUrl,
      TEST_REDIS_URL: redisUrl,
    };
    return await runChild(process.execPath, [...NODE_TEST_ARGS, ...options, ...files], env);
  } finally {
    await stopAll(servers);
    await rm(tempDir, { recursive: true, force: true });
  }
}

function testFiles(targets: readonly string[]): string[] {
  if (targets.length === 0) {
    const root = projectRoot();
    const files = globSync(DEFAULT_PATTERN, { cwd: root }).map((file) => path.join(root, file));
    if (files.length === 0) throw new Error(`no test files match ${DEFAULT_PATTERN}: is the project built?`);
    return relativeSorted(files);
  }
  const files = new Set<string>();
  for (const target of targets) {
    const matches = expandTarget(target);
    if (matches.length === 0) throw new Error(`no test files match ${target}`);
    for (const match of matches) files.add(path.resolve(match));
  }
  return relativeSorted([...files]);
}

function expandTarget(target: string): string[] {
  if (/[*?[\]{}]/.test(target)) return globSync(target);
  if (!existsSync(target)) return [];
  return statSync(target).isDirectory() ? globSync(path.join(target, "**/*.test.js")) : [target];
}

function relativeSorted(files: readonly string[]): string[] {
  return files.map((file) => path.relative(process.cwd(), file) || file).sort();
}

async function mongoForTests(tempDir: string, servers: RunningServer[]): Promise<string> {
  const given = process.env["MONGO_URL"];
  if (given) {
    log(`tests use MongoDB at ${redactUrl(given)} (from MONGO_URL)`);
    return given;
  }
  const server = await startFerretDb({
    dataDir: path.join(tempDir, "ferretdb"),
  });
  servers.push(server);
  log(`tests use a throwaway FerretDB at ${server.url}`);
  return server.url;
}

async function redisForTests(tempDir: string, servers: RunningServer[]): Promise<string> {
  const given = process.env["REDIS_URL"];
  if (given) {
    log(`tests use Redis at ${redactUrl(given)} (from REDIS_URL)`);
    return given;
  }
  const server = await startRedis({
    dataDir: path.join(tempDir, "redis"),
    persist: false,
  });
  servers.push(server);
  log(`tests use a throwaway Redis at ${server.url}`);
  return server.url;
}

runMain(main);
