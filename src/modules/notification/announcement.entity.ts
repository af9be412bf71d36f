import { ObjectId } from "@mikro-orm/mongodb";
import { Entity, Index, PrimaryKey, Property } from "@mikro-orm/decorators/legacy";

/**
 * A writer's promise to announce: written before a batch of notifications is inserted, deleted
 * once they have been announced. One left behind means the writer stopped in between; the recovery
 * sweep announces the notifications it lists that exist (ids that lost to a duplicate were never
 * inserted, so they name nothing). Two writes per batch, where marking each notification would be
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

  @Property()
  createdAt: Date = new Date();

  constructor(notificationIds: ObjectId[]) {
    this.notificationIds = notificationIds;
  }
}
