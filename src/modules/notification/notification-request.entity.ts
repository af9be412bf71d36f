import { createHash } from "node:crypto";
import { ObjectId } from "@mikro-orm/mongodb";
import { Entity, Index, PrimaryKey, Property, SerializedPrimaryKey, Unique } from "@mikro-orm/decorators/legacy";

/**
 * A `sendNotification` call from another backend, stored before anything is sent; the
 * `notification.deliver` job turns it into notifications. The unique idempotency key makes a
 * repeated call find this request instead of creating a second one.
 */
@Entity({ collection: "notification_requests" })
@Index({ properties: ["completedAt", "createdAt"] })
export class NotificationRequest {
  /** Derived from the idempotency key, so a repeated call is found by primary key. */
  @PrimaryKey()
  _id: ObjectId;

  @SerializedPrimaryKey()
  id!: string;

  @Property()
  @Unique()
  idempotencyKey: string;

  @Property()
  recipientIds: ObjectId[];

  @Property()
  title: string;

  @Property()
  body: string;

  @Property()
  createdAt: Date = new Date();

  @Property({ nullable: true })
  completedAt?: Date | null;

  /** The name of the service key that sent it (SERVICE_API_KEYS); absent on requests stored before. */
  @Property({ nullable: true })
  sentBy?: string | null;

  constructor(init: {
    idempotencyKey: string;
    recipientIds: ObjectId[];
    title: string;
    body: string;
    sentBy?: string;
  }) {
    this._id = requestIdFor(init.idempotencyKey);
    this.idempotencyKey = init.idempotencyKey;
    this.recipientIds = init.recipientIds;
    this.title = init.title;
    this.body = init.body;
    this.sentBy = init.sentBy ?? null;
  }
}

/**
 * The request id for an idempotency key: the first 12 bytes of its SHA-256. A lookup by primary key
 * is the one query every MongoDB-compatible server answers from an index (FerretDB v1 scans a
 * collection for most other filters), and it makes the key unique by construction.
 */
export function requestIdFor(idempotencyKey: string): ObjectId {
  return new ObjectId(createHash("sha256").update(idempotencyKey).digest().subarray(0, 12));
}
