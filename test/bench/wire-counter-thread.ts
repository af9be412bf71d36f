// The counting proxy of wire-counter.ts. It runs in a thread of its own so that the bench's client
// work (a thousand sockets receiving a fan-out) never holds up Herald's database traffic, nor
// inflates the server times it records.
import { connect, createServer } from "node:net";
import { parentPort, workerData } from "node:worker_threads";
import {
  describe,
  requestId,
  responseTo,
  serialize,
  WireMessageReader,
  type Tally,
  type WireCounts,
} from "./wire-counter.js";

const { host, port } = workerData as { host: string; port: number };
const counts: WireCounts = { messages: 0, bytes: 0, byCommand: new Map(), byCollection: new Map() };

function tally(map: Map<string, Tally>, key: string): Tally {
  let entry = map.get(key);
  if (!entry) map.set(key, (entry = { calls: 0, ms: 0 }));
  return entry;
}

const server = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host, port, noDelay: true });
  // Requests awaiting their reply, by request id: what the reply's time is charged to.
  const pending = new Map<number, { at: number; tallies: Tally[] }>();
  const requests = new WireMessageReader(
    (head, length) => {
      const [command, collection] = describe(head);
      const tallies = [tally(counts.byCommand, command)];
      if (collection !== undefined) tallies.push(tally(counts.byCollection, `${command} ${collection}`));
      for (const t of tallies) t.calls += 1;
      counts.messages += 1;
      counts.bytes += length;
      pending.set(requestId(head), { at: performance.now(), tallies });
    },
    () => (tally(counts.byCommand, "(unparsable stream)").calls += 1),
  );
  const replies = new WireMessageReader((head) => {
    const request = pending.get(responseTo(head));
    if (!request) return;
    pending.delete(responseTo(head));
    const ms = performance.now() - request.at;
    for (const t of request.tallies) t.ms += ms;
  });
  client.on("data", (chunk: Buffer) => requests.feed(chunk));
  upstream.on("data", (chunk: Buffer) => replies.feed(chunk));
  client.pipe(upstream);
  upstream.pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
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
