import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ObjectId } from "@mikro-orm/mongodb";
import { Redis } from "ioredis";
import { ActivityEntry } from "../../src/modules/activity/activity.entity.js";
import { Follow } from "../../src/modules/follow/follow.entity.js";
import { Notification } from "../../src/modules/notification/notification.entity.js";
import { NotificationKind } from "../../src/modules/notification/notification.enums.js";
import { fanout } from "../../src/modules/post/post.jobs.js";
import { Post } from "../../src/modules/post/post.entity.js";
import { User } from "../../src/modules/user/user.entity.js";
import { testRedisUrl } from "../helpers/env.js";
import { ChannelRecorder, startWorkerStack, type WorkerStack } from "../helpers/stack.js";

const FOLLOWERS = 2500;

/** post.fanout is one job per post: it must finish, resume after a stop, and never notify twice. */
describe("post fan-out", () => {
  let stack: WorkerStack;
  let publisher: Redis;

  before(async () => {
    stack = await startWorkerStack("it_fanout");
    publisher = new Redis(testRedisUrl());
  });

  after(async () => {
    publisher.disconnect();
    await stack.stop();
  });

  /** An author with followers, seeded in bulk; follows come back in fan-out (follow id) order. */
  async function authorWithFollowers(count: number): Promise<{ author: User; follows: Follow[] }> {
    const em = stack.orm.em.fork();
    const author = new User(`author.${new ObjectId().toHexString()}@example.com`, "Author", "scrypt$unused");
    await em.persist(author).flush();
    const follows = Array.from({ length: count }, () => new Follow(new ObjectId(), author._id));
    for (let i = 0; i < follows.length; i += 1000) await em.insertMany(Follow, follows.slice(i, i + 1000));
    follows.sort((a, b) => a._id.toHexString().localeCompare(b._id.toHexString()));
    return { author, follows };
  }

  async function newPost(author: User): Promise<Post> {
    const em = stack.orm.em.fork();
    const post = new Post(author._id, "Fan-out", "to everyone");
    await em.persist(post).flush();
    return post;
  }

  const notificationsOf = (post: Post) =>
    stack.orm.em.fork().find(Notification, { postId: post._id }, { fields: ["recipientId", "kind", "title"] });

  it("writes one NEW_POST per follower, records the activity and is skipped when run again", async () => {
    const { author, follows } = await authorWithFollowers(FOLLOWERS);
    const post = await newPost(author);
    assert.equal(await fanout(stack, { postId: post.id }), "done");
    const written = await notificationsOf(post);
    assert.equal(written.length, FOLLOWERS);
    assert.equal(new Set(written.map((n) => n.recipientId.toHexString())).size, FOLLOWERS, "one per follower");
    assert.deepEqual(
      new Set(written.map((n) => n.recipientId.toHexString())),
      new Set(follows.map((f) => f.followerId.toHexString())),
    );
    assert.ok(written.every((n) => n.kind === NotificationKind.NEW_POST && n.title === "New post from Author"));
    assert.equal(await stack.orm.em.fork().count(ActivityEntry, { verb: "post.created", targetId: post._id }), 1);
    assert.equal(await fanout(stack, { postId: post.id }), "skipped");
    assert.equal((await notificationsOf(post)).length, FOLLOWERS);
  });

  it("resumes after the last recorded follow and notifies nobody twice, even within a half-written page", async () => {
    const { author, follows } = await authorWithFollowers(FOLLOWERS);
    const post = await newPost(author);
    // A run that stopped: it had recorded progress up to follow 999, and written notifications
    // past it (up to 1599) without recording them.
    const stoppedAt = follows[999];
    assert.ok(stoppedAt);
    await stack.notifications.deliver(
      stack.orm.em.fork(),
      follows.slice(0, 1600).map((f) => ({
        recipientId: f.followerId,
        dedupeKey: `post:${post.id}:${f.followerId.toHexString()}`,
        kind: NotificationKind.NEW_POST,
        title: "written before the stop",
        body: post.title,
        postId: post._id,
      })),
    );
    await stack.orm.em.fork().nativeUpdate(Post, { _id: post._id }, { fanoutCursor: stoppedAt._id });
    const early = follows[10]?.followerId.toHexString() ?? "";
    const halfWritten = follows[1200]?.followerId.toHexString() ?? "";
    const fresh = follows[2000]?.followerId.toHexString() ?? "";
    const channels = await Promise.all([early, halfWritten, fresh].map((id) => ChannelRecorder.open(`INBOX:${id}`)));

    assert.equal(await fanout(stack, { postId: post.id }), "done");

    const written = await notificationsOf(post);
    assert.equal(written.length, FOLLOWERS, "every follower exactly once");
    assert.equal(written.filter((n) => n.title === "written before the stop").length, 1600, "nothing rewritten");
    const heard = await Promise.all(channels.map((c) => c.settle(publisher)));
    for (const c of channels) c.close();
    assert.deepEqual(
      heard.map((events) => events.length),
      [0, 0, 1],
      "only followers not yet written are told now",
    );
  });

  it("does nothing for a post that no longer exists", async () => {
    assert.equal(await fanout(stack, { postId: new ObjectId().toHexString() }), "skipped");
  });
});
