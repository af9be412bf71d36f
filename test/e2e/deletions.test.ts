import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MongoClient, ObjectId } from "mongodb";
import {
  ActivityDocument,
  AddCommentDocument,
  CreatePostDocument,
  DeleteCommentDocument,
  DeletePostDocument,
  FollowDocument,
  InboxStartDocument,
  PostTitleDocument,
  SocialInboxDocument,
  UnreadCountDocument,
} from "../generated/graphql.js";
import { eventually, gql, gqlOk } from "../helpers/graphql-client.js";
import { baseEnv, startHerald, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";
import { LiveInbox } from "../helpers/inbox-stream.js";
import { seedFollowers } from "../helpers/seed.js";
import { signUp, untilUnread, type TestUser } from "../helpers/users.js";

const codeOf = (r: { errors?: readonly { extensions?: Record<string, unknown> }[] | undefined | null }) =>
  r.errors?.[0]?.extensions?.["code"];

/**
 * Deletion signals: a deleted post's notifications leave every inbox (DELETED events, unread counts
 * corrected), its comments go and its fan-out stops; a deleted comment's NEW_COMMENT leaves its
 * post author's inbox. Over one real api+worker process.
 */
describe("deleting posts and comments", () => {
  let herald: HeraldProcess;
  let mongo: MongoClient;
  let author: TestUser;
  let follower: TestUser;
  let commenter: TestUser;

  before(async () => {
    // Debug logs say when each job run ends, which the fan-out test waits for.
    herald = await startHerald({
      ...baseEnv(uniqueDatabase("e2e_deletions")),
      ROLES: "api,worker",
      LOG_LEVEL: "debug",
    });
    mongo = await MongoClient.connect(herald.env["MONGO_URL"] ?? "");
    [author, follower, commenter] = await Promise.all([
      signUp(herald.url, "Author"),
      signUp(herald.url, "Follower"),
      signUp(herald.url, "Commenter"),
    ]);
    await gqlOk(herald.url, FollowDocument, { userId: author.id }, follower.auth);
    // Everyone's WELCOME, and the author's NEW_FOLLOWER.
    await Promise.all([untilUnread(herald.url, follower, 1), untilUnread(herald.url, author, 2)]);
  });

  after(async () => {
    await mongo?.close();
    assert.equal(await herald.stop(), 0, herald.output());
  });

  const inboxOf = async (user: TestUser) =>
    (await gqlOk(herald.url, SocialInboxDocument, { first: 50 }, user.auth)).notifications.edges.map((e) => e.node);
  const unread = async (user: TestUser) => (await gqlOk(herald.url, UnreadCountDocument, {}, user.auth)).unreadCount;
  const activityOf = async (user: TestUser, verb: string) =>
    (await gqlOk(herald.url, ActivityDocument, { first: 50 }, user.auth)).activity.filter((a) => a.verb === verb);
  const streamOf = async (user: TestUser) => {
    const start = await gqlOk(herald.url, InboxStartDocument, { first: 1 }, user.auth);
    return new LiveInbox(() => herald.url, user.token, start.notifications.streamCursor);
  };

  it("takes a post's notifications out of every inbox, with DELETED events and the counts corrected", async () => {
    const { createPost: post } = await gqlOk(
      herald.url,
      CreatePostDocument,
      { input: { title: "Soon gone", body: "…" } },
      author.auth,
    );
    const { addComment: comment } = await gqlOk(
      herald.url,
      AddCommentDocument,
      { input: { postId: post.id, body: "First!" } },
      commenter.auth,
    );
    const [newPost, newComment] = await eventually(
      async () => {
        const p = (await inboxOf(follower)).find((n) => n.kind === "NEW_POST" && n.post?.id === post.id);
        const c = (await inboxOf(author)).find((n) => n.kind === "NEW_COMMENT" && n.post?.id === post.id);
        return p && c ? ([p, c] as const) : undefined;
      },
      { timeoutMs: 10_000, what: "the NEW_POST and the NEW_COMMENT" },
    );
    const [followerUnread, authorUnread] = [await unread(follower), await unread(author)];
    const followerStream = await streamOf(follower);
    const authorStream = await streamOf(author);
    try {
      assert.equal(
        codeOf(await gql(herald.url, DeletePostDocument, { id: post.id }, follower.auth)),
        "NOT_FOUND",
        "another user's post",
      );
      assert.equal((await gqlOk(herald.url, DeletePostDocument, { id: post.id }, author.auth)).deletePost, true);
      // Gone for every reader at once, before its job has run.
      assert.equal((await gqlOk(herald.url, PostTitleDocument, { id: post.id }, follower.auth)).post, null);
      assert.equal(
        codeOf(await gql(herald.url, DeletePostDocument, { id: post.id }, author.auth)),
        "NOT_FOUND",
        "deleting it again",
      );
      assert.equal(
        codeOf(await gql(herald.url, AddCommentDocument, { input: { postId: post.id, body: "Late" } }, commenter.auth)),
        "NOT_FOUND",
        "commenting on it",
      );

      const [toFollower] = await followerStream.untilCount(1, "the follower's DELETED event");
      assert.equal(toFollower?.type, "DELETED");
      assert.equal(toFollower?.notificationId, newPost.id);
      assert.equal(toFollower?.unreadCount, followerUnread - 1);
      const [toAuthor] = await authorStream.untilCount(1, "the author's DELETED event");
      assert.equal(toAuthor?.type, "DELETED");
      assert.equal(toAuthor?.notificationId, newComment.id);
      assert.equal(toAuthor?.unreadCount, authorUnread - 1);
    } finally {
      await Promise.all([followerStream.close(), authorStream.close()]);
    }
    assert.equal(await unread(follower), followerUnread - 1);
    assert.equal(await unread(author), authorUnread - 1);
    assert.ok(!(await inboxOf(follower)).some((n) => n.id === newPost.id));
    assert.ok(!(await inboxOf(author)).some((n) => n.id === newComment.id));

    const deleted = await eventually(
      async () => {
        const entries = await activityOf(author, "post.deleted");
        return entries.length > 0 ? entries : undefined;
      },
      { timeoutMs: 10_000, what: "the post.deleted entry" },
    );
    assert.deepEqual(
      deleted.map((a) => a.targetId),
      [post.id],
    );
    const db = mongo.db();
    await eventually(
      async () =>
        (await db.collection("posts").countDocuments({ _id: new ObjectId(post.id) })) === 0 ? true : undefined,
      { timeoutMs: 10_000, what: "the post to go" },
    );
    assert.equal(await db.collection("comments").countDocuments({ _id: new ObjectId(comment.id) }), 0, "its comment");
  });

  it("takes a deleted comment's NEW_COMMENT out of the post author's inbox", async () => {
    const { createPost: post } = await gqlOk(
      herald.url,
      CreatePostDocument,
      { input: { title: "Stays", body: "…" } },
      author.auth,
    );
    const { addComment: comment } = await gqlOk(
      herald.url,
      AddCommentDocument,
      { input: { postId: post.id, body: "Regrettable" } },
      commenter.auth,
    );
    const newComment = await eventually(
      async () => (await inboxOf(author)).find((n) => n.kind === "NEW_COMMENT" && n.comment?.id === comment.id),
      { timeoutMs: 10_000, what: "the NEW_COMMENT" },
    );
    const before = await unread(author);
    const stream = await streamOf(author);
    try {
      assert.equal(
        codeOf(await gql(herald.url, DeleteCommentDocument, { id: comment.id }, author.auth)),
        "NOT_FOUND",
        "the post's author cannot delete another's comment",
      );
      assert.equal(
        (await gqlOk(herald.url, DeleteCommentDocument, { id: comment.id }, commenter.auth)).deleteComment,
        true,
      );
      const [event] = await stream.untilCount(1, "the DELETED event");
      assert.equal(event?.type, "DELETED");
      assert.equal(event?.notificationId, newComment.id);
      assert.equal(event?.unreadCount, before - 1);
    } finally {
      await stream.close();
    }
    assert.equal(await unread(author), before - 1);
    await eventually(
      async () =>
        (await activityOf(commenter, "comment.deleted")).some((a) => a.targetId === comment.id) ? true : undefined,
      { timeoutMs: 10_000, what: "the comment.deleted entry" },
    );
    // The post and its NEW_POST stay.
    assert.equal((await gqlOk(herald.url, PostTitleDocument, { id: post.id }, follower.auth)).post?.id, post.id);
    assert.ok((await inboxOf(follower)).some((n) => n.kind === "NEW_POST" && n.post?.id === post.id));
  });

  it("stops a fan-out under way, and leaves none of its notifications behind", async () => {
    const FOLLOWERS = 20_000;
    const db = mongo.db();
    const celebrity = await signUp(herald.url, "Celebrity");
    await seedFollowers(db, new ObjectId(celebrity.id), FOLLOWERS);
    const { createPost: post } = await gqlOk(
      herald.url,
      CreatePostDocument,
      { input: { title: "Retracted", body: "…" } },
      celebrity.auth,
    );
    const postId = new ObjectId(post.id);
    const stored = () => db.collection("notifications").countDocuments({ postId });
    await eventually(async () => ((await stored()) >= 1_000 ? true : undefined), {
      timeoutMs: 60_000,
      what: "the fan-out to be under way",
    });
    await gqlOk(herald.url, DeletePostDocument, { id: post.id }, celebrity.auth);

    // The fan-out's run ends (stopped by the deletion), and a deletion's run ends after it.
    const finished = (job: string) =>
      herald
        .output()
        .split("\n")
        .filter((l) => l.includes('"job finished"') && l.includes(`"job":"${job}"`) && l.includes(post.id));
    const fanout = await eventually(() => Promise.resolve(finished("post.fanout").at(-1)), {
      timeoutMs: 60_000,
      what: "the fan-out's run to end",
    });
    assert.match(fanout, /"outcome":"skipped"/, "the fan-out stopped for the deletion");
    // A deletion run ends after the fan-out's (the one the fan-out asked for, after its last write),
    // the post is gone, and no notification about it is left. Were one left behind, this times out.
    await eventually(
      async () => {
        const lines = herald.output().split("\n");
        const deletion = lines.findLastIndex((l) => l.includes('"job":"post.deleted"') && l.includes(post.id));
        return deletion > lines.indexOf(fanout) &&
          (await db.collection("posts").countDocuments({ _id: postId })) === 0 &&
          (await stored()) === 0
          ? true
          : undefined;
      },
      { timeoutMs: 60_000, what: "a deletion run after the fan-out's end, the post gone and nothing left about it" },
    );
  });
});
