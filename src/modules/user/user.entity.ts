import { ObjectId } from "@mikro-orm/mongodb";
import { Entity, Index, PrimaryKey, Property, SerializedPrimaryKey, Unique } from "@mikro-orm/decorators/legacy";

@Entity({ collection: "users" })
@Index({ properties: ["welcomedAt", "createdAt"] })
@Index({ properties: ["deletedAt"] })
export class User {
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

  @SerializedPrimaryKey()
  id!: string;

  /** Stored lower-cased, so the unique index makes addresses unique regardless of case. */
  @Property()
  @Unique()
  email: string;

  @Property()
  displayName: string;

  /** `scrypt$<N>$<r>$<p>$<salt>$<hash>` (base64url); see password.ts. */
  @Property({ hidden: true })
  passwordHash: string;

  @Property()
  createdAt: Date = new Date();

  /** When the password or the email address last changed (their security notices say when). */
  @Property({ nullable: true })
  passwordChangedAt?: Date | null;

  @Property({ nullable: true })
  emailChangedAt?: Date | null;

  /** Set by the welcome job; the recovery sweep reschedules sign-ups that still lack it. */
  @Property({ nullable: true })
  welcomedAt?: Date | null;

  /**
   * Set by deleteAccount: from then on the account is gone for everyone (no sign-in, no lookup),
   * and the `account.deleted` job removes its data, then the user; the recovery sweep reschedules
   * accounts still here with it set.
   */
  @Property({ nullable: true })
  deletedAt?: Date | null;

  constructor(email: string, displayName: string, passwordHash: string) {
    this.email = email;
    this.displayName = displayName;
    this.passwordHash = passwordHash;
  }
}
