import { ObjectId } from "@mikro-orm/mongodb";
import { badInput } from "../../graphql/errors.js";
import type { EntityManager } from "../../infra/orm.js";
import { NotificationKind, SECURITY_KINDS } from "../notification/notification.enums.js";
import type { DeliveryPlan } from "../notification/notification.service.js";
import { UserPreferences } from "./preferences.entity.js";
import { DigestFrequency } from "./preferences.enums.js";
import type { Preferences, PreferencesInput } from "./preferences.types.js";

export type { DeliveryPlan };

/** Emailed unless the user says otherwise: everything but new posts, which can come by the hundred. */
const EMAIL_BY_DEFAULT: Record<NotificationKind, boolean> = {
  [NotificationKind.WELCOME]: true,
  [NotificationKind.NEW_POST]: false,
  [NotificationKind.NEW_COMMENT]: true,
  [NotificationKind.NEW_FOLLOWER]: true,
  [NotificationKind.REMINDER]: true,
  [NotificationKind.DIGEST]: true,
  [NotificationKind.SYSTEM]: true,
  [NotificationKind.PASSWORD_CHANGED]: true,
  [NotificationKind.EMAIL_CHANGED]: true,
};

const KINDS = Object.values(NotificationKind);

/** What a service tells its users, and security notices, cannot be muted in the inbox. */
const ALWAYS_IN_APP: ReadonlySet<NotificationKind> = new Set([NotificationKind.SYSTEM, ...SECURITY_KINDS]);

/** How often a digest goes out; OFF has none. */
export const DIGEST_PERIOD_MS: Record<DigestFrequency, number | null> = {
  [DigestFrequency.OFF]: null,
  [DigestFrequency.HOURLY]: 3600_000,
  [DigestFrequency.DAILY]: 24 * 3600_000,
};

export class PreferencesService {
  async get(em: EntityManager, userId: string): Promise<Preferences> {
    return present(await em.findOne(UserPreferences, { _id: new ObjectId(userId) }));
  }

  async update(em: EntityManager, userId: string, input: PreferencesInput): Promise<Preferences> {
    // Checked before anything changes: a refused input changes nothing.
    (input.kinds ?? []).forEach((change, i) => {
      if (change.inApp === false && ALWAYS_IN_APP.has(change.kind)) {
        throw badInput(`kinds.${i}.inApp`, `${change.kind} notifications cannot be turned off in-app`);
      }
      if (SECURITY_KINDS.has(change.kind) && (change.email === false || change.digest === true)) {
        const field = change.email === false ? "email" : "digest";
        throw badInput(`kinds.${i}.${field}`, `${change.kind} is a security notice: it is always emailed at once`);
      }
    });
    const _id = new ObjectId(userId);
    const stored = (await em.findOne(UserPreferences, { _id })) ?? new UserPreferences(_id);
    for (const change of input.kinds ?? []) {
      if (change.inApp !== null && change.inApp !== undefined)
        stored.inApp = { ...stored.inApp, [change.kind]: change.inApp };
      if (change.email !== null && change.email !== undefined)
        stored.email = { ...stored.email, [change.kind]: change.email };
      if (change.digest !== null && change.digest !== undefined) {
        const others = stored.digestKinds.filter((k) => k !== change.kind);
        stored.digestKinds = change.digest ? [...others, change.kind] : others;
      }
    }
    if (input.digest && input.digest !== stored.digest) {
      stored.digest = input.digest;
      const period = DIGEST_PERIOD_MS[input.digest];
      stored.nextDigestAt = period ? new Date(Date.now() + period) : null;
    }
    stored.updatedAt = new Date();
    await em.persist(stored).flush();
    return present(stored);
  }

  /** Turns email off for one kind: what an unsubscribe link does. */
  async unsubscribe(em: EntityManager, userId: string, kind: NotificationKind): Promise<void> {
    await this.update(em, userId, { kinds: [{ kind, email: false }] });
  }

  /** Each user's decision for one kind: in the inbox or not, and emailed now, in the digest, or not. */
  async plan(em: EntityManager, userIds: ObjectId[], kind: NotificationKind): Promise<Map<string, DeliveryPlan>> {
    const stored = await em.find(UserPreferences, { _id: { $in: userIds } });
    const byUser = new Map(stored.map((p) => [p._id.toHexString(), p]));
    return new Map(userIds.map((id) => [id.toHexString(), planFor(byUser.get(id.toHexString()) ?? null, kind)]));
  }
}

export type EmailPlan = DeliveryPlan["email"];

export function planFor(prefs: UserPreferences | null, kind: NotificationKind): DeliveryPlan {
  return { inApp: inAppFor(prefs, kind), email: emailPlanFor(prefs, kind) };
}

function inAppFor(prefs: UserPreferences | null, kind: NotificationKind): boolean {
  return ALWAYS_IN_APP.has(kind) || (prefs?.inApp?.[kind] ?? true);
}

function emailPlanFor(prefs: UserPreferences | null, kind: NotificationKind): EmailPlan {
  if (SECURITY_KINDS.has(kind)) return "now";
  const email = prefs?.email[kind] ?? EMAIL_BY_DEFAULT[kind];
  if (!email) return "none";
  const inDigest = prefs !== null && prefs.digest !== DigestFrequency.OFF && prefs.digestKinds.includes(kind);
  // Unsubscribed from the digest email itself: what it would gather is not emailed at all.
  if (inDigest) return prefs.email[NotificationKind.DIGEST] === false ? "none" : "digest";
  return "now";
}

export function present(prefs: UserPreferences | null): Preferences {
  return {
    digest: prefs?.digest ?? DigestFrequency.OFF,
    kinds: KINDS.map((kind) => ({
      kind,
      inApp: inAppFor(prefs, kind),
      email: SECURITY_KINDS.has(kind) || (prefs?.email[kind] ?? EMAIL_BY_DEFAULT[kind]),
      digest: !SECURITY_KINDS.has(kind) && (prefs?.digestKinds.includes(kind) ?? false),
    })),
  };
}
