import { ArrayMaxSize, ArrayMinSize, ArrayUnique, IsMongoId } from "class-validator";
import { Field, ID, InputType, Int, ObjectType } from "type-graphql";
import {
  DeliveryStatus,
  InboxEventType,
  NotificationChannel,
  NotificationKind,
  NotificationStatus,
} from "./notification.enums.js";
import type { Delivery, Notification } from "./notification.entity.js";
import { Text } from "../../graphql/validation.js";

@ObjectType("Delivery")
export class DeliveryView {
  @Field(() => NotificationChannel)
  channel!: NotificationChannel;

  @Field(() => DeliveryStatus)
  status!: DeliveryStatus;

  @Field(() => Int)
  attempts!: number;

  @Field(() => String, { nullable: true })
  lastError!: string | null;

  @Field(() => Date, { nullable: true })
  deliveredAt!: Date | null;

  @Field(() => Date, { nullable: true, description: "While PENDING after a failed attempt: when the next one is due." })
  nextAttemptAt!: Date | null;
}

/**
 * A notification as clients see it, and as it travels through Redis to subscriptions: plain data,
 * so a query result and a pushed event are the same shape. Related records are resolved by id.
 */
@ObjectType("Notification")
export class NotificationView {
  @Field(() => ID)
  id!: string;

  recipientId!: string;

  @Field(() => NotificationKind)
  kind!: NotificationKind;

  @Field()
  title!: string;

  @Field()
  body!: string;

  actorId!: string | null;

  postId!: string | null;

  commentId!: string | null;

  @Field()
  createdAt!: Date;

  @Field(() => Date, { nullable: true })
  readAt!: Date | null;

  @Field(() => Date, { nullable: true })
  archivedAt!: Date | null;

  @Field(() => [DeliveryView])
  deliveries!: DeliveryView[];

  /** Shown in the inbox and pushed (see Notification.inApp). */
  inApp!: boolean;
}

/** A stored delivery as plain data, absent fields as null. */
export function toDeliveryView(d: Delivery): DeliveryView {
  return {
    channel: d.channel,
    status: d.status,
    attempts: d.attempts,
    lastError: d.lastError ?? null,
    deliveredAt: d.deliveredAt ?? null,
    nextAttemptAt: d.nextAttemptAt ?? null,
  };
}

export function toNotificationView(n: Notification): NotificationView {
  return {
    id: n.id,
    recipientId: n.recipientId.toHexString(),
    kind: n.kind,
    title: n.title,
    body: n.body,
    actorId: n.actorId?.toHexString() ?? null,
    postId: n.postId?.toHexString() ?? null,
    commentId: n.commentId?.toHexString() ?? null,
    createdAt: n.createdAt,
    readAt: n.readAt ?? null,
    archivedAt: n.archivedAt ?? null,
    deliveries: n.deliveries.map(toDeliveryView),
    // Stored before the flag existed: in the inbox, as everything was.
    inApp: n.inApp !== false,
  };
}

@ObjectType()
export class PageInfo {
  @Field()
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;
}

@ObjectType()
export class NotificationEdge {
  @Field()
  cursor!: string;

  @Field(() => NotificationView)
  node!: NotificationView;
}

@ObjectType()
export class NotificationConnection {
  @Field(() => [NotificationEdge])
  edges!: NotificationEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;

  @Field({
    description:
      "The caller's position in inboxEvents, taken before the page was read: subscribe with it to miss nothing after.",
  })
  streamCursor!: string;
}

@ObjectType("InboxEvent", { description: "A change to the caller's inbox (see inboxEvents)." })
export class InboxEventView {
  @Field({ description: "This event's position: resume with inboxEvents(after: cursor)." })
  cursor!: string;

  @Field(() => InboxEventType)
  type!: InboxEventType;

  @Field(() => NotificationView, {
    nullable: true,
    description: "ADDED, READ, UNREAD, ARCHIVED: the notification as it is after the change.",
  })
  notification!: NotificationView | null;

  @Field(() => ID, { nullable: true, description: "Every event about one notification, DELETED included." })
  notificationId!: string | null;

  @Field(() => Int, { description: "The caller's unread count right after this event." })
  unreadCount!: number;

  @Field()
  at!: Date;
}

@InputType()
export class NotificationFilter {
  @Field(() => NotificationStatus, { nullable: true, defaultValue: NotificationStatus.ALL })
  status?: NotificationStatus | null;

  @Field(() => Boolean, { nullable: true, defaultValue: false })
  archived?: boolean | null;

  @Field(() => [NotificationKind], { nullable: true })
  kinds?: NotificationKind[] | null;
}

export const MAX_RECIPIENTS = 1000;

@InputType()
export class SendNotificationInput {
  @Field(() => [ID])
  @ArrayMinSize(1, { message: "must name at least one recipient" })
  @ArrayMaxSize(MAX_RECIPIENTS, { message: `must name at most ${MAX_RECIPIENTS} recipients` })
  @ArrayUnique(undefined, { message: "must not repeat a recipient" })
  @IsMongoId({ each: true, message: "must be user ids" })
  recipientIds!: string[];

  @Field()
  @Text(200)
  title!: string;

  @Field()
  @Text(5000)
  body!: string;

  @Field({ description: "The same key again returns the first result and sends nothing." })
  @Text(200)
  idempotencyKey!: string;
}

@ObjectType()
export class SendNotificationResult {
  @Field(() => ID, { description: "The id of the stored request." })
  id!: string;

  @Field()
  idempotencyKey!: string;

  @Field(() => Int)
  recipientCount!: number;

  @Field()
  createdAt!: Date;

  @Field({ description: "True when this key was seen before and nothing new was sent." })
  replayed!: boolean;
}
