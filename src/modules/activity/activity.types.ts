import { Field, ID, ObjectType } from "type-graphql";
import type { ActivityEntry } from "./activity.entity.js";

@ObjectType("ActivityEntry")
export class ActivityView {
  @Field(() => ID)
  id!: string;

  /** Resolved to `actor` by ActivityResolver. */
  actorId!: string | null;

  @Field({
    description: "What happened: user.registered, post.created, post.edited, comment.added, user.followed.",
  })
  verb!: string;

  @Field(() => String, { nullable: true })
  targetType!: string | null;

  @Field(() => ID, { nullable: true })
  targetId!: string | null;

  @Field(() => [String], { nullable: true, description: "What an edit changed (post.edited: title, body)." })
  fields!: string[] | null;

  @Field()
  createdAt!: Date;
}

export function toActivityView(entry: ActivityEntry): ActivityView {
  return {
    id: entry.id,
    actorId: entry.actorId?.toHexString() ?? null,
    verb: entry.verb,
    targetType: entry.targetType ?? null,
    targetId: entry.targetId?.toHexString() ?? null,
    fields: entry.fields ?? null,
    createdAt: entry.createdAt,
  };
}
