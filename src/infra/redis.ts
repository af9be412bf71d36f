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

export async function pingRedis(client: Redis): Promise<void> {
  const answer: string = await client.ping();
  if (answer !== "PONG") throw new Error(`unexpected PING answer: ${answer}`);
}
