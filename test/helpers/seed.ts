import { ObjectId, type Db } from "mongodb";

const SEED_BATCH = 5000;

/**
 * Follows of `followeeId` by `count` new ids, straight into the database (followers need not exist
 * as users for a fan-out): far faster than signing that many up. Answers the followers' ids.
 */
export async function seedFollowers(db: Db, followeeId: ObjectId, count: number): Promise<ObjectId[]> {
  const followerIds = Array.from({ length: count }, () => new ObjectId());
  for (let i = 0; i < count; i += SEED_BATCH) {
    await db.collection("follows").insertMany(
      followerIds.slice(i, i + SEED_BATCH).map((followerId) => ({
        _id: new ObjectId(),
        followerId,
        followeeId,
        createdAt: new Date(),
        notifiedAt: new Date(),
      })),
    );
  }
  return followerIds;
}

/** `count` SYSTEM notifications for one recipient as Herald stores them, `readShare` of them read. */
export async function seedNotifications(db: Db, recipientId: ObjectId, count: number, readShare = 0): Promise<void> {
  for (let i = 0; i < count; i += SEED_BATCH) {
    await db.collection("notifications").insertMany(
      Array.from({ length: Math.min(SEED_BATCH, count - i) }, (_, j) => ({
        _id: new ObjectId(),
        recipientId,
        dedupeKey: `seed:${recipientId.toHexString()}:${i + j}`,
        kind: "SYSTEM",
        title: "Seeded",
        body: "…",
        actorId: null,
        postId: null,
        commentId: null,
        createdAt: new Date(),
        readAt: i + j < count * readShare ? new Date() : null,
        archivedAt: null,
        inApp: true,
        deliveries: [],
      })),
    );
  }
}
