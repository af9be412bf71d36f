import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ObjectId } from "@mikro-orm/mongodb";
import { decodeCursor, encodeCursor } from "../../src/graphql/cursor.js";
import { reviveDates } from "../../src/infra/pubsub.js";

describe("cursors", () => {
  it("round-trip the position", () => {
    const id = new ObjectId();
    const at = new Date("2026-01-02T03:04:05.678Z");
    const decoded = decodeCursor(encodeCursor(at, id.toHexString()));
    assert.equal(decoded?.createdAt.getTime(), at.getTime());
    assert.equal(decoded?.id.toHexString(), id.toHexString());
  });

  it("reject strings Herald did not issue", () => {
    for (const bad of [
      "",
      "garbage",
      Buffer.from("[1]").toString("base64url"),
      Buffer.from('[1,"zz"]').toString("base64url"),
      // Well-formed, but no time a Date can hold: the driver would fail on them.
      Buffer.from(`[1e300,"${new ObjectId().toHexString()}"]`).toString("base64url"),
      Buffer.from(`[${-8.64e15 - 1},"${new ObjectId().toHexString()}"]`).toString("base64url"),
    ]) {
      assert.equal(decodeCursor(bad), null, bad);
    }
  });
});

describe("payloads through Redis", () => {
  it("come back with Dates for …At fields and strings elsewhere", () => {
    const payload = {
      createdAt: new Date("2026-01-02T03:04:05.678Z"),
      readAt: null,
      title: "2026-01-02T03:04:05.678Z",
    };
    const revived = JSON.parse(JSON.stringify(payload), reviveDates) as typeof payload;
    assert.ok(revived.createdAt instanceof Date);
    assert.equal(revived.createdAt.toISOString(), "2026-01-02T03:04:05.678Z");
    assert.equal(revived.readAt, null);
    assert.equal(typeof revived.title, "string");
  });
});
