import { ObjectId } from "@mikro-orm/mongodb";
import { Entity, Index, PrimaryKey, Property, Unique } from "@mikro-orm/decorators/legacy";

/** A notification waiting for its recipient's next digest email, keyed by the notification's id. */
@Entity({ collection: "digest_items" })
@Index({ properties: ["userId", "createdAt"] })
export class DigestItem {
  /** The notification's id: keeping it twice keeps it once. */
  @PrimaryKey()
  _id: ObjectId;

  @Property()
  userId: ObjectId;

  @Property()
  notificationId: ObjectId;

  @Property()
  createdAt: Date = new Date();

  constructor(userId: ObjectId, notificationId: ObjectId) {
    this._id = notificationId;
    this.userId = userId;
    this.notificationId = notificationId;
  }
}

/**
 * One digest email: which notifications it holds, claimed before sending. The unique (user, period)
 * pair makes a second run for the same period find this one instead of building another, so a
 * notification is never in two digests and a resend carries the same Message-ID.
 */
@Entity({ collection: "digests" })
@Unique({ properties: ["userId", "period"] })
// The recovery sweep's question: does a digest hold these notifications already?
@Index({ properties: ["notificationIds"] })
@Index({ properties: ["createdAt"] })
export class Digest {
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

  @Property()
  userId: ObjectId;

  /** The period boundary it serves, as an ISO date. */
  @Property()
  period: string;

  @Property()
  notificationIds: ObjectId[];

  @Property()
  createdAt: Date = new Date();

  @Property({ nullable: true })
  sentAt?: Date | null;

  /** Sends tried and refused so far. */
  @Property()
  attempts = 0;

  @Property({ nullable: true })
  lastError?: string | null;

  /** After a refused send: no new try before then. */
  @Property({ nullable: true })
  nextAttemptAt?: Date | null;

  /** Given up after EMAIL_MAX_ATTEMPTS refused sends; its notifications stay in the inbox. */
  @Property({ nullable: true })
  failedAt?: Date | null;

  constructor(userId: ObjectId, period: string, notificationIds: ObjectId[]) {
    this.userId = userId;
    this.period = period;
    this.notificationIds = notificationIds;
  }
}
