import { Field, ID, InputType, ObjectType } from "type-graphql";
import { Text } from "../../graphql/validation.js";
import type { Reminder } from "./reminder.entity.js";

@ObjectType("Reminder")
export class ReminderView {
  @Field(() => ID)
  id!: string;

  @Field()
  title!: string;

  @Field()
  body!: string;

  @Field()
  sendAt!: Date;

  @Field()
  createdAt!: Date;
}

@InputType()
export class ScheduleReminderInput {
  @Field()
  @Text(200)
  title!: string;

  @Field()
  @Text(5000)
  body!: string;

  @Field({ description: "When to send it: in the future, at most a year ahead." })
  sendAt!: Date;
}

export function toReminderView(r: Reminder): ReminderView {
  return { id: r.id, title: r.title, body: r.body, sendAt: r.sendAt, createdAt: r.createdAt };
}
