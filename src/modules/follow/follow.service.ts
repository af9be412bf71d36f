import { ObjectId } from "@mikro-orm/mongodb";
import type { EntityManager } from "../../infra/orm.js";
import { isDuplicateKeyError } from "../../infra/orm.js";
import { badInput, notFound } from "../../graphql/errors.js";
import { User } from "../user/user.entity.js";
import { Follow } from "./follow.entity.js";

/** Who follows whom. Both operations are idempotent: following twice is one follow. */
export class FollowService {
  /** Returns the followed user. */
  async follow(em: EntityManager, followerId: string, userId: string): Promise<User> {
    const followee = await this.target(em, followerId, userId);
    try {
      // FollowSubscriber schedules follow.notify once this write is committed.
      await em.persist(new Follow(new ObjectId(followerId), followee._id)).flush();
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
    }
    return followee;
  }

  /** Returns the user no longer followed; unfollowing someone not followed is not an error. */
  async unfollow(em: EntityManager, followerId: string, userId: string): Promise<User> {
    const followee = await this.target(em, followerId, userId);
    await em.nativeDelete(Follow, { followerId: new ObjectId(followerId), followeeId: followee._id });
    return followee;
  }

  followerCount(em: EntityManager, userId: string): Promise<number> {
    return em.count(Follow, { followeeId: new ObjectId(userId) });
  }

  private async target(em: EntityManager, followerId: string, userId: string): Promise<User> {
    if (!ObjectId.isValid(userId)) throw badInput("userId", "is not a user id");
    if (userId === followerId) throw badInput("userId", "you cannot follow yourself");
    const user = await em.findOne(User, { _id: new ObjectId(userId) });
    if (!user || user.deletedAt) throw notFound("User");
    return user;
  }
}
