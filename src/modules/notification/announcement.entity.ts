import { ObjectId } from "@mikro-orm/mongodb";
import { Entity, Index, PrimaryKey, Property } from "@mikro-orm/decorators/legacy";

/**
 * A writer's promise to announce: written before a batch of notifications is inserted, deleted
 * once they have been announced, their emails scheduled and their digest items kept. One left
 * behind means the writer stopped in between; the recovery sweep does all that for the
 * notifications it lists that exist (ids that lost to a duplicate were never inserted, so they name
 * nothing). Two writes per batch, where marking each notification would be
 * one write per notification (and FerretDB v1 scans for `_id: { $in }` and stalls on an update
 * command of 100 statements or more).
 */
@Entity({ collection: "pending_announcements" })
@Index({ properties: ["createdAt"] })
export class PendingAnnouncement {
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

  @Property()
  notificationIds: ObjectId[];

  /** Those of them planned for their recipient's digest. */
  @Property()
  digestIds: ObjectId[];

  /** Set once the writer has announced them: what is left is emails and digest items. */
  @Property({ nullable: true })
  announcedAt?: Date | null;

  @Property()
  createdAt: Date = new Date();

  constructor(notificationIds: ObjectId[], digestIds: ObjectId[] = []) {
    this.notificationIds = notificationIds;
    this.digestIds = digestIds;
  }
}

/**
 * A withdrawal's promise (see NotificationService.withdraw): written before a batch of
 * notifications is deleted, deleted once their DELETED events are logged and the counts moved.
 * One left behind means the writer stopped in between; the recovery sweep logs the DELETED events
 * of those of `notificationIds` that are gone, and has the counters of `userIds` counted anew.
 */
@Entity({ collection: "pending_withdrawals" })
@Index({ properties: ["createdAt"] })
export class PendingWithdrawal {
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

  /** The notifications that were in an inbox, and each one's recipient (same order). */
  @Property()
  notificationIds: ObjectId[];

  @Property()
  recipientIds: ObjectId[];

  /** Every recipient of the batch, whose counters the deletion moves. */
  @Property()
  userIds: ObjectId[];

  @Property()
  createdAt: Date = new Date();

  constructor(init: { notificationIds: ObjectId[]; recipientIds: ObjectId[]; userIds: ObjectId[] }) {
    this.notificationIds = init.notificationIds;
    this.recipientIds = init.recipientIds;
    this.userIds = init.userIds;
  }
}
