import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import {
  ActivityDocument,
  AddCommentDocument,
  CreatePostDocument,
  FollowDocument,
  MyFollowerCountDocument,
  SocialInboxDocument,
  SocialNotificationAddedDocument,
  UnfollowDocument,
  type ActivityQuery,
  type NotificationKind,
  type SocialInboxQuery,
} from "../generated/graphql.js";
import { connectWs, eventually, gql, gqlOk, Subscription, subscribedInRedis } from "../helpers/graphql-client.js";
import { signUp, untilUnread, type TestUser } from "../helpers/users.js";
import type { HeraldProcess } from "../helpers/herald.js";
import { twoApiCluster } from "../helpers/cluster-fixture.js";

type InboxItem = SocialInboxQuery["notifications"]["edges"][number]["node"];
type Entry = ActivityQuery["activity"][number];

/** An id no document has: well formed, so the lookup runs and finds nothing. */
const UNKNOWN_ID = "6b04dd3b8252ce855395bab6";

let counter = 0;

/**
 * Posts, comments and follows, end to end: one worker and two api instances as separate OS
 * processes. A mutation on one instance must reach followers connected to either instance, through
 * an Agenda job in the worker, and land in every follower's inbox.
 */
describe("posts, comments and follows", () => {
  const fx = twoApiCluster("e2e_social");

  /**
   * A new user whose WELCOME is already in the inbox, so that whatever arrives later (live or in
   * the inbox) is caused by the test and not by registration.
   */
  async function register(name: string, api = fx.apiA): Promise<TestUser> {
    counter += 1;
    const user = await signUp(api.url, `${name} ${counter}`);
    await untilUnread(api.url, user, 1, 5000);
    return user;
  }

  /** A live notificationAdded subscription of `user` on `api`, listening in Redis once it returns. */
  async function listen(user: TestUser, api: HeraldProcess) {
    const ws = connectWs(api.url, { authorization: `Bearer ${user.token}` });
    fx.sockets.push(ws);
    const sub = new Subscription(ws.client, SocialNotificationAddedDocument);
    await subscribedInRedis(fx.redis, `INBOX:${user.id}`);
    return sub;
  }

  async function inbox(user: TestUser, kinds?: NotificationKind[], api = fx.apiA): Promise<InboxItem[]> {
    const { notifications } = await gqlOk(
      api.url,
      SocialInboxDocument,
      { first: 100, ...(kinds ? { filter: { kinds } } : {}) },
      user.auth,
    );
    return notifications.edges.map((e) => e.node);
  }

  /** Waits until `user`'s inbox holds a notification matching `match`, and returns it. */
  function inInbox(user: TestUser, kind: NotificationKind, match: (n: InboxItem) => boolean, api = fx.apiA) {
    return eventually(async () => (await inbox(user, [kind], api)).find(match), {
      timeoutMs: 5000,
      what: `a ${kind} in the inbox of ${user.name}`,
    });
  }

  async function activity(user: TestUser, first = 100, after?: string): Promise<Entry[]> {
    return (await gqlOk(fx.apiB.url, ActivityDocument, { first, ...(after ? { after } : {}) }, user.auth)).activity;
  }

  /**
   * Waits for the activity entry a job writes as its last step: once it is there, the job (and
   * every notification it was going to write) has finished.
   */
  function jobFinished(user: TestUser, verb: string, targetId: string) {
    return eventually(async () => (await activity(user)).find((e) => e.verb === verb && e.targetId === targetId), {
      timeoutMs: 5000,
      what: `the ${verb} activity entry of ${user.name} for ${targetId}`,
    });
  }

  async function follow(follower: TestUser, followee: TestUser, api = fx.apiA) {
    return (await gqlOk(api.url, FollowDocument, { userId: followee.id }, follower.auth)).follow;
  }

  async function createPost(author: TestUser, title: string, api = fx.apiA) {
    return (await gqlOk(api.url, CreatePostDocument, { input: { title, body: `${title}, the body` } }, author.auth))
      .createPost;
  }

  const codeOf = (r: { errors?: readonly { extensions?: Record<string, unknown> }[] | undefined }) =>
    r.errors?.[0]?.extensions?.["code"];
  const fieldOf = (r: { errors?: readonly { extensions?: Record<string, unknown> }[] | undefined }) =>
    r.errors?.[0]?.extensions?.["field"];

  describe("a post", () => {
    let author: TestUser;
    let followers: TestUser[];
    let stranger: TestUser;
    let post: Awaited<ReturnType<typeof createPost>>;

    before(async () => {
      [author, stranger, ...followers] = await Promise.all([
        register("Author"),
        register("Stranger", fx.apiB),
        register("Ada"),
        register("Bea", fx.apiB),
        register("Cy"),
        register("Di", fx.apiB),
      ]);
    });

    it("reaches every follower, live on either instance and in the inbox, and nobody else", async () => {
      for (const [i, f] of followers.entries()) {
        const followed = await follow(f, author, i % 2 === 0 ? fx.apiA : fx.apiB);
        assert.equal(followed.id, author.id);
      }
      assert.equal((await gqlOk(fx.apiA.url, MyFollowerCountDocument, {}, author.auth)).me?.followerCount, 4);
      // Two followers online, on different instances; the other two are offline.
      const [ada, bea] = followers as [TestUser, TestUser, TestUser, TestUser];
      const live = [await listen(ada, fx.apiA), await listen(bea, fx.apiB)];
      const strangerLive = await listen(stranger, fx.apiA);

      post = await createPost(author, "Hello followers", fx.apiB);
      assert.equal(post.author.id, author.id);
      assert.equal(post.title, "Hello followers");

      for (const sub of live) {
        const event = await sub.next();
        assert.equal(event.errors, undefined);
        const n = event.data?.notificationAdded;
        assert.ok(n);
        assert.equal(n.kind, "NEW_POST");
        assert.equal(n.actor?.id, author.id);
        assert.deepEqual(n.post, { id: post.id, title: "Hello followers", author: { id: author.id } });
        assert.equal(n.comment, null);
        assert.equal(n.readAt, null);
      }

      // Everybody's inbox, online or not, through either instance.
      const stored: InboxItem[] = [];
      for (const [i, f] of followers.entries()) {
        stored.push(await inInbox(f, "NEW_POST", (n) => n.post?.id === post.id, i % 2 === 0 ? fx.apiB : fx.apiA));
      }
      for (const n of stored) {
        assert.equal(n.actor?.id, author.id);
        assert.equal(n.post?.author.id, author.id);
        assert.equal(n.body, "Hello followers");
      }

      // The fan-out is one job that records post.created after notifying every follower.
      const entry = await jobFinished(author, "post.created", post.id);
      assert.equal(entry.targetType, "Post");
      assert.deepEqual(await inbox(stranger, ["NEW_POST"]), [], "a non-follower gets no NEW_POST");
      assert.deepEqual(await inbox(author, ["NEW_POST"]), [], "the author is not told of their own post");
      for (const f of followers) {
        const posts = await inbox(f, ["NEW_POST"]);
        assert.equal(posts.length, 1, `${f.name} has exactly one NEW_POST`);
      }
      // Nothing more came over the sockets: one event per online follower, none for the stranger.
      assert.deepEqual(
        [...live, strangerLive].map((s) => s.pending()),
        [0, 0, 0],
      );
    });

    it("tells the post's author of a comment, live and in the inbox, but not of their own", async () => {
      const [ada] = followers as [TestUser];
      // The follows above notified the author; let those land before listening.
      await eventually(async () => ((await inbox(author, ["NEW_FOLLOWER"])).length === 4 ? true : undefined), {
        timeoutMs: 5000,
        what: "the author's four NEW_FOLLOWER notifications",
      });
      const authorLive = await listen(author, fx.apiB);

      const { addComment: comment } = await gqlOk(
        fx.apiA.url,
        AddCommentDocument,
        { input: { postId: post.id, body: "Great post!" } },
        ada.auth,
      );
      assert.equal(comment.author.id, ada.id);
      assert.deepEqual(comment.post, { id: post.id, author: { id: author.id } });

      const event = await authorLive.next();
      assert.equal(event.errors, undefined);
      const n = event.data?.notificationAdded;
      assert.ok(n);
      assert.equal(n.kind, "NEW_COMMENT");
      assert.equal(n.actor?.id, ada.id);
      assert.deepEqual(n.comment, { id: comment.id, body: "Great post!" });
      assert.deepEqual(n.post, { id: post.id, title: "Hello followers", author: { id: author.id } });
      assert.equal(n.body, "Great post!");

      const stored = await inInbox(author, "NEW_COMMENT", (x) => x.comment?.id === comment.id, fx.apiA);
      assert.deepEqual(stored, n, "what was pushed can be fetched again");

      // The author answers on their own post: the job runs (its activity entry appears), and
      // writes no notification.
      const own = (
        await gqlOk(fx.apiB.url, AddCommentDocument, { input: { postId: post.id, body: "Thanks!" } }, author.auth)
      ).addComment;
      const entry = await jobFinished(author, "comment.added", own.id);
      assert.equal(entry.targetType, "Comment");
      assert.equal(entry.actor?.id, author.id);
      const comments = await inbox(author, ["NEW_COMMENT"]);
      assert.deepEqual(
        comments.map((c) => c.comment?.id),
        [comment.id],
        "no NEW_COMMENT for a comment on one's own post",
      );
      assert.equal(authorLive.pending(), 0);
      // Ada's comment was recorded as her activity, not the author's.
      await jobFinished(ada, "comment.added", comment.id);
      assert.equal(
        (await activity(author)).find((e) => e.targetId === comment.id),
        undefined,
      );
    });
  });

  describe("follow", () => {
    it("tells the followed user once, however often they are followed", async () => {
      const [fan, star] = await Promise.all([register("Fan"), register("Star", fx.apiB)]);
      const starLive = await listen(star, fx.apiB);

      const first = await follow(fan, star, fx.apiA);
      assert.deepEqual([first.id, first.followerCount], [star.id, 1]);
      // Again, and twice at once on both instances: still one follow.
      const again = await Promise.all([
        follow(fan, star, fx.apiA),
        follow(fan, star, fx.apiB),
        follow(fan, star, fx.apiA),
      ]);
      assert.deepEqual(
        again.map((u) => u.followerCount),
        [1, 1, 1],
      );
      assert.equal((await gqlOk(fx.apiB.url, MyFollowerCountDocument, {}, star.auth)).me?.followerCount, 1);

      const event = await starLive.next();
      assert.equal(event.data?.notificationAdded.kind, "NEW_FOLLOWER");
      assert.equal(event.data?.notificationAdded.actor?.id, fan.id);
      assert.match(event.data?.notificationAdded.title ?? "", new RegExp(fan.name));

      // follow.notify records user.followed last; one entry means one follow was notified.
      await jobFinished(fan, "user.followed", star.id);
      const followedEntries = (await activity(fan)).filter((e) => e.verb === "user.followed");
      assert.equal(followedEntries.length, 1);
      const stored = await inbox(star, ["NEW_FOLLOWER"]);
      assert.deepEqual(
        stored.map((n) => [n.id, n.actor?.id]),
        [[event.data?.notificationAdded.id, fan.id]],
        "exactly one NEW_FOLLOWER",
      );
      assert.equal(starLive.pending(), 0);

      // Unfollow and follow again: a new follow, whose job runs (a second user.followed entry),
      // but the followed user is not told twice.
      await gqlOk(fx.apiA.url, UnfollowDocument, { userId: star.id }, fan.auth);
      await follow(fan, star, fx.apiB);
      await eventually(
        async () =>
          (await activity(fan)).filter((e) => e.verb === "user.followed" && e.targetId === star.id).length === 2
            ? true
            : undefined,
        { timeoutMs: 5000, what: "the second follow's job" },
      );
      assert.equal((await inbox(star, ["NEW_FOLLOWER"])).length, 1, "still one NEW_FOLLOWER after following again");
      assert.equal(starLive.pending(), 0);
    });

    it("unfollows without error when not following, and refuses yourself and unknown users", async () => {
      const [me, other] = await Promise.all([register("Loner"), register("Other")]);
      const r = await gqlOk(fx.apiA.url, UnfollowDocument, { userId: other.id }, me.auth);
      assert.deepEqual(r.unfollow, { id: other.id, followerCount: 0 });

      const self = await gql(fx.apiA.url, FollowDocument, { userId: me.id }, me.auth);
      assert.equal(codeOf(self), "BAD_USER_INPUT");
      assert.equal(fieldOf(self), "userId");
      const unknown = await gql(fx.apiA.url, FollowDocument, { userId: UNKNOWN_ID }, me.auth);
      assert.equal(codeOf(unknown), "NOT_FOUND");
      const malformed = await gql(fx.apiA.url, FollowDocument, { userId: "42" }, me.auth);
      assert.equal(codeOf(malformed), "BAD_USER_INPUT");
      assert.equal(fieldOf(malformed), "userId");
      const unknownUnfollow = await gql(fx.apiA.url, UnfollowDocument, { userId: UNKNOWN_ID }, me.auth);
      assert.equal(codeOf(unknownUnfollow), "NOT_FOUND");
      assert.equal((await gqlOk(fx.apiA.url, MyFollowerCountDocument, {}, me.auth)).me?.followerCount, 0);
    });

    it("stops a post from reaching a user who unfollowed", async () => {
      const [leaver, stayer, poster] = await Promise.all([
        register("Leaver"),
        register("Stayer", fx.apiB),
        register("Poster"),
      ]);
      await follow(leaver, poster, fx.apiA);
      await follow(stayer, poster, fx.apiB);
      const left = await gqlOk(fx.apiB.url, UnfollowDocument, { userId: poster.id }, leaver.auth);
      assert.deepEqual(left.unfollow, { id: poster.id, followerCount: 1 });
      const leaverLive = await listen(leaver, fx.apiA);

      const p = await createPost(poster, "After the split", fx.apiA);
      // The one still following gets it; once the job has finished, the one who left has nothing.
      await inInbox(stayer, "NEW_POST", (n) => n.post?.id === p.id);
      await jobFinished(poster, "post.created", p.id);
      assert.deepEqual(await inbox(leaver, ["NEW_POST"]), []);
      assert.equal(leaverLive.pending(), 0);
    });
  });

  describe("activity", () => {
    it("lists the caller's own entries newest first, page by page", async () => {
      const [me, friend] = await Promise.all([register("Diarist"), register("Friend", fx.apiB)]);
      // Each step waits for its entry, so the entries' order is the order of the steps.
      await jobFinished(me, "user.registered", me.id);
      await follow(me, friend);
      await jobFinished(me, "user.followed", friend.id);
      const friendsPost = await createPost(friend, "Friend's news", fx.apiB);
      const { addComment: comment } = await gqlOk(
        fx.apiA.url,
        AddCommentDocument,
        { input: { postId: friendsPost.id, body: "Congrats" } },
        me.auth,
      );
      await jobFinished(me, "comment.added", comment.id);
      const myPost = await createPost(me, "My own news");
      await jobFinished(me, "post.created", myPost.id);

      const all = await activity(me, 10);
      assert.deepEqual(
        all.map((e) => [e.verb, e.targetType, e.targetId, e.actor?.id]),
        [
          ["post.created", "Post", myPost.id, me.id],
          ["comment.added", "Comment", comment.id, me.id],
          ["user.followed", "User", friend.id, me.id],
          ["user.registered", "User", me.id, me.id],
        ],
        "only the caller's own entries, newest first",
      );
      const times = all.map((e) => Date.parse(e.createdAt));
      assert.deepEqual(
        times,
        [...times].sort((a, b) => b - a),
      );

      const page1 = await activity(me, 2);
      const page2 = await activity(me, 2, page1.at(-1)?.id);
      const page3 = await activity(me, 2, page2.at(-1)?.id);
      assert.deepEqual(
        [...page1, ...page2].map((e) => e.id),
        all.map((e) => e.id),
        "two pages of two are the four entries, none repeated",
      );
      assert.deepEqual(page3, []);
      assert.deepEqual(
        (await activity(me, 10, all[0]?.id)).map((e) => e.id),
        all.slice(1).map((e) => e.id),
      );

      const friendsEntry = (await activity(friend)).find((e) => e.verb === "post.created");
      assert.ok(friendsEntry);
      const foreign = await gql(fx.apiA.url, ActivityDocument, { first: 5, after: friendsEntry.id }, me.auth);
      assert.equal(codeOf(foreign), "BAD_USER_INPUT");
      assert.equal(fieldOf(foreign), "after");
      const tooMany = await gql(fx.apiA.url, ActivityDocument, { first: 101 }, me.auth);
      assert.equal(codeOf(tooMany), "BAD_USER_INPUT");
      assert.equal(fieldOf(tooMany), "first");
    });
  });

  describe("refusals", () => {
    let user: TestUser;
    let postId: string;

    before(async () => {
      user = await register("Critic");
      postId = (await createPost(user, "Something to comment on")).id;
    });

    it("answers UNAUTHENTICATED to writes without a token", async () => {
      const writes = await Promise.all([
        gql(fx.apiA.url, CreatePostDocument, { input: { title: "t", body: "b" } }),
        gql(fx.apiA.url, AddCommentDocument, { input: { postId, body: "b" } }),
        gql(fx.apiB.url, FollowDocument, { userId: user.id }),
        gql(fx.apiB.url, UnfollowDocument, { userId: user.id }),
      ]);
      assert.deepEqual(writes.map(codeOf), [
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
      ]);
      assert.ok(writes.every((r) => r.data === null));
    });

    it("answers NOT_FOUND to a comment on an unknown post", async () => {
      const r = await gql(
        fx.apiA.url,
        AddCommentDocument,
        { input: { postId: UNKNOWN_ID, body: "hello?" } },
        user.auth,
      );
      assert.equal(codeOf(r), "NOT_FOUND");
    });

    it("answers BAD_USER_INPUT naming the field to invalid input", async () => {
      const post = (title: string, body: string) =>
        gql(fx.apiA.url, CreatePostDocument, { input: { title, body } }, user.auth);
      const comment = (onPost: string, body: string) =>
        gql(fx.apiA.url, AddCommentDocument, { input: { postId: onPost, body } }, user.auth);
      const cases = [
        ["title", await post("", "b")],
        ["title", await post("x".repeat(201), "b")],
        ["body", await post("t", "x".repeat(20_001))],
        ["body", await comment(postId, "")],
        ["body", await comment(postId, "x".repeat(5001))],
        ["postId", await comment("42", "b")],
      ] as const;
      for (const [field, r] of cases) {
        assert.equal(codeOf(r), "BAD_USER_INPUT", `${field}: ${JSON.stringify(r.errors)}`);
        assert.equal(fieldOf(r), field);
        assert.equal(r.data, null);
      }
    });

    it("refuses a title of nothing but spaces, which would be stored empty", async () => {
      const r = await gql(fx.apiA.url, CreatePostDocument, { input: { title: "   ", body: "b" } }, user.auth);
      assert.equal(codeOf(r), "BAD_USER_INPUT", `created: ${JSON.stringify(r.data)}`);
      assert.equal(fieldOf(r), "title");
    });
  });
});
