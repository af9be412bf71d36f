// Counts the commands Herald's processes send to MongoDB, and how long the server takes to answer
// each, by sitting between them and the server as a TCP proxy. Counting on the wire works the same
// on FerretDB and on a real mongod, needs no profiler or server privileges, and sees Agenda's
// queries as well as MikroORM's.
import { Worker } from "node:worker_threads";

/** Calls of one kind, and the milliseconds from each request to its reply, summed. */
export interface Tally {
  calls: number;
  ms: number;
}

/** Commands seen, keyed by command name ("find") and by command and collection ("find agendaJobs"). */
export interface WireCounts {
  messages: number;
  bytes: number;
  byCommand: Map<string, Tally>;
  byCollection: Map<string, Tally>;
}

/** A proxy that counts, running in its own thread (see wire-counter-thread.ts). */
export interface WireCounter {
  /** The URL Herald's processes get instead of the server's, for `database`. */
  url(database: string): string;
  snapshot(): Promise<WireCounts>;
  stop(): Promise<void>;
}

const OP_MSG = 2013;
const OP_QUERY = 2004;
const OP_COMPRESSED = 2012;
const BSON_STRING = 0x02;
/**
 * How much of each message is read: the command name and collection sit at its start. A larger
 * message (an insertMany's documents) is forwarded without being copied.
 */
const HEAD_BYTES = 512;
const HEADER_BYTES = 16;

/**
 * Follows one direction of a connection message by message (16-byte header: length, request id,
 * response-to, opcode) and hands over the start of each message: its header and, within
 * HEAD_BYTES, the command.
 */
export class WireMessageReader {
  private head: Buffer = Buffer.alloc(0);
  private skip = 0;
  private broken = false;

  constructor(
    private readonly onMessage: (head: Buffer, length: number) => void,
    private readonly onBroken: () => void = () => {},
  ) {}

  feed(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.broken) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - offset);
        this.skip -= n;
        offset += n;
        continue;
      }
      if (this.head.length >= 4 && this.head.readInt32LE(0) < HEADER_BYTES) {
        // Not the wire protocol we know: stop reading this connection rather than misread it.
        this.broken = true;
        this.onBroken();
        return;
      }
      const want = this.head.length < 4 ? 4 : Math.min(this.head.readInt32LE(0), HEAD_BYTES);
      const n = Math.min(want - this.head.length, chunk.length - offset);
      this.head = Buffer.concat([this.head, chunk.subarray(offset, offset + n)]);
      offset += n;
      if (this.head.length < want || want === 4) continue;
      const length = this.head.readInt32LE(0);
      this.onMessage(this.head, length);
      this.skip = length - this.head.length;
      this.head = Buffer.alloc(0);
    }
  }
}

export const requestId = (head: Buffer) => head.readInt32LE(4);
export const responseTo = (head: Buffer) => head.readInt32LE(8);

/** The command name and, when the command's first value is a string, the collection it names. */
export function describe(head: Buffer): [string, string | undefined] {
  const opCode = head.readInt32LE(12);
  if (opCode === OP_MSG) return describeOpMsg(head);
  if (opCode === OP_QUERY) {
    // flags, then the full collection name, then skip and limit, then the query document.
    const nameEnd = head.indexOf(0, 20);
    if (nameEnd < 0) return ["(OP_QUERY)", undefined];
    return firstElement(head, nameEnd + 1 + 8) ?? ["(OP_QUERY)", undefined];
  }
  if (opCode === OP_COMPRESSED) return ["(compressed)", undefined];
  return [`(opcode ${opCode})`, undefined];
}

function describeOpMsg(head: Buffer): [string, string | undefined] {
  // After the flag bits come sections: kind 0 is the command document, kind 1 a document
  // sequence (size first) that drivers may put before it.
  let pos = HEADER_BYTES + 4;
  while (pos < head.length) {
    const kind = head[pos];
    pos += 1;
    if (kind === 0) return firstElement(head, pos) ?? ["(truncated)", undefined];
    if (kind !== 1 || pos + 4 > head.length) break;
    pos += head.readInt32LE(pos);
  }
  return ["(OP_MSG)", undefined];
}

/** A BSON document's first element, at `start`: its name, and its value when that is a string. */
function firstElement(head: Buffer, start: number): [string, string | undefined] | undefined {
  const typePos = start + 4;
  if (typePos >= head.length) return undefined;
  const nameEnd = head.indexOf(0, typePos + 1);
  if (nameEnd < 0) return undefined;
  const name = head.toString("utf8", typePos + 1, nameEnd);
  if (head[typePos] !== BSON_STRING || nameEnd + 5 > head.length) return [name, undefined];
  const valueLength = head.readInt32LE(nameEnd + 1);
  const valueEnd = nameEnd + 5 + valueLength - 1;
  return [name, valueEnd <= head.length ? head.toString("utf8", nameEnd + 5, valueEnd) : undefined];
}

/**
 * Starts the proxy in front of `serverUrl`'s MongoDB. Undefined when the URL names several hosts or
 * an SRV record: the driver would then find and use the servers behind the proxy's back.
 */
export async function startWireCounter(serverUrl: string): Promise<WireCounter | undefined> {
  const match = /^mongodb:\/\/((?:[^@/]*@)?)([^/?,]+)(?:\/[^?]*)?(?:\?(.*))?$/.exec(serverUrl);
  if (!match) return undefined;
  const [, credentials = "", hostPort = "", query = ""] = match;
  const colon = hostPort.lastIndexOf(":");
  const bracketed = colon > hostPort.lastIndexOf("]");
  const host = (bracketed ? hostPort.slice(0, colon) : hostPort).replace(/^\[(.*)\]$/, "$1");
  const port = bracketed ? Number(hostPort.slice(colon + 1)) : 27017;
  const worker = new Worker(new URL("./wire-counter-thread.js", import.meta.url), {
    workerData: { host, port },
  });
  const listening = await new Promise<number>((resolve, reject) => {
    worker.once("error", reject);
    worker.once("message", (message: { port: number }) => resolve(message.port));
  });
  // Pinned to the one server: a replica-set member would otherwise send the driver elsewhere.
  const params = new URLSearchParams(query);
  params.set("directConnection", "true");
  let nextRequest = 0;
  return {
    url: (database) => `mongodb://${credentials}127.0.0.1:${listening}/${database}?${params.toString()}`,
    snapshot: () =>
      new Promise((resolve, reject) => {
        const id = (nextRequest += 1);
        const onMessage = (message: { id?: number; counts?: SerializedCounts }) => {
          if (message.id !== id || !message.counts) return;
          worker.off("message", onMessage);
          worker.off("error", reject);
          resolve(deserialize(message.counts));
        };
        worker.on("message", onMessage);
        worker.once("error", reject);
        worker.postMessage({ id });
      }),
    stop: async () => {
      await worker.terminate();
    },
  };
}

/** What the thread posts: Maps do survive structured cloning, but plain entries keep the contract obvious. */
export interface SerializedCounts {
  messages: number;
  bytes: number;
  byCommand: [string, Tally][];
  byCollection: [string, Tally][];
}

export function serialize(counts: WireCounts): SerializedCounts {
  return {
    messages: counts.messages,
    bytes: counts.bytes,
    byCommand: [...counts.byCommand],
    byCollection: [...counts.byCollection],
  };
}

function deserialize(counts: SerializedCounts): WireCounts {
  return {
    messages: counts.messages,
    bytes: counts.bytes,
    byCommand: new Map(counts.byCommand),
    byCollection: new Map(counts.byCollection),
  };
}

/** What was counted between two snapshots. */
export function wireDelta(before: WireCounts, after: WireCounts): WireCounts {
  const minus = (a: Map<string, Tally>, b: Map<string, Tally>) => {
    const delta = new Map<string, Tally>();
    for (const [key, { calls, ms }] of a) {
      const prior = b.get(key) ?? { calls: 0, ms: 0 };
      if (calls > prior.calls) delta.set(key, { calls: calls - prior.calls, ms: ms - prior.ms });
    }
    return delta;
  };
  return {
    messages: after.messages - before.messages,
    bytes: after.bytes - before.bytes,
    byCommand: minus(after.byCommand, before.byCommand),
    byCollection: minus(after.byCollection, before.byCollection),
  };
}

export function addWireCounts(a: WireCounts, b: WireCounts): WireCounts {
  const plus = (x: Map<string, Tally>, y: Map<string, Tally>) => {
    const sum = new Map(x);
    for (const [key, { calls, ms }] of y) {
      const prior = sum.get(key) ?? { calls: 0, ms: 0 };
      sum.set(key, { calls: prior.calls + calls, ms: prior.ms + ms });
    }
    return sum;
  };
  return {
    messages: a.messages + b.messages,
    bytes: a.bytes + b.bytes,
    byCommand: plus(a.byCommand, b.byCommand),
    byCollection: plus(a.byCollection, b.byCollection),
  };
}
