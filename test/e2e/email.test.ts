import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import type { ParsedMail } from "mailparser";
import { Redis } from "ioredis";
import { MongoClient, ObjectId } from "mongodb";
import {
  ActivityDocument,
  DeliveriesDocument,
  EmailedNotificationDocument,
  FollowDocument,
  MarkNotificationUnreadDocument,
  NotificationAddedDocument,
  UnreadCountDocument,
  EmailTestCommentDocument,
  EmailTestPostDocument,
  MyPreferencesDocument,
  SendNotificationDocument,
  UpdateMyPreferencesDocument,
} from "../generated/graphql.js";
import { testRedisUrl } from "../helpers/env.js";
import { connectWs, eventually, gql, gqlOk, subscribedInRedis, Subscription } from "../helpers/graphql-client.js";
import { startCluster, startHerald, TEST_SERVICE_KEY, type Cluster } from "../helpers/herald.js";
import { startSmtpServer, type SmtpServer } from "../helpers/smtp.js";
import { signUp, type TestUser } from "../helpers/users.js";

const MAX_ATTEMPTS = 3;

/** Email through a real SMTP server, with one worker and one api process. */
describe("email delivery", () => {
  let smtp: SmtpServer;
  let cluster: Cluster;
  let api: string;

  before(async () => {
    smtp = await startSmtpServer();
    cluster = await startCluster("e2e_email", 1, {
      SMTP_URL: smtp.url,
      EMAIL_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      EMAIL_RETRY_DELAY_MS: "100",
      // A retry is due after its backoff but runs at the worker's next poll: poll often here.
      AGENDA_PROCESS_EVERY_MS: "200",
      PUBLIC_URL: "http://herald.test",
    });
    api = cluster.apis[0]?.url ?? "";
  });

  after(async () => {
    await cluster?.stop();
    await smtp?.stop();
  });

  beforeEach(() => smtp.setRefuse({ kind: "none" }));

  const register = (name: string) => signUp(api, name);

  const mailTo = (user: TestUser, subject: RegExp) =>
    smtp.waitFor((m) => addressOf(m) === user.email && subject.test(m.subject ?? ""), 10_000);

  async function deliveriesOf(user: TestUser, kind: string) {
    const { notifications } = await gqlOk(api, DeliveriesDocument, { first: 20 }, user.auth);
    return notifications.edges.map((e) => e.node).find((n) => n.kind === kind);
  }

  /** Waits until the notification's email delivery reaches `status`, and returns it. */
  async function emailDelivery(user: TestUser, kind: string, status: string) {
    return eventually(
      async () => {
        const email = (await deliveriesOf(user, kind))?.deliveries.find((d) => d.channel === "EMAIL");
        return email?.status === status ? email : undefined;
      },
      { timeoutMs: 10_000, what: `a ${status} email delivery of ${kind}` },
    );
  }

  it("sends the welcome email, with a link back and an unsubscribe link, and records it SENT", async () => {
    const user = await register("Ada");
    const mail = await mailTo(user, /^Welcome to Herald$/);
    assert.match(mail.text ?? "", /Hi Ada/);
    assert.match(mail.text ?? "", /Open: http:\/\/herald\.test\/notifications\/[0-9a-f]{24}/);
    assert.match(mail.text ?? "", /Stop these emails: http:\/\/herald\.test\/unsubscribe\?token=/);
    assert.match(String(mail.html), /<a href="http:\/\/herald\.test\/unsubscribe\?token=/);
    const welcome = await deliveriesOf(user, "WELCOME");
    assert.equal(mail.messageId, `<${welcome?.id}.welcome@herald>`);
    const delivery = await emailDelivery(user, "WELCOME", "SENT");
    assert.equal(delivery.attempts, 1);
    assert.ok(delivery.deliveredAt);
  });

  it("emails the post's author about a comment, escaping what the commenter wrote", async () => {
    const [author, commenter] = [await register("Author"), await register("Critic")];
    const { createPost } = await gqlOk(
      api,
      EmailTestPostDocument,
      { input: { title: "Tabs & spaces", body: "…" } },
      author.auth,
    );
    await gqlOk(
      api,
      EmailTestCommentDocument,
      { input: { postId: createPost.id, body: "<script>alert(1)</script> & more" } },
      commenter.auth,
    );
    const mail = await mailTo(author, /Critic commented on "Tabs & spaces"/);
    assert.match(mail.text ?? "", /<script>alert\(1\)<\/script> & more/, "plain text carries it as written");
    const html = String(mail.html);
    assert.doesNotMatch(html, /<script>/);
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt; &amp; more/);
    await emailDelivery(author, "NEW_COMMENT", "SENT");
  });

  it("sends a comment's email ahead of bulk mail queued before it", async () => {
    const [author, commenter] = [await register("Busy author"), await register("Quick critic")];
    await Promise.all([author, commenter].map((u) => mailTo(u, /^Welcome/)));
    const { createPost } = await gqlOk(
      api,
      EmailTestPostDocument,
      { input: { title: "Lanes", body: "…" } },
      author.auth,
    );
    const BULK = 400;
    const recipients = await seedUsers(cluster.env["MONGO_URL"] ?? "", BULK);
    const newsletters = () => smtp.received.filter((m) => m.subject === "Newsletter").length;
    await gqlOk(
      api,
      SendNotificationDocument,
      { input: { recipientIds: recipients, title: "Newsletter", body: "…", idempotencyKey: `lanes-${author.id}` } },
      { "x-api-key": TEST_SERVICE_KEY },
    );
    await smtp.waitFor((m) => m.subject === "Newsletter", 10_000);
    await gqlOk(api, EmailTestCommentDocument, { input: { postId: createPost.id, body: "Now!" } }, commenter.auth);
    await mailTo(author, /Quick critic commented on "Lanes"/);
    const ahead = newsletters();
    // In one queue with the newsletter, the comment's email would come after all of it.
    assert.ok(ahead < BULK / 2, `the comment's email came after ${ahead} of ${BULK} newsletters`);
    await eventually(() => Promise.resolve(newsletters() === BULK ? true : undefined), {
      timeoutMs: 60_000,
      what: `every newsletter (${newsletters()} of ${BULK} so far)`,
    });
  });

  it("sends no email for a kind the user turned off, while the in-app notification still arrives", async () => {
    const [author, commenter] = [await register("Quiet"), await register("Talker")];
    const { updatePreferences } = await gqlOk(
      api,
      UpdateMyPreferencesDocument,
      { input: { kinds: [{ kind: "NEW_COMMENT", email: false }] } },
      author.auth,
    );
    assert.equal(updatePreferences.kinds.find((k) => k.kind === "NEW_COMMENT")?.email, false);
    const { createPost } = await gqlOk(
      api,
      EmailTestPostDocument,
      { input: { title: "Hush", body: "…" } },
      author.auth,
    );
    await gqlOk(api, EmailTestCommentDocument, { input: { postId: createPost.id, body: "hello" } }, commenter.auth);
    const comment = await eventually(() => deliveriesOf(author, "NEW_COMMENT"), {
      timeoutMs: 10_000,
      what: "the NEW_COMMENT notification",
    });
    // The decision is made when the notification is stored: no EMAIL delivery, so no email job.
    assert.deepEqual(
      comment.deliveries.map((d) => d.channel),
      ["IN_APP"],
    );
    assert.ok(!smtp.received.some((m) => addressOf(m) === author.email && /commented/.test(m.subject ?? "")));
  });

  it("retries a refused email with backoff: refused twice, sent on the third attempt", async () => {
    const user = await register("Patient");
    await mailTo(user, /^Welcome/);
    smtp.setRefuse({ kind: "first", count: 2 });
    await system(user, "Retry me");
    const mail = await mailTo(user, /^Retry me$/);
    assert.equal(smtp.attempts(mail.messageId ?? ""), 3);
    const delivery = await emailDelivery(user, "SYSTEM", "SENT");
    assert.equal(delivery.attempts, 3);
  });

  it("sends one batch to many recipients, retrying each refused email on its own", async () => {
    const users = [await register("One"), await register("Two"), await register("Three")];
    await Promise.all(users.map((u) => mailTo(u, /^Welcome/)));
    smtp.setRefuse({ kind: "first", count: 1 });
    await gqlOk(
      api,
      SendNotificationDocument,
      {
        input: {
          recipientIds: users.map((u) => u.id),
          title: "All hands",
          body: "at noon",
          idempotencyKey: `all-hands-${users[0]?.id ?? ""}`,
        },
      },
      { "x-api-key": TEST_SERVICE_KEY },
    );
    for (const user of users) {
      const mail = await mailTo(user, /^All hands$/);
      assert.equal(smtp.attempts(mail.messageId ?? ""), 2, "refused once, then sent once");
      const delivery = await emailDelivery(user, "SYSTEM", "SENT");
      assert.equal(delivery.attempts, 2);
      assert.equal(delivery.lastError, null);
      assert.equal(delivery.nextAttemptAt, null, "no attempt is due once it is sent");
    }
    assert.equal(smtp.received.filter((m) => m.subject === "All hands").length, users.length);
  });

  it("gives up after the last attempt: FAILED with the server's error, the in-app notification intact", async () => {
    const user = await register("Unlucky");
    await mailTo(user, /^Welcome/);
    smtp.setRefuse({ kind: "always" });
    await system(user, "Never arrives");
    const delivery = await emailDelivery(user, "SYSTEM", "FAILED");
    assert.equal(delivery.attempts, MAX_ATTEMPTS);
    assert.match(delivery.lastError ?? "", /451/);
    const inApp = (await deliveriesOf(user, "SYSTEM"))?.deliveries.find((d) => d.channel === "IN_APP");
    assert.equal(inApp?.status, "SENT");
    assert.ok(!smtp.received.some((m) => m.subject === "Never arrives"));
  });

  it("turns one kind of email off through the unsubscribe link, without signing in", async () => {
    const user = await register("Leaver");
    const mail = await mailTo(user, /^Welcome/);
    const link = /Stop these emails: (\S+)/.exec(mail.text ?? "")?.[1] ?? "";
    const path = link.replace("http://herald.test", "");
    const oneClick = mail.headerLines.find((h) => h.key === "list-unsubscribe-post")?.line;
    assert.equal(oneClick, "List-Unsubscribe-Post: List-Unsubscribe=One-Click");
    // Opening the link (as a mail scanner would) only asks; the button, or a one-click POST, acts.
    const page = await fetch(`${api}${path}`);
    assert.match(await page.text(), /<form method="post"/);
    assert.equal(
      (await gqlOk(api, MyPreferencesDocument, {}, user.auth)).preferences.kinds.find((k) => k.kind === "WELCOME")
        ?.email,
      true,
    );
    const res = await fetch(`${api}${path}`, { method: "POST" });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /no longer get welcome emails/);
    const { preferences } = await gqlOk(api, MyPreferencesDocument, {}, user.auth);
    assert.equal(preferences.kinds.find((k) => k.kind === "WELCOME")?.email, false);
    assert.equal(preferences.kinds.find((k) => k.kind === "SYSTEM")?.email, true, "other kinds untouched");
    assert.equal((await fetch(`${api}/unsubscribe?token=forged`)).status, 400);
  });

  it("keeps a kind turned off in-app out of the inbox and the live feed, while its email still goes out", async () => {
    const [author, commenter] = [await register("Busy"), await register("Chatty")];
    await mailTo(author, /^Welcome/);
    const { updatePreferences } = await gqlOk(
      api,
      UpdateMyPreferencesDocument,
      { input: { kinds: [{ kind: "NEW_COMMENT", inApp: false }] } },
      author.auth,
    );
    const commentPrefs = updatePreferences.kinds.find((k) => k.kind === "NEW_COMMENT");
    assert.deepEqual([commentPrefs?.inApp, commentPrefs?.email], [false, true]);

    const ws = connectWs(api, { authorization: author.auth["authorization"] });
    const redis = new Redis(testRedisUrl());
    try {
      const added = new Subscription(ws.client, NotificationAddedDocument);
      await subscribedInRedis(redis, `INBOX:${author.id}`);
      const { createPost } = await gqlOk(
        api,
        EmailTestPostDocument,
        { input: { title: "Quiet please", body: "…" } },
        author.auth,
      );
      await gqlOk(api, EmailTestCommentDocument, { input: { postId: createPost.id, body: "psst" } }, commenter.auth);
      const mail = await mailTo(author, /Chatty commented on "Quiet please"/);
      // Anything pushed for the comment was published before its email was queued; a SYSTEM
      // notification sent now is pushed after it. The first event must be that one.
      await system(author, "After the comment");
      const first = await added.next(10_000);
      assert.equal(first.data?.notificationAdded.title, "After the comment");

      const { notifications } = await gqlOk(api, DeliveriesDocument, { first: 20 }, author.auth);
      assert.deepEqual(notifications.edges.map((e) => e.node.kind).sort(), ["SYSTEM", "WELCOME"]);
      assert.equal((await gqlOk(api, UnreadCountDocument, {}, author.auth)).unreadCount, 2);

      // The email's link still opens it: stored, read, not delivered in-app.
      const id = /notifications\/([0-9a-f]{24})/.exec(mail.text ?? "")?.[1] ?? "";
      const opened = await gqlOk(api, EmailedNotificationDocument, { id }, author.auth);
      assert.equal(opened.notification?.kind, "NEW_COMMENT");
      assert.ok(opened.notification?.readAt);
      const inApp = opened.notification?.deliveries.find((d) => d.channel === "IN_APP");
      assert.deepEqual([inApp?.status, inApp?.attempts], ["SKIPPED", 0]);
      // And it cannot be made to count as unread.
      const unread = await gqlOk(api, MarkNotificationUnreadDocument, { id }, author.auth);
      assert.ok(unread.markNotificationUnread.readAt);
      assert.equal((await gqlOk(api, UnreadCountDocument, {}, author.auth)).unreadCount, 2);
    } finally {
      redis.disconnect();
      await ws.dispose();
    }
  });

  it("stores nothing for a kind turned off both in-app and by email", async () => {
    const [followee, follower] = [await register("Private"), await register("Fan")];
    await gqlOk(
      api,
      UpdateMyPreferencesDocument,
      { input: { kinds: [{ kind: "NEW_FOLLOWER", inApp: false, email: false }] } },
      followee.auth,
    );
    await gqlOk(api, FollowDocument, { userId: followee.id }, follower.auth);
    // The follow job records the follower's activity after it has written (or not) the notification.
    await eventually(
      async () => {
        const { activity } = await gqlOk(api, ActivityDocument, { first: 5 }, follower.auth);
        return activity.some((a) => a.verb === "user.followed") ? true : undefined;
      },
      { timeoutMs: 10_000, what: "the follow job to run" },
    );
    const { notifications } = await gqlOk(api, DeliveriesDocument, { first: 20 }, followee.auth);
    assert.deepEqual(
      notifications.edges.map((e) => e.node.kind),
      ["WELCOME"],
    );
    assert.ok(!smtp.received.some((m) => addressOf(m) === followee.email && /follow/i.test(m.subject ?? "")));
  });

  it("refuses to turn SYSTEM notifications off in-app, and changes nothing else of that input", async () => {
    const user = await register("Stubborn");
    const refused = await gql(
      api,
      UpdateMyPreferencesDocument,
      {
        input: {
          kinds: [
            { kind: "NEW_POST", inApp: false },
            { kind: "SYSTEM", inApp: false },
          ],
        },
      },
      user.auth,
    );
    assert.equal(refused.errors?.[0]?.extensions?.["code"], "BAD_USER_INPUT");
    assert.equal(refused.errors?.[0]?.extensions?.["field"], "kinds.1.inApp");
    assert.match(refused.errors?.[0]?.message ?? "", /SYSTEM notifications cannot be turned off in-app/);
    const { preferences } = await gqlOk(api, MyPreferencesDocument, {}, user.auth);
    assert.equal(preferences.kinds.find((k) => k.kind === "NEW_POST")?.inApp, true);
    assert.equal(preferences.kinds.find((k) => k.kind === "SYSTEM")?.inApp, true);
  });

  async function system(user: TestUser, title: string): Promise<void> {
    await gqlOk(
      api,
      SendNotificationDocument,
      { input: { recipientIds: [user.id], title, body: "from the ops team", idempotencyKey: `${title}-${user.id}` } },
      { "x-api-key": TEST_SERVICE_KEY },
    );
  }
});

function addressOf(mail: ParsedMail): string | undefined {
  const to = Array.isArray(mail.to) ? mail.to[0] : mail.to;
  return to?.value[0]?.address;
}

/**
 * A worker that dies while sending: the SMTP server has the email but the worker never heard back,
 * so the delivery is not recorded. Another worker runs the job again once its lock expires.
 */
describe("email across a worker crash", () => {
  let smtp: SmtpServer;
  let cluster: Cluster;

  before(async () => {
    smtp = await startSmtpServer();
    cluster = await startCluster("e2e_email_crash", 1, {
      SMTP_URL: smtp.url,
      AGENDA_PROCESS_EVERY_MS: "200",
      // A killed worker's job is free to run again this soon, instead of after the default minute.
      AGENDA_LOCK_LIFETIME_MS: "2000",
    });
  });

  after(async () => {
    await cluster?.stop();
    await smtp?.stop();
  });

  it("arrives after a restart, every copy with the same Message-ID, and ends SENT", async () => {
    const api = cluster.apis[0]?.url ?? "";
    const user = await signUp(api, "Crash");
    const auth = user.auth;
    await smtp.waitFor((m) => m.subject === "Welcome to Herald", 10_000);

    smtp.setRefuse({ kind: "hold" });
    await gqlOk(
      api,
      SendNotificationDocument,
      {
        input: {
          recipientIds: [user.id],
          title: "Mid-send",
          body: "b",
          idempotencyKey: `crash-${user.id}`,
        },
      },
      { "x-api-key": TEST_SERVICE_KEY },
    );
    const first = await smtp.waitFor((m) => m.subject === "Mid-send", 10_000);
    cluster.worker.child.kill("SIGKILL");
    smtp.setRefuse({ kind: "none" });
    const worker = await startHerald({ ...cluster.env, ROLES: "worker" });
    const apis = cluster.apis;
    cluster = {
      ...cluster,
      worker,
      stop: async () => {
        const codes = await Promise.all([...apis.map((p) => p.stop()), worker.stop()]);
        assert.deepEqual(codes, [...apis.map(() => 0), 0]);
      },
    };

    const delivery = await eventually(
      async () => {
        const { notifications } = await gqlOk(api, DeliveriesDocument, { first: 10 }, auth);
        const email = notifications.edges
          .find((e) => e.node.title === "Mid-send")
          ?.node.deliveries.find((d) => d.channel === "EMAIL");
        return email?.status === "SENT" ? email : undefined;
      },
      { timeoutMs: 20_000, what: "the email delivery to end SENT after the restart" },
    );
    const copies = smtp.received.filter((m) => m.subject === "Mid-send");
    assert.equal(copies.length, 2, "the copy the dead worker sent and the one after the restart");
    assert.ok(
      copies.every((m) => m.messageId === first.messageId),
      "every copy carries the same Message-ID",
    );
    assert.equal(delivery.attempts, 2, "the attempt the killed worker made counts");
  });
});

/** Accounts written straight into the database: signing up hundreds would mostly time scrypt. */
async function seedUsers(mongoUrl: string, count: number): Promise<string[]> {
  const client = new MongoClient(mongoUrl);
  try {
    const now = new Date();
    const users = Array.from({ length: count }, (_, i) => ({
      _id: new ObjectId(),
      email: `reader${i}.${new ObjectId().toHexString()}@example.com`,
      displayName: `Reader ${i}`,
      passwordHash: "scrypt$seeded",
      createdAt: now,
      // Past their welcome: neither the welcome job nor the recovery sweep is about them.
      welcomedAt: now,
    }));
    await client.db().collection("users").insertMany(users);
    return users.map((u) => u._id.toHexString());
  } finally {
    await client.close();
  }
}
