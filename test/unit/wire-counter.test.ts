import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BSON } from "mongodb";
import { describe as describeCommand, WireMessageReader } from "../bench/wire-counter.js";

function header(length: number, opCode: number): Buffer {
  const head = Buffer.alloc(16);
  head.writeInt32LE(length, 0);
  head.writeInt32LE(1, 4);
  head.writeInt32LE(0, 8);
  head.writeInt32LE(opCode, 12);
  return head;
}

/** An OP_MSG: flag bits, then optional document sequences (kind 1), then the command (kind 0). */
function opMsg(command: Record<string, unknown>, sequences: { id: string; docs: Record<string, unknown>[] }[] = []) {
  const parts: Buffer[] = [Buffer.alloc(4)];
  for (const seq of sequences) {
    const docs = Buffer.concat(seq.docs.map((d) => Buffer.from(BSON.serialize(d))));
    const id = Buffer.from(`${seq.id}\0`);
    const size = Buffer.alloc(4);
    size.writeInt32LE(4 + id.length + docs.length);
    parts.push(Buffer.from([1]), size, id, docs);
  }
  parts.push(Buffer.from([0]), Buffer.from(BSON.serialize(command)));
  const body = Buffer.concat(parts);
  return Buffer.concat([header(16 + body.length, 2013), body]);
}

function parse(stream: Buffer, chunkSize: number): [string, string | undefined][] {
  const seen: [string, string | undefined][] = [];
  const parser = new WireMessageReader((head) => seen.push(describeCommand(head)));
  for (let i = 0; i < stream.length; i += chunkSize) parser.feed(stream.subarray(i, i + chunkSize));
  return seen;
}

describe("the MongoDB wire command counter", () => {
  const big = { insert: "notifications", documents: [{ body: "x".repeat(5000) }], $db: "herald" };
  const stream = Buffer.concat([
    opMsg({ find: "agendaJobs", filter: {}, $db: "herald" }),
    opMsg(big),
    opMsg({ update: "posts", $db: "herald" }, [{ id: "updates", docs: [{ q: {}, u: { $set: { a: 1 } } }] }]),
    opMsg({ endSessions: [], $db: "admin" }),
  ]);

  it("names each command and its collection, however the stream is cut", () => {
    const expected = [
      ["find", "agendaJobs"],
      ["insert", "notifications"],
      ["update", "posts"],
      ["endSessions", undefined],
    ];
    for (const chunkSize of [1, 3, 16, 17, 100, 511, 512, 513, 4096, stream.length]) {
      assert.deepEqual(parse(stream, chunkSize), expected, `chunks of ${chunkSize} bytes`);
    }
  });

  it("reads a legacy OP_QUERY handshake by its query's first field", () => {
    const query = Buffer.from(BSON.serialize({ isMaster: 1 }));
    const body = Buffer.concat([Buffer.alloc(4), Buffer.from("admin.$cmd\0"), Buffer.alloc(8), query]);
    assert.deepEqual(parse(Buffer.concat([header(16 + body.length, 2004), body]), 7), [["isMaster", undefined]]);
  });
});
