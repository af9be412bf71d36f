import { Redis } from "ioredis";
import type { Logger } from "./logger.js";

export type { Redis };

/**
 * A Redis client that keeps retrying while the server is away (the process should survive a Redis
 * restart) and logs, rather than throws, connection errors.
 */
export function createRedis(url: string, logger: Logger, role: string): Redis {
  const client = new Redis(url, {
    connectionName: `herald:${role}`,
    maxRetriesPerRequest: null,
    // Commands issued in the same tick go out in one write: on small VMs each socket write is a
    // costly system call, and a job or a request issues several at once.
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5000),
  });
  client.on("error", (err: Error) => logger.warn({ err: err.message, role }, "redis connection error"));
  return client;
}

/**
 * Calls `listener` each time the client is ready again after losing its connection (a Redis
 * restart, a network cut): what Redis lost, or what was published meanwhile, may need redoing.
 * Not on the first connection. Answers how to stop.
 */
export function onReconnected(client: Redis, listener: () => void): () => void {
  let wasDown = false;
  const down = () => (wasDown = true);
  const ready = () => {
    if (!wasDown) return;
    wasDown = false;
    listener();
  };
  client.on("close", down);
  client.on("ready", ready);
  return () => {
    client.off("close", down);
    client.off("ready", ready);
  };
}

export async function pingRedis(client: Redis): Promise<void> {
  const answer: string = await client.ping();
  if (answer !== "PONG") throw new Error(`unexpected PING answer: ${answer}`);
}

/** A Lua script that clients run by its SHA (see defineScripts). */
export interface RedisScript {
  /** Unique per process: it becomes a method of the client. */
  readonly name: string;
  readonly keys: number;
  readonly lua: string;
}

/**
 * Makes the scripts methods of the client (ioredis's defineCommand), which run them with EVALSHA
 * and load them on the first NOSCRIPT: a script's text then crosses the wire once, instead of with
 * every call (a job's life runs five of them). Pipelines made from the client afterwards have them
 * too. Safe to call again for the same client.
 */
export function defineScripts(client: Redis, scripts: readonly RedisScript[]): void {
  for (const script of scripts) {
    if (!(script.name in client)) client.defineCommand(script.name, { numberOfKeys: script.keys, lua: script.lua });
  }
}

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

/** Runs a script made a method of `target` (a client, or one of its pipelines) by defineScripts. */
export function runScript(target: object, script: RedisScript, ...args: (string | number)[]): Promise<unknown> {
  const call = (target as Record<string, ScriptCall | undefined>)[script.name];
  if (!call) throw new Error(`the Redis script ${script.name} was not defined on this client`);
  return call.apply(target, args);
}
