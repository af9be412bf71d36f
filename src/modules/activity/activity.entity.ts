import { ObjectId } from "@mikro-orm/mongodb";
import { Entity, Index, PrimaryKey, Property, SerializedPrimaryKey, Unique } from "@mikro-orm/decorators/legacy";

/** What happened, for activity feeds. Written by jobs; `dedupeKey` keeps a re-run from adding twice. */
@Entity({ collection: "activity" })
@Index({ properties: ["actorId", "createdAt", "_id"] })
export class ActivityEntry {
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

  @SerializedPrimaryKey()
  id!: string;

  @Property()
  @Unique()
  dedupeKey: string;

  @Property({ nullable: true })
  actorId?: ObjectId | null;

  @Property()
  verb: string;

  @Property({ nullable: true })
  targetType?: string | null;

  @Property({ nullable: true })
  targetId?: ObjectId | null;

  /** What an edit changed (post.edited: title, body). */
  @Property({ nullable: true })
  fields?: string[] | null;

  @Property()
  createdAt: Date = new Date();

  constructor(init: {
    dedupeKey: string;
    verb: string;
    actorId?: ObjectId | null;
    targetType?: string | null;
    targetId?: ObjectId | null;
    fields?: string[] | null;
  }) {
    this.dedupeKey = init.dedupeKey;
    this.verb = init.verb;
    this.actorId = init.actorId ?? null;
    this.targetType = init.targetType ?? null;
    this.targetId = init.targetId ?? null;
    this.fields = init.fields ?? null;
  }
}
