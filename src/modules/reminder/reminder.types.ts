import { Length } from "class-validator";
import { Field, ID, InputType, ObjectType } from "type-graphql";
import { NotBlank } from "../../graphql/validation.js";
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
  @NotBlank()
  @Length(1, 200, { message: "must be between 1 and 200 characters" })
  title!: string;

  @Field()
  @NotBlank()
  @Length(1, 5000, { message: "must be between 1 and 5000 characters" })
  body!: string;

  @Field({ description: "When to send it: in the future, at most a year ahead." })
  sendAt!: Date;
}

export function toReminderView(r: Reminder): ReminderView {
  return { id: r.id, title: r.title, body: r.body, sendAt: r.sendAt, createdAt: r.createdAt };
}
