import { ObjectId } from "@mikro-orm/mongodb";
import { Entity, Index, PrimaryKey, Property, SerializedPrimaryKey } from "@mikro-orm/decorators/legacy";

@Entity({ collection: "posts" })
@Index({ properties: ["authorId", "createdAt", "_id"] })
@Index({ properties: ["fanoutCompletedAt", "createdAt"] })
@Index({ properties: ["deletedAt"] })
export class Post {
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

  @SerializedPrimaryKey()
  id!: string;

  @Property()
  authorId: ObjectId;

  @Property()
  title: string;

  @Property()
  body: string;

  @Property()
  createdAt: Date = new Date();

  /**
   * Progress of the `post.fanout` job: the last follow (by `_id`) whose follower was notified, so a
   * run that stopped half-way resumes there instead of starting over.
   */
  @Property({ nullable: true })
  fanoutCursor?: ObjectId | null;

  /** Set when every follower has been notified; the recovery sweep reschedules posts without it. */
  @Property({ nullable: true })
  fanoutCompletedAt?: Date | null;

  /**
   * Set by deletePost: from then on the post is gone for every reader, and its fan-out stops. The
   * `post.deleted` job takes its notifications out of the inboxes, removes its comments and then the
   * post itself; the recovery sweep reschedules posts still here with it set.
   */
  @Property({ nullable: true })
  deletedAt?: Date | null;

  constructor(authorId: ObjectId, title: string, body: string) {
    this.authorId = authorId;
    this.title = title;
    this.body = body;
  }
}

@Entity({ collection: "comments" })
@Index({ properties: ["postId", "createdAt", "_id"] })
@Index({ properties: ["notifiedAt", "createdAt"] })
@Index({ properties: ["deletedAt"] })
@Index({ properties: ["authorId"] })
export class Comment {
  @PrimaryKey()
  _id: ObjectId = new ObjectId();

  @SerializedPrimaryKey()
  id!: string;

  @Property()
  postId: ObjectId;

  @Property()
  authorId: ObjectId;

  @Property()
  body: string;

  @Property()
  createdAt: Date = new Date();

  /** Set by `comment.notify`; the recovery sweep reschedules comments without it. */
  @Property({ nullable: true })
  notifiedAt?: Date | null;

  /** Set by deleteComment; the `comment.deleted` job removes its notification and then the comment. */
  @Property({ nullable: true })
  deletedAt?: Date | null;

  /**
   * Not stored: what the request that wrote the comment knew of its post and author, handed to
   * the `comment.notify` job so that the job reads nothing before it delivers.
   */
  notice?: CommentNotice;

  constructor(postId: ObjectId, authorId: ObjectId, body: string) {
    this.postId = postId;
    this.authorId = authorId;
    this.body = body;
  }
}

/** The facts a NEW_COMMENT notification is made of, as of the comment's writing. */
export interface CommentNotice {
  postId: string;
  commenterId: string;
  commenterName: string;
  /** The post's author, whom the notification is for. */
  recipientId: string;
  postTitle: string;
  /** The start of the comment, as the notification's body shows it. */
  excerpt: string;
}

const EXCERPT_LENGTH = 280;

export function commentExcerpt(text: string): string {
  return text.length <= EXCERPT_LENGTH ? text : `${text.slice(0, EXCERPT_LENGTH - 1)}…`;
}
