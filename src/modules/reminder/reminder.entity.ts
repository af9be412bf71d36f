import { ObjectId } from "@mikro-orm/mongodb";
import { Entity, Enum, Index, PrimaryKey, Property, SerializedPrimaryKey } from "@mikro-orm/decorators/legacy";

export enum ReminderStatus {
  PENDING = "PENDING",
  SENT = "SENT",
  CANCELLED = "CANCELLED",
}

/** A REMINDER the user scheduled for themselves. Its Agenda job is stored in MongoDB too. */
@Entity({ collection: "reminders" })
@Index({ properties: ["userId", "status", "sendAt"] })
@Index({ properties: ["status", "sendAt"] })
export class Reminder {
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

  @SerializedPrimaryKey()
  id!: string;

  @Property()
  userId: ObjectId;

  @Property()
  title: string;

  @Property()
  body: string;

  @Property()
  sendAt: Date;

  @Enum(() => ReminderStatus)
  status: ReminderStatus = ReminderStatus.PENDING;

  @Property()
  createdAt: Date = new Date();

  constructor(init: { userId: ObjectId; title: string; body: string; sendAt: Date }) {
    this.userId = init.userId;
    this.title = init.title;
    this.body = init.body;
    this.sendAt = init.sendAt;
  }
}
