import { Kind, type GraphQLResolveInfo } from "graphql";
import { Arg, Ctx, FieldResolver, ID, Info, Int, Mutation, Query, Resolver, Root, Subscription } from "type-graphql";
import { badInput } from "../../graphql/errors.js";
import type { Limits } from "../../infra/limits.js";
import type { GraphQLContext } from "../../graphql/context.js";
import { requireService, requireUser } from "../../graphql/context.js";
import { UserView, toUserView } from "../user/user.types.js";
import type { UserService } from "../user/user.service.js";
import type { InboxService } from "./inbox.service.js";
import type { NotificationRequestService } from "./notification-request.service.js";
import {
  INBOX,
  InboxEventType,
  decodeInboxCursor,
  encodeInboxCursor,
  INBOX_FEED,
  type InboxEventPayload,
  type InboxFeedRequest,
  type InboxMessage,
} from "./inbox-events.js";
import {
  NotificationConnection,
  NotificationFilter,
  NotificationView,
  SendNotificationInput,
  SendNotificationResult,
  InboxEventView,
} from "./notification.types.js";

const DEFAULT_PAGE_SIZE = 20;

/** Subscriptions listen on the caller's own channel; without a user they fail before listening. */
const ownChannel = ({ context }: { context: GraphQLContext }) => requireUser(context);

/** The version of the last count each unreadCountChanged subscription sent, by context. */
const lastSent = new WeakMap<object, number>();

/**
 * A count older than one already sent (a message replayed through Redis) is not passed on: a
 * client never steps back to a stale count.
 */
function newerThanLastSent({ payload, context }: { payload: InboxMessage; context: GraphQLContext }): boolean {
  if (payload.version < (lastSent.get(context) ?? 0)) return false;
  lastSent.set(context, payload.version);
  return true;
}

/** Whether the operation asks for `field` of the object it returns (fragments count as asking). */
function selects(info: GraphQLResolveInfo, field: string): boolean {
  return info.fieldNodes.some((node) =>
    (node.selectionSet?.selections ?? []).some((s) => s.kind !== Kind.FIELD || s.name.value === field),
  );
}

export interface NotificationResolverDeps {
  inbox: InboxService;
  limits: Limits;
  requests: NotificationRequestService;
  users: UserService;
  /** Told when a new notification goes out to a socket: its delay since it was stored, in seconds. */
  pushed?: (subscription: string, seconds: number) => void;
}

@Resolver(() => NotificationView)
export class NotificationResolver {
  constructor(private readonly deps: NotificationResolverDeps) {}

  @Query(() => NotificationConnection, { description: "The caller's notifications, newest first." })
  async notifications(
    @Ctx() ctx: GraphQLContext,
    @Arg("first", () => Int, { nullable: true, defaultValue: DEFAULT_PAGE_SIZE, description: "At most 100." })
    first: number | null,
    @Arg("after", () => String, { nullable: true }) after: string | null,
    @Arg("filter", () => NotificationFilter, { nullable: true }) filter: NotificationFilter | null,
    @Info() info: GraphQLResolveInfo,
  ): Promise<NotificationConnection> {
    return this.deps.inbox.list(ctx.em, requireUser(ctx), {
      first: first ?? DEFAULT_PAGE_SIZE,
      after,
      filter,
      withStreamCursor: selects(info, "streamCursor"),
    });
  }

  @Query(() => NotificationView, { nullable: true, description: "One of the caller's notifications." })
  async notification(@Arg("id", () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<NotificationView> {
    return this.deps.inbox.get(ctx.em, requireUser(ctx), id);
  }

  @Query(() => Int, { description: "Unread, not archived notifications of the caller." })
  async unreadCount(@Ctx() ctx: GraphQLContext): Promise<number> {
    return this.deps.inbox.unreadCount(ctx.em, requireUser(ctx));
  }

  @Mutation(() => NotificationView)
  markNotificationRead(@Arg("id", () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<NotificationView> {
    return this.deps.inbox.markRead(ctx.em, requireUser(ctx), id);
  }

  @Mutation(() => NotificationView)
  markNotificationUnread(@Arg("id", () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<NotificationView> {
    return this.deps.inbox.markUnread(ctx.em, requireUser(ctx), id);
  }

  @Mutation(() => Int, { description: "Marks every unread notification read; returns how many changed." })
  markAllNotificationsRead(@Ctx() ctx: GraphQLContext): Promise<number> {
    return this.deps.inbox.markAllRead(ctx.em, requireUser(ctx));
  }

  @Mutation(() => NotificationView)
  archiveNotification(@Arg("id", () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<NotificationView> {
    return this.deps.inbox.archive(ctx.em, requireUser(ctx), id);
  }

  @Mutation(() => Boolean)
  deleteNotification(@Arg("id", () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<boolean> {
    return this.deps.inbox.delete(ctx.em, requireUser(ctx), id);
  }

  @Mutation(() => SendNotificationResult, {
    description: "For other backends (x-api-key header): a SYSTEM notification to each recipient.",
  })
  async sendNotification(
    @Arg("input") input: SendNotificationInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<SendNotificationResult> {
    const keyName = requireService(ctx);
    await this.deps.limits.recipientsFor(keyName, input.recipientIds.length);
    return this.deps.requests.send(ctx.em, input, keyName);
  }

  @Subscription(() => NotificationView, {
    topics: INBOX,
    topicId: ownChannel,
    filter: ({ payload }: { payload: InboxMessage }) => payload.change.type === InboxEventType.ADDED,
    description: "The caller's new notifications, as soon as they are stored.",
  })
  notificationAdded(@Root() message: InboxMessage): NotificationView | null {
    if (!("notification" in message.change)) return null;
    this.timePush("notificationAdded", message.change.notification);
    return message.change.notification;
  }

  @Subscription(() => Int, {
    topics: INBOX,
    topicId: ownChannel,
    filter: newerThanLastSent,
    description: "The caller's unread count after any change, from any device.",
  })
  unreadCountChanged(@Root() message: InboxMessage): number {
    return message.unreadCount;
  }

  @Subscription(() => InboxEventView, {
    topics: INBOX_FEED,
    topicId: ({ args, context }: { args: { after?: string | null }; context: GraphQLContext }): InboxFeedRequest => {
      const userId = requireUser(context);
      const after = args.after == null ? null : decodeInboxCursor(args.after);
      if (args.after != null && !after) throw badInput("after", "is not a cursor of inboxEvents");
      return { userId, after };
    },
    description:
      "Every change to the caller's inbox, in the order it was stored. With `after` (a cursor from an event or " +
      "from notifications.streamCursor): first every event after it, then live ones, none missing, none twice; " +
      "RESET first when the stream cannot resume from there.",
  })
  inboxEvents(
    @Root() event: InboxEventPayload,
    @Arg("after", () => String, { nullable: true }) _after: string | null,
  ): InboxEventView {
    if (event.type === InboxEventType.ADDED && event.notification) this.timePush("inboxEvents", event.notification);
    return {
      cursor: encodeInboxCursor(event.position),
      type: event.type,
      notification: event.notification,
      notificationId: event.notificationId,
      unreadCount: event.unreadCount,
      at: event.at,
    };
  }

  private timePush(subscription: string, notification: NotificationView): void {
    const stored = new Date(notification.createdAt).getTime();
    if (this.deps.pushed && Number.isFinite(stored)) this.deps.pushed(subscription, (Date.now() - stored) / 1000);
  }

  @FieldResolver(() => UserView, {
    nullable: true,
    description: "Who caused it, when someone did; null once their account is deleted.",
  })
  async actor(@Root() notification: NotificationView, @Ctx() ctx: GraphQLContext): Promise<UserView | null> {
    const actor = notification.actorId ? await this.deps.users.lookup(ctx.em, notification.actorId) : null;
    return actor ? toUserView(actor) : null;
  }
}
