import { ObjectId } from "@mikro-orm/mongodb";
import { Entity, Index, PrimaryKey, Property, SerializedPrimaryKey } from "@mikro-orm/decorators/legacy";

/**
 * One login of a user (a session): it starts at register or login, lives as long as it is
 * refreshed, and ends by logout, by theft detection or from another device. Its id is the `sid`
 * of every access token it issues; the refresh token is kept only as a hash.
 */
@Entity({ collection: "logins" })
// The caller's logins, and logoutEverywhere.
@Index({ properties: ["userId", "endedAt"] })
// The clean-up of logins long over.
@Index({ properties: ["refreshExpiresAt"] })
@Index({ properties: ["endedAt"] })
export class Login {
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

  @SerializedPrimaryKey()
  id!: string;

  @Property()
  userId: ObjectId;

  /** Browser and system from the user agent at sign-in, e.g. "Firefox 128 on Linux". */
  @Property()
  device: string;

  @Property()
  createdAt: Date = new Date();

  /** When a token was last issued for it: at sign-in and at each refresh. */
  @Property()
  lastUsedAt: Date = new Date();

  /** SHA-256 of the secret part of the one refresh token that is valid now. */
  @Property()
  refreshHash: string;

  @Property()
  refreshExpiresAt: Date;

  @Property({ nullable: true })
  endedAt?: Date | null = null;

  constructor(userId: ObjectId, device: string, refreshHash: string, refreshExpiresAt: Date) {
    this.userId = userId;
    this.device = device;
    this.refreshHash = refreshHash;
    this.refreshExpiresAt = refreshExpiresAt;
  }
}

/**
 * A refresh token that was used: its hash is the key, so of two refreshes with one token only one
 * can insert it (a unique key holds on FerretDB, where a conditional update does not), and a
 * token presented again is known for a spent one rather than for garbage.
 */
@Entity({ collection: "spent_refresh_tokens" })
@Index({ properties: ["spentAt"] })
export class SpentRefreshToken {
  @PrimaryKey({ type: "string" })
  _id: string;

  @Property()
  loginId: ObjectId;

  @Property()
  spentAt: Date = new Date();

  constructor(hash: string, loginId: ObjectId) {
    this._id = hash;
    this.loginId = loginId;
  }
}
