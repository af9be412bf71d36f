import { ObjectId } from "@mikro-orm/mongodb";
import { Entity, Enum, Index, PrimaryKey, Property, SerializedPrimaryKey } from "@mikro-orm/decorators/legacy";

export enum AccountChangeKind {
  PASSWORD = "PASSWORD",
  EMAIL = "EMAIL",
}

/**
 * A change to an account's password or email address, recorded by the flush that made it (see
 * recordOnChange): the values before the change exist only then. Its job tells the owner; the
 * recovery sweep finds the changes still untold.
 */
@Entity({ collection: "account_changes" })
@Index({ properties: ["notifiedAt", "createdAt"] })
export class AccountChange {
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

  @SerializedPrimaryKey()
  id!: string;

  @Property()
  userId: ObjectId;

  @Enum(() => AccountChangeKind)
  kind: AccountChangeKind;

  /** The address before an email change: the notice goes there. */
  @Property({ nullable: true })
  oldEmail?: string | null;

  @Property({ nullable: true })
  newEmail?: string | null;

  /**
   * The user's passwordChangedAt or emailChangedAt as this change set it. The flush writes this
   * record before it updates the user: if the update then fails (an address taken meanwhile), the
   * user keeps an earlier time, and the job knows the change never happened.
   */
  @Property()
  changedAt: Date;

  @Property()
  createdAt: Date = new Date();

  /** Set once the owner was told; the recovery sweep reschedules changes without it. */
  @Property({ nullable: true })
  notifiedAt?: Date | null = null;

  constructor(init: {
    userId: ObjectId;
    kind: AccountChangeKind;
    changedAt: Date;
    oldEmail?: string;
    newEmail?: string;
  }) {
    this.userId = init.userId;
    this.changedAt = init.changedAt;
    this.kind = init.kind;
    this.oldEmail = init.oldEmail ?? null;
    this.newEmail = init.newEmail ?? null;
  }
}
