import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ObjectId } from "@mikro-orm/mongodb";
import { Digest, DigestItem } from "../../src/modules/email/digest.entity.js";
import { sendDigests } from "../../src/modules/email/digest.jobs.js";
import { PendingAnnouncement } from "../../src/modules/notification/announcement.entity.js";
import { Notification } from "../../src/modules/notification/notification.entity.js";
import { NotificationChannel, NotificationKind } from "../../src/modules/notification/notification.enums.js";
import { DigestFrequency } from "../../src/modules/preferences/preferences.enums.js";
import { User } from "../../src/modules/user/user.entity.js";
import { startSmtpServer, type SmtpServer } from "../helpers/smtp.js";
import { startWorkerStack, type WorkerStack } from "../helpers/stack.js";

const HOUR = 3600_000;

/** The digest job runs against a clock the test moves: a day passes in a call. */
describe("email digests", () => {
  let smtp: SmtpServer;
  let stack: WorkerStack;

  before(async () => {
    smtp = await startSmtpServer();
    stack = await startWorkerStack("it_digest", { smtpUrl: smtp.url });
  });

  after(async () => {
    await stack?.stop();
    await smtp?.stop();
  });

  async function userWithDailyDigestOfComments(): Promise<User> {
    const em = stack.orm.em.fork();
    const user = new User(`digest.${new ObjectId().toHexString()}@example.com`, "Digest reader", "scrypt$unused");
    await em.persist(user).flush();
    await stack.preferences.update(em, user.id, {
      digest: DigestFrequency.DAILY,
      kinds: [{ kind: NotificationKind.NEW_COMMENT, digest: true }],
    });
    return user;
  }

  const comment = (user: User, title: string) =>
    stack.notifications.deliver(stack.orm.em.fork(), [
      {
        recipientId: user._id,
        dedupeKey: `digest-test:${new ObjectId().toHexString()}`,
        kind: NotificationKind.NEW_COMMENT,
        title,
        body: `${title} body`,
      },
    ]);

  const mailsTo = (user: User) =>
    smtp.received.filter((m) => (Array.isArray(m.to) ? m.to[0] : m.to)?.value[0]?.address === user.email);

  it("gathers three notifications into one email a day, never twice, and sends nothing when nothing is new", async () => {
    const user = await userWithDailyDigestOfComments();
    for (const title of ["First <comment>", "Second comment", "Third comment"]) await comment(user, title);

    const stored = await stack.orm.em
      .fork()
      .find(Notification, { recipientId: user._id, kind: NotificationKind.NEW_COMMENT });
    assert.equal(stored.length, 3);
    assert.ok(
      stored.every((n) => !n.deliveries.some((d) => d.channel === NotificationChannel.EMAIL)),
      "no email one by one for a kind in the digest",
    );
    assert.equal(await stack.orm.em.fork().count(DigestItem, { userId: user._id }), 3);

    const start = Date.now();
    assert.equal((await sendDigests(stack.email, new Date(start + 23 * HOUR))).sent, 0, "not due before a day");
    await sendDigests(stack.email, new Date(start + 25 * HOUR));
    const [digest] = await smtp.waitForMessages(1);
    const mine = mailsTo(user);
    assert.equal(mine.length, 1);
    assert.equal(mine[0]?.subject, "Your Herald digest: 3 new");
    for (const title of ["First <comment>", "Second comment", "Third comment"])
      assert.ok(mine[0]?.text?.includes(title));
    assert.match(String(mine[0]?.html), /First &lt;comment&gt;/);
    assert.match(digest?.messageId ?? "", /^<[0-9a-f]{24}\.digest@herald>$/);

    // The same moment again: the digest was sent, nothing new is built.
    await sendDigests(stack.email, new Date(start + 25 * HOUR));
    // The next day, with nothing new: no email.
    await sendDigests(stack.email, new Date(start + 49 * HOUR));
    assert.equal(mailsTo(user).length, 1);

    // Something new: the next digest holds only it.
    await comment(user, "Fourth comment");
    await sendDigests(stack.email, new Date(start + 73 * HOUR));
    const second = await smtp.waitFor((m) => m.subject === "Your Herald digest: 1 new");
    assert.ok(second.text?.includes("Fourth comment"));
    assert.ok(!second.text?.includes("First"), "a notification is in one digest only");
    assert.equal(mailsTo(user).length, 2);
  });

  it("sends no digest to an account deleted before it went out, in the run that sends another's", async () => {
    const [leaver, stayer] = [await userWithDailyDigestOfComments(), await userWithDailyDigestOfComments()];
    await comment(leaver, "Never read");
    await comment(stayer, "Read in the digest");
    // Deleted, its data not yet removed: the digest and its items are still there.
    await stack.orm.em.fork().nativeUpdate(User, { _id: leaver._id }, { deletedAt: new Date() });
    await sendDigests(stack.email, new Date(Date.now() + 25 * HOUR));
    await smtp.waitFor((m) => m.text?.includes("Read in the digest") ?? false);
    assert.equal(mailsTo(stayer).length, 1);
    assert.equal(mailsTo(leaver).length, 0);
  });

  it("stops the digest, and gathers nothing more, once the user unsubscribed from it", async () => {
    const user = await userWithDailyDigestOfComments();
    await comment(user, "Before unsubscribing");
    await stack.preferences.unsubscribe(stack.orm.em.fork(), user.id, NotificationKind.DIGEST);
    await comment(user, "After unsubscribing");
    await sendDigests(stack.email, new Date(Date.now() + 25 * HOUR));
    assert.equal(mailsTo(user).length, 0);
    const after = await stack.orm.em
      .fork()
      .findOne(Notification, { recipientId: user._id, title: "After unsubscribing" });
    assert.ok(
      after && !after.deliveries.some((d) => d.channel === NotificationChannel.EMAIL),
      "not emailed one by one either",
    );
  });

  it("retries a refused digest after a backoff, and gives up after the last attempt, dropping what it held", async () => {
    const user = await userWithDailyDigestOfComments();
    await comment(user, "Refused comment");
    const due = Date.now() + 25 * HOUR;
    const digestOf = () => stack.orm.em.fork().findOneOrFail(Digest, { userId: user._id });
    smtp.setRefuse({ kind: "always" });
    try {
      await sendDigests(stack.email, new Date(due));
      const first = await digestOf();
      const messageId = `<${first._id.toHexString()}.digest@herald>`;
      assert.equal(smtp.attempts(messageId), 1);
      assert.equal(first.attempts, 1);
      assert.match(first.lastError ?? "", /451/);
      assert.ok(first.nextAttemptAt && first.nextAttemptAt.getTime() > due, "a retry is due later");

      await sendDigests(stack.email, new Date(due));
      assert.equal(smtp.attempts(messageId), 1, "not tried again before its backoff");
      // At least a minute after the first refusal, then two: the job's rhythm times 2^(attempt-1).
      await sendDigests(stack.email, new Date(due + 60_000));
      await sendDigests(stack.email, new Date(due + 150_000));
      assert.equal(smtp.attempts(messageId), 2, "the third attempt waits two minutes after the second");
      await sendDigests(stack.email, new Date(due + 180_000));
      assert.equal(smtp.attempts(messageId), 3, "EMAIL_MAX_ATTEMPTS (3 here) in all");
      const last = await digestOf();
      assert.equal(last.attempts, 3);
      assert.ok(last.failedAt, "given up");
      assert.equal(await stack.orm.em.fork().count(DigestItem, { userId: user._id }), 0);

      await sendDigests(stack.email, new Date(due + 600_000));
      assert.equal(smtp.attempts(messageId), 3, "never tried again");
      const inbox = await stack.orm.em.fork().count(Notification, { recipientId: user._id, title: "Refused comment" });
      assert.equal(inbox, 1, "the in-app notification stays");
    } finally {
      smtp.setRefuse({ kind: "none" });
    }
  });

  it("keeps, through the recovery sweep, the digest items of a writer that stopped before keeping them, once", async () => {
    const user = await userWithDailyDigestOfComments();
    const stoppedAt = new Date(Date.now() - 5 * 60_000);
    const stored = new Notification({
      recipientId: user._id,
      dedupeKey: `digest-crash:${new ObjectId().toHexString()}`,
      kind: NotificationKind.NEW_COMMENT,
      title: "Kept by the sweep",
      body: "b",
    });
    stored.createdAt = stoppedAt;
    // What the writer left: its notification stored and announced, its digest item not kept.
    const leftBehind = () => {
      const pending = new PendingAnnouncement([stored._id], [stored._id]);
      pending.createdAt = stoppedAt;
      pending.announcedAt = stoppedAt;
      return pending;
    };
    await stack.orm.em.fork().persist([stored, leftBehind()]).flush();
    const items = () => stack.orm.em.fork().count(DigestItem, { userId: user._id });

    await stack.notifications.announceAbandoned(stack.orm.em.fork(), new Date(), 500);
    await stack.notifications.announceAbandoned(stack.orm.em.fork(), new Date(), 500);
    assert.equal(await items(), 1);

    await sendDigests(stack.email, new Date(Date.now() + 25 * HOUR));
    const digest = await smtp.waitFor((m) => mailsTo(user).includes(m));
    assert.ok(digest.text?.includes("Kept by the sweep"));
    assert.equal(await items(), 0, "the digest took it");

    // A writer that kept it and stopped before saying so: that digest has it already.
    await stack.orm.em.fork().persist(leftBehind()).flush();
    await stack.notifications.announceAbandoned(stack.orm.em.fork(), new Date(), 500);
    assert.equal(await items(), 0, "never in a second digest");
  });

  it("still emails kinds not chosen for the digest one by one", async () => {
    const user = await userWithDailyDigestOfComments();
    await stack.notifications.deliver(stack.orm.em.fork(), [
      {
        recipientId: user._id,
        dedupeKey: `digest-test:${new ObjectId().toHexString()}`,
        kind: NotificationKind.NEW_FOLLOWER,
        title: "Someone followed you",
        body: "b",
      },
    ]);
    const [follower] = await stack.orm.em
      .fork()
      .find(Notification, { recipientId: user._id, kind: NotificationKind.NEW_FOLLOWER });
    assert.ok(
      follower?.deliveries.some((d) => d.channel === NotificationChannel.EMAIL),
      "an email delivery is planned",
    );
  });
});
