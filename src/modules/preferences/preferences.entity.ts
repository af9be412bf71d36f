import { ObjectId } from "@mikro-orm/mongodb";
import { Entity, Enum, Index, PrimaryKey, Property } from "@mikro-orm/decorators/legacy";
import { DigestFrequency } from "./preferences.enums.js";
import type { NotificationKind } from "../notification/notification.enums.js";

/**
 * A user's choices, keyed by the user's id (one document, read by primary key). Only what differs
 * from the defaults is stored, so a new default reaches everyone who never chose otherwise.
 */
@Entity({ collection: "preferences" })
@Index({ properties: ["nextDigestAt"] })
export class UserPreferences {
  /** The user's id. */
  @PrimaryKey()
  _id: ObjectId;

  /** In-app on or off per kind, where the user chose (SYSTEM is always on). */
  @Property()
  inApp: Partial<Record<NotificationKind, boolean>> = {};

  /** Email on or off per kind, where the user chose. */
  @Property()
  email: Partial<Record<NotificationKind, boolean>> = {};

  @Enum(() => DigestFrequency)
  digest: DigestFrequency = DigestFrequency.OFF;

  /** Kinds gathered into the digest instead of emailed one by one, while the digest is on. */
  @Property()
  digestKinds: NotificationKind[] = [];

  /** When the next digest email is due; unset while the digest is off. */
  @Property({ nullable: true })
  nextDigestAt?: Date | null;

  @Property()
  updatedAt: Date = new Date();

  constructor(userId: ObjectId) {
    this._id = userId;
  }
}
