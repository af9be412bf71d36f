import { Entity, PrimaryKey, Property } from "@mikro-orm/decorators/legacy";

/**
 * The right to make one send attempt: `<notificationId>:<attempt>`. Agenda's lock is not atomic on
 * FerretDB v1, so two runs of one email job can start together; the unique key lets only one of
 * them send. `finishedAt` tells a run still sending (skip it) from one that stopped or failed.
 */
@Entity({ collection: "email_attempts" })
export class EmailAttempt {
  @PrimaryKey({ type: "string" })
  _id: string;

  @Property()
  claimedAt: Date = new Date();

  @Property({ nullable: true })
  finishedAt?: Date | null;

  constructor(notificationId: string, attempt: number) {
    this._id = `${notificationId}:${attempt}`;
  }
}
