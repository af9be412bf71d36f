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

/** How a reminder ended, decided once: firing and cancelling race for this one unique document. */
export enum ReminderDecision {
  FIRE = "FIRE",
  CANCEL = "CANCEL",
}

/**
 * The decision between firing a reminder and cancelling it, keyed by the reminder's id. Both sides
 * insert it and the unique key lets the first win, so a cancel that succeeded means no notification,
 * even against a job that had already started. (A conditional update could not decide it: FerretDB v1
 * reads, then replaces, so two of them can both match.)
 */
@Entity({ collection: "reminder_decisions" })
@Index({ properties: ["decidedAt"] })
export class ReminderOutcome {
  /** The reminder's id. */
  @PrimaryKey()
  _id: ObjectId;

  @Enum(() => ReminderDecision)
  decision: ReminderDecision;

  @Property()
  decidedAt: Date = new Date();

  constructor(reminderId: ObjectId, decision: ReminderDecision) {
    this._id = reminderId;
    this.decision = decision;
  }
}
