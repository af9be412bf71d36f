import { ObjectId } from "@mikro-orm/mongodb";
import { Entity, Index, PrimaryKey, Property, SerializedPrimaryKey, Unique } from "@mikro-orm/decorators/legacy";

/**
 * One user following another. Following twice is one follow: the unique (follower, followee) index
 * turns a second insert into a duplicate-key error, which the service treats as success.
 */
@Entity({ collection: "follows" })
@Unique({ properties: ["followerId", "followeeId"] })
// Fan-out pages through a user's followers in `_id` order.
@Index({ properties: ["followeeId", "_id"] })
@Index({ properties: ["notifiedAt", "createdAt"] })
export class Follow {
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

  @SerializedPrimaryKey()
  id!: string;

  @Property()
  followerId: ObjectId;

  @Property()
  followeeId: ObjectId;

  @Property()
  createdAt: Date = new Date();

  /** Set by `follow.notify`; the recovery sweep reschedules follows without it. */
  @Property({ nullable: true })
  notifiedAt?: Date | null;

  constructor(followerId: ObjectId, followeeId: ObjectId) {
    this.followerId = followerId;
    this.followeeId = followeeId;
  }
}
