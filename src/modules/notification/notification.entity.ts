import { ObjectId } from "@mikro-orm/mongodb";
import {
  Embeddable,
  Embedded,
  Entity,
  Enum,
  Index,
  PrimaryKey,
  Property,
  SerializedPrimaryKey,
  Unique,
} from "@mikro-orm/decorators/legacy";
import { DeliveryStatus, NotificationChannel, NotificationKind } from "./notification.enums.js";

@Embeddable()
export class Delivery {
  @Enum(() => NotificationChannel)
  channel: NotificationChannel;

  @Enum(() => DeliveryStatus)
  status: DeliveryStatus;

  @Property()
  attempts = 0;

  @Property({ nullable: true })
  lastError?: string | null;

  @Property({ nullable: true })
  deliveredAt?: Date | null;

  /** While PENDING after a failed attempt: when the next one is due. */
  @Property({ nullable: true })
  nextAttemptAt?: Date | null;

  constructor(channel: NotificationChannel, status: DeliveryStatus) {
    this.channel = channel;
    this.status = status;
  }
}

/**
 * One notification for one recipient. Written only by jobs, which may run more than once:
 * `dedupeKey` (unique) makes the second write a no-op.
 */
@Entity({ collection: "notifications" })
// Ascending keys serve the newest-first listing too: MongoDB walks an index in either direction.
@Index({ properties: ["recipientId", "createdAt", "_id"] })
@Index({ properties: ["recipientId", "readAt", "archivedAt"] })
// What deleting or retitling a post finds its notifications by.
@Index({ properties: ["postId"] })
// The recovery sweep's search for emails that were planned but never tried.
@Index({ options: [{ "deliveries.status": 1, createdAt: 1 }, { name: "deliveries_status_createdAt" }] })
export class Notification {
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

  @SerializedPrimaryKey()
  id!: string;

  @Property()
  recipientId: ObjectId;

  @Property()
  @Unique()
  dedupeKey: string;

  @Enum(() => NotificationKind)
  kind: NotificationKind;

  @Property()
  title: string;

  @Property()
  body: string;

  @Property({ nullable: true })
  actorId?: ObjectId | null;

  @Property({ nullable: true })
  postId?: ObjectId | null;

  @Property({ nullable: true })
  commentId?: ObjectId | null;

  /** Where its email goes instead of the recipient's address: an email change tells the old one. */
  @Property({ nullable: true })
  emailTo?: string | null;

  @Property()
  createdAt: Date = new Date();

  @Property({ nullable: true })
  readAt?: Date | null;

  @Property({ nullable: true })
  archivedAt?: Date | null;

  /**
   * False when the recipient turned this kind off in-app: the notification is stored only for its
   * email, is never listed or pushed, and is stored read, so that no unread count includes it.
   */
  @Property()
  inApp = true;

  @Embedded(() => Delivery, { array: true })
  deliveries: Delivery[] = [];

  constructor(init: {
    recipientId: ObjectId;
    dedupeKey: string;
    kind: NotificationKind;
    title: string;
    body: string;
    actorId?: ObjectId | null;
  }) {
    this.recipientId = init.recipientId;
    this.dedupeKey = init.dedupeKey;
    this.kind = init.kind;
    this.title = init.title;
    this.body = init.body;
    this.actorId = init.actorId ?? null;
  }
}
