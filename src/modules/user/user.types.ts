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

@ObjectType({ description: "A signed-in login: its access token, and the refresh token that renews it." })
export class AuthPayload {
  @Field({ description: "The access token: send it as `Authorization: Bearer <token>`." })
  token!: string;

  @Field({ description: "When the access token expires: refresh before then." })
  expiresAt!: Date;

  @Field({ description: "Single-use: `refresh` spends it and returns the next one." })
  refreshToken!: string;

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

@ObjectType("Session", { description: "One login of the caller: a device that signed in and has not signed out." })
export class SessionView {
  @Field(() => ID)
  id!: string;

  @Field({ description: 'Browser and system at sign-in, e.g. "Firefox 128 on Linux".' })
  device!: string;

  @Field()
  createdAt!: Date;

  @Field({ description: "When a token was last issued for it (sign-in or refresh)." })
  lastUsedAt!: Date;

  @Field({ description: "Whether it is the login of the token this request was sent with." })
  current!: boolean;
}
