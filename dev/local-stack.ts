// Runs the servers Herald needs, FerretDB (the MongoDB wire protocol over SQLite) and Redis, as child
// processes for tests and local runs: these machines have neither Docker nor a mongod.
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { mkdir } from "node:fs/promises";
import { connect, createServer, type Socket } from "node:net";
import { constants as osConstants } from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Redis } from "ioredis";
import { MongoClient } from "mongodb";

export interface RunningServer {
  url: string;
  /** The server's own process (not a wrapper), for figures such as the CPU time it used. */
  pid: number;
  stop(): Promise<void>;
}

const HOST = "127.0.0.1";
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const POLL_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 2_000;
const MAX_START_ATTEMPTS = 3;
const TAIL_CHARS = 4_000;
// One Ctrl-C reaches a supervisor twice: from the terminal and again from npm, which forwards it.
const SIGNAL_ECHO_MS = 500;
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** The project root: this module runs as dist/dev/local-stack.js (tsc output), two levels down. */
export function projectRoot(): string {
  return fileURLToPath(new URL("../../", import.meta.url));
}

/** A TCP port on 127.0.0.1 that was free a moment ago (someone else may take it before we do). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : undefined;
      server.close(() => {
        if (port === undefined) reject(new Error("could not read the port of a listening socket"));
        else resolve(port);
      });
    });
  });
}

export async function startFerretDb(opts: { dataDir: string; port?: number; binary?: string }): Promise<RunningServer> {
  const binary = path.resolve(
    opts.binary ?? process.env["FERRETDB_BIN"] ?? path.join(projectRoot(), ".tools/bin/ferretdb"),
  );
  assertExecutable(
    binary,
    "FerretDB",
    "build it with `sh tools/ferretdb/build.sh .tools/bin/ferretdb` (npm test and npm start do), or set FERRETDB_BIN",
  );
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  // The SQLite handler insists on a directory URL that ends with '/'. FerretDB already runs SQLite
  // in WAL mode; synchronous=NORMAL then syncs at checkpoints instead of at every commit, which
  // survives a crash of any process and loses only the last commits on power loss: right for
  // test and development data, and it makes each write cheaper (see the benchmark).
  const sqliteUrl = `${pathToFileURL(dataDir + path.sep).href}?_pragma=synchronous(normal)`;
  return startServer(
    {
      name: "FerretDB",
      command: binary,
      args: (port) => [`-listen-addr=${HOST}:${port}`, `-sqlite-url=${sqliteUrl}`, "-log-level=warn"],
      url: (port) => `mongodb://${HOST}:${port}/herald`,
      probe: probeFerretDb,
      missingHint: "build it with `sh tools/ferretdb/build.sh .tools/bin/ferretdb`",
    },
    opts.port,
  );
}

export async function startRedis(opts: { dataDir: string; port?: number; persist: boolean }): Promise<RunningServer> {
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  return startServer(
    {
      name: "Redis",
      command: "redis-server",
      args: (port) => [
        "--port",
        String(port),
        "--bind",
        HOST,
        "--dir",
        dataDir,
        // Jobs live in Redis: with persistence, an accepted job survives a restart. The append-only
        // file is written at once and synced every second, so a crash of Redis loses at most the
        // last second (the recovery sweep schedules that work again); a SIGTERM loses nothing.
        "--appendonly",
        opts.persist ? "yes" : "no",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
      ],
      url: (port) => `redis://${HOST}:${port}`,
      probe: probeRedis,
      missingHint: "install redis-server (Debian: apt-get install redis-server), or set REDIS_URL",
    },
    opts.port,
  );
}

export async function stopAll(servers: readonly RunningServer[]): Promise<void> {
  await Promise.all(servers.map((server) => server.stop()));
}

/**
 * Runs a command with inherited stdout/stderr until it exits, forwarding SIGINT, SIGTERM and SIGHUP,
 * and resolves with a code for process.exit (128 + the signal number when a signal ended it).
 */
export function runChild(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  // In its own process group the child sees each signal once, from us, and not a second copy
  // straight from the terminal; a graceful shutdown that treats a repeat as "force quit" relies on it.
  const child = spawn(command, args, {
    stdio: ["ignore", "inherit", "inherit"],
    env,
    detached: true,
  });
  const lastForwarded = new Map<NodeJS.Signals, number>();
  const forward = (signal: NodeJS.Signals): void => {
    const now = Date.now();
    if (now - (lastForwarded.get(signal) ?? -Infinity) < SIGNAL_ECHO_MS) return;
    lastForwarded.set(signal, now);
    child.kill(signal);
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  return new Promise((resolve) => {
    const finish = (code: number): void => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      resolve(code);
    };
    child.once("error", (error) => {
      if (child.pid !== undefined) return; // a failed kill(), not a failed start
      process.stderr.write(`herald: cannot run ${command}: ${error.message}\n`);
      finish(1);
    });
    child.once("exit", (code, signal) => finish(code ?? 128 + (signal ? osConstants.signals[signal] : 0)));
  });
}

interface ServerSpec {
  name: string;
  command: string;
  args(port: number): string[];
  url(port: number): string;
  /** Resolves once the server on `port` answers and is process `pid` rather than a stranger. */
  probe(port: number, pid: number): Promise<void>;
  missingHint: string;
}

class PortTakenError extends Error {}

async function startServer(spec: ServerSpec, requestedPort: number | undefined): Promise<RunningServer> {
  for (let attempt = 1; ; attempt += 1) {
    const port = requestedPort ?? (await freePort());
    try {
      return await startOnce(spec, port);
    } catch (error) {
      // freePort() cannot reserve the port: another process may bind it between our check and use.
      const retry = error instanceof PortTakenError && requestedPort === undefined && attempt < MAX_START_ATTEMPTS;
      if (!retry) throw error;
    }
  }
}

async function startOnce(spec: ServerSpec, port: number): Promise<RunningServer> {
  const server = new ServerProcess(spec, port);
  try {
    await waitUntilReady(server, spec, port);
  } catch (error) {
    await server.stop();
    throw error;
  }
  server.releaseEventLoop();
  return { url: spec.url(port), pid: server.pid, stop: () => server.stop() };
}

async function waitUntilReady(server: ServerProcess, spec: ServerSpec, port: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let problem = "no answer yet";
  for (;;) {
    if (server.exit) throw server.earlyExitError();
    if (Date.now() >= deadline) {
      throw new Error(
        `${spec.name} was not ready on ${HOST}:${port} within ${READY_TIMEOUT_MS / 1000} s (${problem})${server.tailForError()}`,
      );
    }
    try {
      if (await acceptsConnection(port)) {
        await spec.probe(port, server.pid);
        return;
      }
      problem = "the port does not accept connections";
    } catch (error) {
      problem = error instanceof Error ? error.message : String(error);
    }
    await Promise.race([delay(POLL_INTERVAL_MS), server.exited]);
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

class ServerProcess {
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  private readonly child: ChildProcess;
  private output = "";
  private spawnError: Error | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly spec: ServerSpec,
    private readonly port: number,
  ) {
    // Detached, so a Ctrl-C meant for the app does not reach the server too: the app may still
    // need it while it drains, and its owner stops it afterwards (or the exit guards do).
    this.child = spawn(spec.command, spec.args(port), {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => resolve((this.exit = { code, signal })));
      // A failed start emits 'error' and never 'exit'.
      this.child.once("error", (error) => {
        if (this.child.pid !== undefined) return;
        this.spawnError = error;
        resolve((this.exit = { code: null, signal: null }));
      });
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream?.setEncoding("utf8");
      // Always drained: a server blocks once a pipe nobody reads is full.
      stream?.on("data", (chunk: string) => {
        this.output = (this.output + chunk).slice(-TAIL_CHARS);
      });
    }
    track(this.child, this.exited);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** After start-up the server alone must not keep this process alive; the exit guards end it. */
  releaseEventLoop(): void {
    this.child.unref();
    for (const stream of [this.child.stdout, this.child.stderr]) (stream as Socket | null)?.unref();
    void this.exited.then((exit) => {
      if (this.stopping) return;
      process.stderr.write(
        `herald: ${this.spec.name} on ${HOST}:${this.port} exited unexpectedly (${describeExit(exit)})${this.tailForError()}\n`,
      );
    });
  }

  stop(): Promise<void> {
    this.stopping ??= this.terminate();
    return this.stopping;
  }

  earlyExitError(): Error {
    if (this.spawnError) {
      return new Error(
        `cannot run ${this.spec.name} (${this.spec.command}): ${this.spawnError.message}; ${this.spec.missingHint}`,
      );
    }
    const message = `${this.spec.name} exited before it was ready on ${HOST}:${this.port} (${describeExit(this.exit)})${this.tailForError()}`;
    return /address already in use/i.test(this.output) ? new PortTakenError(message) : new Error(message);
  }

  tailForError(): string {
    const tail = this.output.trim();
    return tail ? `; its last output:\n${tail}` : "";
  }

  private async terminate(): Promise<void> {
    if (this.exit) return;
    this.child.ref(); // the awaited exit has to keep the event loop alive
    this.child.kill("SIGTERM");
    const killer = setTimeout(() => this.child.kill("SIGKILL"), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(killer);
  }
}

function describeExit(exit: Exit | undefined): string {
  if (!exit) return "still running";
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

function assertExecutable(file: string, name: string, hint: string): void {
  try {
    accessSync(file, fsConstants.X_OK);
  } catch {
    throw new Error(`${name} binary not found or not executable at ${file}: ${hint}`);
  }
}

function acceptsConnection(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    socket.setTimeout(PROBE_TIMEOUT_MS);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(false));
  });
}

async function probeFerretDb(port: number, pid: number): Promise<void> {
  const client = new MongoClient(`mongodb://${HOST}:${port}/`, {
    directConnection: true,
    serverSelectionTimeoutMS: PROBE_TIMEOUT_MS,
    connectTimeoutMS: PROBE_TIMEOUT_MS,
    socketTimeoutMS: PROBE_TIMEOUT_MS,
  });
  try {
    await client.connect();
    const admin = client.db("admin");
    await admin.command({ ping: 1 });
    const status = await admin.command({ serverStatus: 1 });
    assertSamePid(status["pid"], pid, port);
  } finally {
    await client.close();
  }
}

async function probeRedis(port: number, pid: number): Promise<void> {
  const client = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    commandTimeout: PROBE_TIMEOUT_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // Failures reach us through the awaited calls; without a listener ioredis reports them as unhandled.
  client.on("error", () => undefined);
  try {
    await client.connect();
    const pong: string = await client.ping();
    if (pong !== "PONG") throw new Error(`PING answered ${pong}`);
    const info = await client.info("server");
    assertSamePid(/^process_id:(\d+)/m.exec(info)?.[1], pid, port);
  } finally {
    client.disconnect();
  }
}

// A server that answers on our port but is not our child means the port was taken before we
// bound it; our child is about to fail with "address already in use".
function assertSamePid(reported: unknown, pid: number, port: number): void {
  if (Number(reported) !== pid) {
    throw new Error(`port ${port} is answered by another process (pid ${String(reported)}), not ours (pid ${pid})`);
  }
}

// Child servers must not outlive this process. 'exit' covers normal ends; a fatal signal with no
// other listener skips 'exit', so we listen for it ourselves while servers run.
const liveChildren = new Set<ChildProcess>();

function track(child: ChildProcess, exited: Promise<Exit>): void {
  if (liveChildren.size === 0) installGuards();
  liveChildren.add(child);
  void exited.then(() => {
    liveChildren.delete(child);
    if (liveChildren.size === 0) removeGuards();
  });
}

function installGuards(): void {
  process.on("exit", killLiveChildren);
  for (const signal of FORWARDED_SIGNALS) process.on(signal, onFatalSignal);
}

function removeGuards(): void {
  process.off("exit", killLiveChildren);
  for (const signal of FORWARDED_SIGNALS) process.off(signal, onFatalSignal);
}

function killLiveChildren(): void {
  for (const child of liveChildren) child.kill("SIGTERM");
}

function onFatalSignal(signal: NodeJS.Signals): void {
  // Another listener owns shutdown (launch.ts and test/run.ts stop the servers after their child).
  if (process.listenerCount(signal) > 1) return;
  killLiveChildren();
  removeGuards();
  // With no listener left the signal's default action applies: die of it, as without us.
  process.kill(process.pid, signal);
}
