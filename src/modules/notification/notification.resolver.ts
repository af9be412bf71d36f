import { Arg, Ctx, FieldResolver, Int, Mutation, Query, Resolver, Root, Subscription } from "type-graphql";
import type { GraphQLContext } from "../../graphql/context.js";
import { requireService, requireUser } from "../../graphql/context.js";
import { UserView, toUserView } from "../user/user.types.js";
import type { UserService } from "../user/user.service.js";
import type { NotificationService } from "./notification.service.js";
import { NOTIFICATION_ADDED, UNREAD_COUNT_CHANGED } from "./notification.topics.js";
import {
  NotificationConnection,
  NotificationFilter,
  NotificationView,
  SendNotificationInput,
  SendNotificationResult,
} from "./notification.types.js";

const DEFAULT_PAGE_SIZE = 20;

/** Subscriptions listen on the caller's own channel; without a user they fail before listening. */
const ownChannel = ({ context }: { context: GraphQLContext }) => requireUser(context);

@Resolver(() => NotificationView)
export class NotificationResolver {
  constructor(
    private readonly service: NotificationService,
    private readonly users: UserService,
  ) {}

  @Query(() => NotificationConnection, { description: "The caller's notifications, newest first." })
  async notifications(
    @Ctx() ctx: GraphQLContext,
    @Arg("first", () => Int, { nullable: true, defaultValue: 20, description: "At most 100." }) first: number | null,
    @Arg("after", () => String, { nullable: true }) after: string | null,
    @Arg("filter", () => NotificationFilter, { nullable: true }) filter: NotificationFilter | null,
  ): Promise<NotificationConnection> {
    return this.service.list(ctx.em, requireUser(ctx), { first: first ?? DEFAULT_PAGE_SIZE, after, filter });
  }

  @Query(() => Int, { description: "Unread, not archived notifications of the caller." })
  async unreadCount(@Ctx() ctx: GraphQLContext): Promise<number> {
    return this.service.unreadCount(ctx.em, requireUser(ctx));
  }

  @Mutation(() => SendNotificationResult, {
    description: "For other backends (x-api-key header): a SYSTEM notification to each recipient.",
  })
  async sendNotification(
    @Arg("input") input: SendNotificationInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<SendNotificationResult> {
    requireService(ctx);
    return this.service.send(ctx.em, input);
  }

  @Subscription(() => NotificationView, {
    topics: NOTIFICATION_ADDED,
    topicId: ownChannel,
    description: "The caller's new notifications, as soon as they are stored.",
  })
  notificationAdded(@Root() notification: NotificationView): NotificationView {
    return notification;
  }

  @Subscription(() => Int, {
    topics: UNREAD_COUNT_CHANGED,
    topicId: ownChannel,
    description: "The caller's unread count after any change, from any device.",
  })
  unreadCountChanged(@Root() count: number): number {
    return count;
  }

  @FieldResolver(() => UserView, { nullable: true, description: "Who caused it, when someone did." })
  async actor(@Root() notification: NotificationView, @Ctx() ctx: GraphQLContext): Promise<UserView | null> {
    if (!notification.actorId) return null;
    const user = await this.users.findById(ctx.em, notification.actorId);
    return user ? toUserView(user) : null;
  }
}
