import { Field, ID, ObjectType } from "type-graphql";
import type { User as UserEntity } from "./user.entity.js";

/** What a user looks like through the API; `email` is resolved only for its owner. */
@ObjectType("User")
export class UserView {
  @Field(() => ID)
  id!: string;

  @Field()
  displayName!: string;

  /** Private: not a @Field here; UserResolver exposes it to the owner only. */
  email!: string;

  /** Set where the caller is known to be this user although not signed in yet (register, login). */
  viewerIsOwner?: boolean;

  @Field()
  createdAt!: Date;
}

@ObjectType()
export class AuthPayload {
  @Field()
  token!: string;

  @Field(() => UserView)
  user!: UserView;
}

export function toUserView(user: UserEntity, viewerIsOwner = false): UserView {
  return {
    viewerIsOwner,
    id: user.id,
    displayName: user.displayName,
    email: user.email,
    createdAt: user.createdAt,
  };
}
