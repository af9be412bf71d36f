import { Entity, Index, PrimaryKey, Property } from "@mikro-orm/decorators/legacy";

/**
 * The right to make one send attempt: `<notificationId>:<attempt>`. Two runs of one email can start
 * together (a lock that expired under a slow run, a batch the sweep scheduled again, a retry that
 * overlaps); the unique key lets only one of them send. A claim above the attempts recorded on the
 * delivery is in flight while it is younger than a job lock, and belongs to a run that stopped
 * mid-send after that.
 */
@Entity({ collection: "email_attempts" })
@Index({ properties: ["claimedAt"] })
export class EmailAttempt {
  @PrimaryKey({ type: "string" })
  _id: string;

  @Property()
  claimedAt: Date = new Date();

  constructor(notificationId: string, attempt: number) {
    this._id = EmailAttempt.key(notificationId, attempt);
  }

  static key(notificationId: string, attempt: number): string {
    return `${notificationId}:${attempt}`;
  }
}
