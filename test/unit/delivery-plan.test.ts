import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ObjectId } from "@mikro-orm/mongodb";
import { NotificationKind } from "../../src/modules/notification/notification.enums.js";
import { UserPreferences } from "../../src/modules/preferences/preferences.entity.js";
import { DigestFrequency } from "../../src/modules/preferences/preferences.enums.js";
import { planFor } from "../../src/modules/preferences/preferences.service.js";
import {
  InboxEventType,
  decodeInboxCursor,
  encodeInboxCursor,
  toPayload,
} from "../../src/modules/notification/inbox-events.js";

function prefs(set: (p: UserPreferences) => void): UserPreferences {
  const p = new UserPreferences(new ObjectId());
  set(p);
  return p;
}

describe("delivery planning from preferences", () => {
  it("without preferences: everything in-app, everything emailed at once but new posts", () => {
    assert.deepEqual(planFor(null, NotificationKind.NEW_COMMENT), { inApp: true, email: "now" });
    assert.deepEqual(planFor(null, NotificationKind.NEW_POST), { inApp: true, email: "none" });
    assert.deepEqual(planFor(null, NotificationKind.SYSTEM), { inApp: true, email: "now" });
  });

  it("follows the user's choices per kind, but a SYSTEM notification cannot leave the inbox", () => {
    const p = prefs((p) => {
      p.inApp = { [NotificationKind.NEW_COMMENT]: false, [NotificationKind.SYSTEM]: false };
      p.email = { [NotificationKind.NEW_COMMENT]: false, [NotificationKind.NEW_POST]: true };
    });
    assert.deepEqual(planFor(p, NotificationKind.NEW_COMMENT), { inApp: false, email: "none" });
    assert.deepEqual(planFor(p, NotificationKind.NEW_POST), { inApp: true, email: "now" });
    assert.equal(planFor(p, NotificationKind.SYSTEM).inApp, true);
  });

  it("gathers a kind into the digest only while the digest is on, and not at all once its email is off", () => {
    const gathering = prefs((p) => {
      p.digest = DigestFrequency.DAILY;
      p.digestKinds = [NotificationKind.NEW_FOLLOWER];
    });
    assert.equal(planFor(gathering, NotificationKind.NEW_FOLLOWER).email, "digest");
    assert.equal(planFor(gathering, NotificationKind.NEW_COMMENT).email, "now", "a kind not gathered");
    const off = prefs((p) => {
      p.digest = DigestFrequency.OFF;
      p.digestKinds = [NotificationKind.NEW_FOLLOWER];
    });
    assert.equal(planFor(off, NotificationKind.NEW_FOLLOWER).email, "now");
    const unsubscribed = prefs((p) => {
      p.digest = DigestFrequency.HOURLY;
      p.digestKinds = [NotificationKind.NEW_FOLLOWER];
      p.email = { [NotificationKind.DIGEST]: false };
    });
    assert.equal(planFor(unsubscribed, NotificationKind.NEW_FOLLOWER).email, "none");
    const kindOff = prefs((p) => {
      p.digest = DigestFrequency.HOURLY;
      p.digestKinds = [NotificationKind.NEW_FOLLOWER];
      p.email = { [NotificationKind.NEW_FOLLOWER]: false };
    });
    assert.equal(planFor(kindOff, NotificationKind.NEW_FOLLOWER).email, "none");
  });
});

describe("inbox stream cursors and events", () => {
  const position = { epoch: "0123456789abcdef", seq: 42, id: "1796159864237-3" };

  it("a cursor gives back its position, and anything else is not a cursor", () => {
    assert.deepEqual(decodeInboxCursor(encodeInboxCursor(position)), position);
    for (const bad of ["", "not-a-cursor", Buffer.from("i1:zz:1:1-0").toString("base64url"), "x".repeat(300)]) {
      assert.equal(decodeInboxCursor(bad), null, bad);
    }
    assert.equal(decodeInboxCursor(encodeInboxCursor({ ...position, id: "x" })), null);
  });

  it("an event says which notification, and when: from its stream id", () => {
    const deleted = toPayload({
      ...position,
      version: 7,
      unreadCount: 3,
      change: { type: InboxEventType.DELETED, notificationId: "n1" },
    });
    assert.equal(deleted.notificationId, "n1");
    assert.equal(deleted.notification, null);
    assert.equal(deleted.at.getTime(), 1796159864237);
    assert.deepEqual(deleted.position, position);
    const allRead = toPayload({ position, unreadCount: 0, change: { type: InboxEventType.ALL_READ } });
    assert.equal(allRead.notificationId, null);
    assert.equal(allRead.type, InboxEventType.ALL_READ);
  });
});
