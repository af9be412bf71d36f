import { Arg, Ctx, ID, Mutation, Query, Resolver } from "type-graphql";
import type { GraphQLContext } from "../../graphql/context.js";
import { requireUser } from "../../graphql/context.js";
import type { ReminderService } from "./reminder.service.js";
import { ReminderView, ScheduleReminderInput, toReminderView } from "./reminder.types.js";

@Resolver(() => ReminderView)
export class ReminderResolver {
  constructor(private readonly service: ReminderService) {}

  @Query(() => [ReminderView], { description: "The caller's pending reminders, soonest first." })
  async reminders(@Ctx() ctx: GraphQLContext): Promise<ReminderView[]> {
    return (await this.service.pending(ctx.em, requireUser(ctx))).map(toReminderView);
  }

  @Mutation(() => ReminderView, { description: "A REMINDER notification to the caller at sendAt." })
  async scheduleReminder(
    @Arg("input") input: ScheduleReminderInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<ReminderView> {
    return toReminderView(await this.service.schedule(ctx.em, requireUser(ctx), input));
  }

  @Mutation(() => Boolean, { description: "False when it had already been sent or cancelled." })
  cancelReminder(@Arg("id", () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<boolean> {
    return this.service.cancel(ctx.em, requireUser(ctx), id);
  }
}
