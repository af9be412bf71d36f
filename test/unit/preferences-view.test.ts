import "reflect-metadata";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ObjectId } from "@mikro-orm/mongodb";
import { NotificationKind } from "../../src/modules/notification/notification.enums.js";
import { UserPreferences } from "../../src/modules/preferences/preferences.entity.js";
import { DigestFrequency } from "../../src/modules/preferences/preferences.enums.js";
import { planFor, present } from "../../src/modules/preferences/preferences.service.js";
import type { KindPreference, Preferences } from "../../src/modules/preferences/preferences.types.js";
import { offlineEntityManager } from "../helpers/offline-orm.js";

const em = offlineEntityManager([UserPreferences]);
const KINDS = Object.values(NotificationKind);

function kind(view: Preferences, k: NotificationKind): KindPreference {
  const found = view.kinds.filter((p) => p.kind === k);
  assert.equal(found.length, 1, `${k} is listed once`);
  const [only] = found;
  assert.ok(only);
  return only;
}

function prefs(set: (p: UserPreferences) => void): UserPreferences {
  const p = new UserPreferences(new ObjectId());
  set(p);
  return p;
}

describe("the preferences a user sees", () => {
  it("before choosing anything: every kind once, in the inbox, emailed but for new posts, none in a digest", () => {
    const view = present(null);
    assert.equal(view.digest, DigestFrequency.OFF);
    assert.deepEqual(
      view.kinds.map((p) => p.kind),
      KINDS,
    );
    for (const k of KINDS) {
      const p = kind(view, k);
      assert.equal(p.inApp, true, k);
      assert.equal(p.email, k !== NotificationKind.NEW_POST, k);
      assert.equal(p.digest, false, k);
    }
  });

  it("a stored document with no choice in it shows the same as none stored", () => {
    assert.deepEqual(present(prefs(() => undefined)), present(null));
  });

  it("shows each choice made, and the defaults for the rest", () => {
    const view = present(
      prefs((p) => {
        p.digest = DigestFrequency.DAILY;
        p.inApp = { [NotificationKind.NEW_FOLLOWER]: false };
        p.email = { [NotificationKind.NEW_COMMENT]: false, [NotificationKind.NEW_POST]: true };
        p.digestKinds = [NotificationKind.NEW_POST, NotificationKind.REMINDER];
      }),
    );
    assert.equal(view.digest, DigestFrequency.DAILY);
    assert.deepEqual(kind(view, NotificationKind.NEW_FOLLOWER), {
      kind: NotificationKind.NEW_FOLLOWER,
      inApp: false,
      email: true,
      digest: false,
    });
    assert.equal(kind(view, NotificationKind.NEW_COMMENT).email, false);
    assert.equal(kind(view, NotificationKind.NEW_COMMENT).inApp, true);
    assert.deepEqual(kind(view, NotificationKind.NEW_POST), {
      kind: NotificationKind.NEW_POST,
      inApp: true,
      email: true,
      digest: true,
    });
    assert.equal(kind(view, NotificationKind.REMINDER).digest, true);
    assert.equal(kind(view, NotificationKind.WELCOME).digest, false);
    assert.equal(view.kinds.length, KINDS.length);
  });

  it("SYSTEM shows in-app even where a stored choice says otherwise", () => {
    const view = present(prefs((p) => (p.inApp = { [NotificationKind.SYSTEM]: false })));
    assert.equal(kind(view, NotificationKind.SYSTEM).inApp, true);
  });

  it("keeps showing the kinds chosen for the digest while the digest is off", () => {
    const view = present(
      prefs((p) => {
        p.digest = DigestFrequency.OFF;
        p.digestKinds = [NotificationKind.NEW_FOLLOWER];
      }),
    );
    assert.equal(view.digest, DigestFrequency.OFF);
    assert.equal(kind(view, NotificationKind.NEW_FOLLOWER).digest, true);
  });

  it("preferences stored before the in-app choice existed: every kind in the inbox, email choices kept", () => {
    const stored = em.map(UserPreferences, {
      _id: new ObjectId(),
      email: { [NotificationKind.WELCOME]: false },
      digest: DigestFrequency.HOURLY,
      digestKinds: [NotificationKind.NEW_COMMENT],
      updatedAt: new Date(),
    });
    const view = present(stored);
    assert.ok(view.kinds.every((p) => p.inApp));
    assert.equal(kind(view, NotificationKind.WELCOME).email, false);
    assert.equal(kind(view, NotificationKind.NEW_COMMENT).digest, true);
    assert.equal(view.digest, DigestFrequency.HOURLY);
  });

  it("what it shows is what delivery does: in-app as planned, and nothing emailed for a kind shown off", () => {
    const cases: (UserPreferences | null)[] = [
      null,
      prefs((p) => {
        p.digest = DigestFrequency.HOURLY;
        p.inApp = { [NotificationKind.NEW_POST]: false, [NotificationKind.SYSTEM]: false };
        p.email = { [NotificationKind.REMINDER]: false, [NotificationKind.NEW_POST]: true };
        p.digestKinds = [NotificationKind.NEW_POST, NotificationKind.NEW_FOLLOWER];
      }),
    ];
    for (const p of cases) {
      const view = present(p);
      for (const k of KINDS) {
        const shown = kind(view, k);
        const plan = planFor(p, k);
        assert.equal(shown.inApp, plan.inApp, k);
        if (!shown.email) assert.equal(plan.email, "none", k);
        if (plan.email === "digest") assert.ok(shown.digest && view.digest !== DigestFrequency.OFF, k);
      }
    }
  });
});
