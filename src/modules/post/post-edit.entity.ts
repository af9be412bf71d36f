import { ObjectId } from "@mikro-orm/mongodb";
import { Entity, Index, PrimaryKey, Property, SerializedPrimaryKey } from "@mikro-orm/decorators/legacy";

/**
 * An edit of a post, recorded by the flush that made it (see recordOnChange), with the title
 * before it: the notifications that quote the old title are found by it. Its job writes the
 * activity entry and updates those notifications; the recovery sweep finds edits left undone.
 */
@Entity({ collection: "post_edits" })
@Index({ properties: ["doneAt", "createdAt"] })
export class PostEdit {
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

  @SerializedPrimaryKey()
  id!: string;

  @Property()
  postId: ObjectId;

  @Property()
  authorId: ObjectId;

  /** The fields that changed: title, body. */
  @Property()
  fields: string[];

  @Property()
  oldTitle: string;

  @Property()
  createdAt: Date = new Date();

  @Property({ nullable: true })
  doneAt?: Date | null = null;

  constructor(init: { postId: ObjectId; authorId: ObjectId; fields: string[]; oldTitle: string }) {
    this.postId = init.postId;
    this.authorId = init.authorId;
    this.fields = init.fields;
    this.oldTitle = init.oldTitle;
  }
}
