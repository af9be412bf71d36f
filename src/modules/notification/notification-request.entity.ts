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
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

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

  constructor(init: { idempotencyKey: string; recipientIds: ObjectId[]; title: string; body: string }) {
    this.idempotencyKey = init.idempotencyKey;
    this.recipientIds = init.recipientIds;
    this.title = init.title;
    this.body = init.body;
  }
}
