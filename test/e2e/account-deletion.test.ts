import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ParsedMail } from "mailparser";
import { MongoClient, ObjectId } from "mongodb";
import {
  AddCommentDocument,
  CreatePostDocument,
  DeleteAccountDocument,
  FollowDocument,
  InboxEventsDocument,
  LoginDocument,
  MeDocument,
  MyFollowerCountDocument,
  RegisterDocument,
  ScheduleReminderDocument,
  SocialInboxDocument,
  UnreadCountDocument,
  UpdateMyPreferencesDocument,
} from "../generated/graphql.js";
import { connectWs, eventually, gql, gqlOk, queryText } from "../helpers/graphql-client.js";
import { baseEnv, startHerald, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";
import { startSmtpServer, type SmtpServer } from "../helpers/smtp.js";
import { signUp, untilUnread, type TestUser } from "../helpers/users.js";

const codeOf = (r: { errors?: readonly { extensions?: Record<string, unknown> }[] | undefined | null }) =>
  r.errors?.[0]?.extensions?.["code"];
const addressOf = (m: ParsedMail) => (Array.isArray(m.to) ? m.to[0] : m.to)?.value[0]?.address;

/**
 * deleteAccount over one real api+worker process with a real SMTP server: the account's data goes,
 * what it made leaves other inboxes, what it caused elsewhere stays with actor null, its sockets
 * close, and the reminder and the digest that were pending wake to find nothing to do (the digest
 * falls due as the account goes: the run that finds it sends nothing to a deleted account).
 */
describe("deleting an account", () => {
  let smtp: SmtpServer;
  let herald: HeraldProcess;
  let mongo: MongoClient;

  before(async () => {
    smtp = await startSmtpServer();
    herald = await startHerald({
      ...baseEnv(uniqueDatabase("e2e_account_deletion")),
      ROLES: "api,worker",
      SMTP_URL: smtp.url,
      AGENDA_PROCESS_EVERY_MS: "200",
      // Job log lines say when each run ends, which the test waits for.
      LOG_LEVEL: "debug",
    });
    mongo = await MongoClient.connect(herald.env["MONGO_URL"] ?? "");
  });

  after(async () => {
    await mongo?.close();
    assert.equal(await herald.stop(), 0, herald.output());
    await smtp?.stop();
  });

  const inboxOf = async (user: TestUser) =>
    (await gqlOk(herald.url, SocialInboxDocument, { first: 50 }, user.auth)).notifications.edges.map((e) => e.node);
  const finishedRuns = (job: string, id?: string) =>
    herald
      .output()
      .split("\n")
      .filter((l) => l.includes('"job finished"') && l.includes(`"job":"${job}"`) && (!id || l.includes(id)));

  it("removes the account's data, keeps what it caused elsewhere with actor null, and wakes pending jobs to nothing", async () => {
    const db = mongo.db();
    const [dana, fan, idol] = await Promise.all([
      signUp(herald.url, "Dana"),
      signUp(herald.url, "Fan"),
      signUp(herald.url, "Idol"),
    ]);
    const danaId = new ObjectId(dana.id);
    await gqlOk(herald.url, FollowDocument, { userId: dana.id }, fan.auth);
    await gqlOk(herald.url, FollowDocument, { userId: idol.id }, dana.auth);
    // Comments on Dana's posts wait for a daily digest.
    await gqlOk(
      herald.url,
      UpdateMyPreferencesDocument,
      { input: { digest: "DAILY", kinds: [{ kind: "NEW_COMMENT", digest: true }] } },
      dana.auth,
    );
    const { createPost: danasPost } = await gqlOk(
      herald.url,
      CreatePostDocument,
      { input: { title: "Dana's news", body: "…" } },
      dana.auth,
    );
    const { createPost: idolsPost } = await gqlOk(
      herald.url,
      CreatePostDocument,
      { input: { title: "Idol's news", body: "…" } },
      idol.auth,
    );
    await gqlOk(herald.url, AddCommentDocument, { input: { postId: danasPost.id, body: "For the digest" } }, idol.auth);
    await gqlOk(herald.url, AddCommentDocument, { input: { postId: idolsPost.id, body: "Dana was here" } }, dana.auth);

    // Fan: WELCOME, Dana's NEW_POST. Idol: WELCOME, Dana's NEW_FOLLOWER and NEW_COMMENT.
    await Promise.all([untilUnread(herald.url, fan, 2), untilUnread(herald.url, idol, 3)]);
    await eventually(
      async () => ((await db.collection("digest_items").countDocuments({ userId: danaId })) > 0 ? true : undefined),
      { timeoutMs: 10_000, what: "the comment to wait for Dana's digest" },
    );
    const idolFollowers = (await gqlOk(herald.url, MyFollowerCountDocument, {}, idol.auth)).me?.followerCount;
    assert.equal(idolFollowers, 1);

    // A reminder is due two seconds after the account goes.
    const { scheduleReminder } = await gqlOk(
      herald.url,
      ScheduleReminderDocument,
      { input: { title: "Never", body: "…", sendAt: new Date(Date.now() + 2000).toISOString() } },
      dana.auth,
    );
    const socket = connectWs(herald.url, dana.auth);
    socket.client.subscribe(
      { query: queryText(InboxEventsDocument) },
      { next: () => {}, error: () => {}, complete: () => {} },
    );
    await eventually(
      async () => ((await db.collection("logins").countDocuments({ userId: danaId })) > 0 ? true : undefined),
      {
        timeoutMs: 5000,
        what: "Dana's login",
      },
    );
    const mailsBefore = smtp.received.filter((m) => addressOf(m) === dana.email).length;

    assert.equal(
      codeOf(await gql(herald.url, DeleteAccountDocument, { password: "not the password" }, dana.auth)),
      "BAD_USER_INPUT",
    );
    assert.equal(
      (await gqlOk(herald.url, DeleteAccountDocument, { password: "correct horse battery" }, dana.auth)).deleteAccount,
      true,
    );

    // The digest falls due now: the next digest run finds it (or finds it gone).
    await db
      .collection("preferences")
      .updateOne({ _id: danaId }, { $set: { nextDigestAt: new Date(Date.now() - 1000) } });

    // At once: the socket closes, the token and the password are refused.
    assert.equal(await socket.closed, 4403);
    assert.equal(codeOf(await gql(herald.url, MeDocument, {}, dana.auth)), "UNAUTHENTICATED");
    const login = await gql(herald.url, LoginDocument, {
      input: { email: dana.email, password: "correct horse battery" },
    });
    assert.equal(codeOf(login), "UNAUTHENTICATED");

    // Then, in the background: what Dana made leaves the others' inboxes, with the counts corrected.
    await eventually(
      async () => ((await db.collection("users").countDocuments({ _id: danaId })) === 0 ? true : undefined),
      {
        timeoutMs: 20_000,
        what: "the account's removal",
      },
    );
    const fanInbox = await inboxOf(fan);
    assert.deepEqual(
      fanInbox.map((n) => n.kind),
      ["WELCOME"],
      "Dana's NEW_POST left the follower's inbox",
    );
    assert.equal((await gqlOk(herald.url, UnreadCountDocument, {}, fan.auth)).unreadCount, 1);
    const idolInbox = await inboxOf(idol);
    assert.deepEqual(idolInbox.map((n) => n.kind).sort(), ["NEW_FOLLOWER", "WELCOME"], "Dana's NEW_COMMENT left");
    const follower = idolInbox.find((n) => n.kind === "NEW_FOLLOWER");
    assert.equal(follower?.actor, null, "what Dana caused stays, with actor null");
    assert.equal((await gqlOk(herald.url, UnreadCountDocument, {}, idol.auth)).unreadCount, 2);
    assert.equal((await gqlOk(herald.url, MyFollowerCountDocument, {}, idol.auth)).me?.followerCount, 0);

    const left = {
      notifications: await db.collection("notifications").countDocuments({ recipientId: danaId }),
      preferences: await db.collection("preferences").countDocuments({ _id: danaId }),
      reminders: await db.collection("reminders").countDocuments({ userId: danaId }),
      logins: await db.collection("logins").countDocuments({ userId: danaId }),
      follows: await db.collection("follows").countDocuments({ $or: [{ followerId: danaId }, { followeeId: danaId }] }),
      activity: await db.collection("activity").countDocuments({ actorId: danaId }),
      digestItems: await db.collection("digest_items").countDocuments({ userId: danaId }),
      posts: await db.collection("posts").countDocuments({ authorId: danaId }),
      comments: await db.collection("comments").countDocuments({ authorId: danaId }),
    };
    assert.deepEqual(left, {
      notifications: 0,
      preferences: 0,
      reminders: 0,
      logins: 0,
      follows: 0,
      activity: 0,
      digestItems: 0,
      posts: 0,
      comments: 0,
    });

    // The reminder's job wakes and does nothing; so does the next digest run; no email goes to Dana.
    const reminderRun = await eventually(
      () => Promise.resolve(finishedRuns("reminder.fire", scheduleReminder.id).at(-1)),
      { timeoutMs: 20_000, what: "the reminder's run" },
    );
    assert.match(reminderRun, /"outcome":"skipped"/);
    const runsAfter = finishedRuns("email.digest").length;
    await eventually(() => Promise.resolve(finishedRuns("email.digest").length > runsAfter ? true : undefined), {
      timeoutMs: 70_000,
      what: "the next digest run",
    });
    assert.equal(smtp.received.filter((m) => addressOf(m) === dana.email).length, mailsBefore, "no email to Dana");
    await socket.dispose();
  });

  it("refuses a wrong password without deleting anything, and frees the address once done", async () => {
    const eve = await signUp(herald.url, "Eve");
    assert.equal(
      codeOf(await gql(herald.url, DeleteAccountDocument, { password: "wrong" }, eve.auth)),
      "BAD_USER_INPUT",
    );
    assert.equal((await gqlOk(herald.url, MeDocument, {}, eve.auth)).me?.id, eve.id);
    await gqlOk(herald.url, DeleteAccountDocument, { password: "correct horse battery" }, eve.auth);
    const db = mongo.db();
    await eventually(
      async () =>
        (await db.collection("users").countDocuments({ _id: new ObjectId(eve.id) })) === 0 ? true : undefined,
      { timeoutMs: 20_000, what: "the account's removal" },
    );
    const again = await gql(herald.url, LoginDocument, {
      input: { email: eve.email, password: "correct horse battery" },
    });
    assert.equal(codeOf(again), "UNAUTHENTICATED", "the old account cannot sign in");
    const { register } = await gqlOk(herald.url, RegisterDocument, {
      input: { email: eve.email, password: "another good password", displayName: "Eve again" },
    });
    assert.notEqual(register.user.id, eve.id);
  });
});
