import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  ActivityDocument,
  AddCommentDocument,
  CreatePostDocument,
  FollowDocument,
  SocialInboxDocument,
  UpdatePostDocument,
} from "../generated/graphql.js";
import { eventually, gql, gqlOk } from "../helpers/graphql-client.js";
import { baseEnv, startHerald, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";
import { signUp, type TestUser } from "../helpers/users.js";

const codeOf = (r: { errors?: readonly { extensions?: Record<string, unknown> }[] | undefined | null }) =>
  r.errors?.[0]?.extensions?.["code"];

/**
 * A field-change signal: an edit of a post notifies nobody, records post.edited with the fields
 * that changed (a save that changes nothing records nothing), and every inbox entry about the post
 * shows its new title.
 */
describe("editing a post", () => {
  let herald: HeraldProcess;
  let author: TestUser;
  let follower: TestUser;
  let commenter: TestUser;

  before(async () => {
    herald = await startHerald({ ...baseEnv(uniqueDatabase("e2e_post_edits")), ROLES: "api,worker" });
    [author, follower, commenter] = await Promise.all([
      signUp(herald.url, "Author"),
      signUp(herald.url, "Follower"),
      signUp(herald.url, "Commenter"),
    ]);
    await gqlOk(herald.url, FollowDocument, { userId: author.id }, follower.auth);
  });

  after(async () => {
    assert.equal(await herald.stop(), 0, herald.output());
  });

  const inboxOf = async (user: TestUser, kind: string) =>
    (await gqlOk(herald.url, SocialInboxDocument, { first: 50 }, user.auth)).notifications.edges
      .map((e) => e.node)
      .filter((n) => n.kind === kind);

  const editsOf = async (postId: string) =>
    (await gqlOk(herald.url, ActivityDocument, { first: 50 }, author.auth)).activity.filter(
      (a) => a.verb === "post.edited" && a.targetId === postId,
    );

  it("shows the new title in every inbox entry about the post, and notifies nobody", async () => {
    const { createPost: post } = await gqlOk(
      herald.url,
      CreatePostDocument,
      { input: { title: "Old title", body: "Body" } },
      author.auth,
    );
    await gqlOk(herald.url, AddCommentDocument, { input: { postId: post.id, body: "Nice" } }, commenter.auth);
    await eventually(
      async () =>
        (await inboxOf(follower, "NEW_POST")).some((n) => n.post?.id === post.id) &&
        (await inboxOf(author, "NEW_COMMENT")).some((n) => n.post?.id === post.id)
          ? true
          : undefined,
      { timeoutMs: 10_000, what: "the NEW_POST and the NEW_COMMENT" },
    );
    const before = (await inboxOf(follower, "NEW_POST")).length + (await inboxOf(author, "NEW_COMMENT")).length;

    // A save that changes nothing, then a real edit.
    await gqlOk(herald.url, UpdatePostDocument, { id: post.id, input: { title: "Old title" } }, author.auth);
    const edited = await gqlOk(
      herald.url,
      UpdatePostDocument,
      { id: post.id, input: { title: "New title" } },
      author.auth,
    );
    assert.equal(edited.updatePost.title, "New title");
    assert.equal(edited.updatePost.body, "Body");

    const edits = await eventually(
      async () => {
        const found = await editsOf(post.id);
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 10_000, what: "the post.edited entry" },
    );
    assert.deepEqual(
      edits.map((e) => e.fields),
      [["title"]],
      "one entry, for the real edit",
    );

    await eventually(
      async () => {
        const newPost = (await inboxOf(follower, "NEW_POST")).find((n) => n.post?.id === post.id);
        const newComment = (await inboxOf(author, "NEW_COMMENT")).find((n) => n.post?.id === post.id);
        return newPost?.body === "New title" && newComment?.title === 'Commenter commented on "New title"'
          ? true
          : undefined;
      },
      { timeoutMs: 10_000, what: "the inbox entries to show the new title" },
    );
    const afterEdit = (await inboxOf(follower, "NEW_POST")).length + (await inboxOf(author, "NEW_COMMENT")).length;
    assert.equal(afterEdit, before, "no new notification");
  });

  it("records which fields changed, the body alone here", async () => {
    const { createPost: post } = await gqlOk(
      herald.url,
      CreatePostDocument,
      { input: { title: "Stays", body: "First" } },
      author.auth,
    );
    await gqlOk(herald.url, UpdatePostDocument, { id: post.id, input: { body: "Second" } }, author.auth);
    const edits = await eventually(
      async () => {
        const found = await editsOf(post.id);
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 10_000, what: "the post.edited entry" },
    );
    assert.deepEqual(edits[0]?.fields, ["body"]);
  });

  it("answers another user's post, and an id that is none, with NOT_FOUND", async () => {
    const { createPost: post } = await gqlOk(
      herald.url,
      CreatePostDocument,
      { input: { title: "Mine", body: "Mine" } },
      author.auth,
    );
    const theirs = await gql(
      herald.url,
      UpdatePostDocument,
      { id: post.id, input: { title: "Hijacked" } },
      follower.auth,
    );
    assert.equal(codeOf(theirs), "NOT_FOUND");
    assert.equal(
      codeOf(await gql(herald.url, UpdatePostDocument, { id: "nope", input: { title: "x" } }, author.auth)),
      "NOT_FOUND",
    );
    const blank = await gql(herald.url, UpdatePostDocument, { id: post.id, input: { title: "   " } }, author.auth);
    assert.equal(codeOf(blank), "BAD_USER_INPUT");
  });
});
