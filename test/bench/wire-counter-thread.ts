// The counting proxy of wire-counter.ts. It runs in a thread of its own so that the bench's client
// work (a thousand sockets receiving a fan-out) never holds up Herald's database traffic.
import { connect, createServer, type Socket } from "node:net";
import { parentPort, workerData } from "node:worker_threads";
import { serialize, WireCommandParser, type WireCounts } from "./wire-counter.js";

const { host, port } = workerData as { host: string; port: number };
const counts: WireCounts = { messages: 0, bytes: 0, byCommand: new Map(), byCollection: new Map() };
const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
const sockets = new Set<Socket>();

const server = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host, port, noDelay: true });
  sockets.add(client).add(upstream);
  const parser = new WireCommandParser((command, collection, bytes) => {
    counts.messages += 1;
    counts.bytes += bytes;
    bump(counts.byCommand, command);
    if (collection !== undefined) bump(counts.byCollection, `${command} ${collection}`);
  });
  client.on("data", (chunk: Buffer) => parser.feed(chunk));
  client.pipe(upstream);
  upstream.pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  for (const socket of [client, upstream]) {
    socket.on("error", close);
    socket.on("close", close);
  }
});

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  parentPort?.postMessage({ port: typeof address === "object" && address ? address.port : 0 });
});

parentPort?.on("message", (message: { id: number }) => {
  parentPort?.postMessage({ id: message.id, counts: serialize(counts) });
});
