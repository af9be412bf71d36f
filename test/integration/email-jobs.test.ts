import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ObjectId } from "@mikro-orm/mongodb";
import PQueue from "p-queue";
import type { JobRun } from "../../src/infra/agenda.js";
import { sendEmails, type EmailJobData } from "../../src/modules/email/email.jobs.js";
import { Notification } from "../../src/modules/notification/notification.entity.js";
import { NotificationChannel, NotificationKind } from "../../src/modules/notification/notification.enums.js";
import { User } from "../../src/modules/user/user.entity.js";
import { startSmtpServer, type SmtpServer } from "../helpers/smtp.js";
import { startWorkerStack, type WorkerStack } from "../helpers/stack.js";

/** The email job run directly, against a real SMTP server, as a worker would run it. */
describe("email batches", () => {
  let smtp: SmtpServer;
  let stack: WorkerStack;

  before(async () => {
    smtp = await startSmtpServer();
    stack = await startWorkerStack("it_email_jobs", { smtpUrl: smtp.url });
  });

  after(async () => {
    await stack?.stop();
    await smtp?.stop();
  });

  /** SYSTEM notifications stored with a PENDING email, as deliver leaves them; their job is not scheduled. */
  async function pendingEmails(count: number): Promise<{ user: User; ids: string[] }> {
    const em = stack.orm.em.fork();
    const user = new User(`batch.${new ObjectId().toHexString()}@example.com`, "Batch", "scrypt$unused");
    user.welcomedAt = new Date();
    await em.persist(user).flush();
    const summary = await stack.notifications.deliver(
      stack.orm.em.fork(),
      Array.from({ length: count }, (_, i) => ({
        recipientId: user._id,
        dedupeKey: `batch-test:${new ObjectId().toHexString()}`,
        kind: NotificationKind.SYSTEM,
        title: `Batch ${i}`,
        body: "b",
      })),
    );
    assert.equal(summary.inserted, count);
    const stored = await stack.orm.em
      .fork()
      .find(Notification, { recipientId: user._id, kind: NotificationKind.SYSTEM });
    return { user, ids: stored.map((n) => n.id) };
  }

  const emailOf = async (id: string) =>
    (await stack.orm.em.fork().findOneOrFail(Notification, { _id: new ObjectId(id) })).deliveries.find(
      (d) => d.channel === NotificationChannel.EMAIL,
    );

  const runOf = (stopping: () => boolean): JobRun => ({
    touch: () => Promise.resolve(),
    get stopping() {
      return stopping();
    },
  });

  it("takes no email once the worker is stopping, uses no attempt, and fails so that the job is retried", async () => {
    // The worker's own jobs would send them first: stop it from taking any.
    await stack.agenda.stop();
    const { ids } = await pendingEmails(3);
    const before = smtp.received.length;
    await assert.rejects(
      sendEmails(
        stack.email,
        { notificationIds: ids },
        runOf(() => true),
        smtpSlots(5),
      ),
      /stopping; 3 emails are left for a retry/,
    );
    assert.equal(smtp.received.length, before, "nothing sent");
    for (const id of ids) assert.equal((await emailOf(id))?.attempts, 0, "no attempt used");

    // The retry, once a worker runs again, sends them all.
    assert.equal(
      await sendEmails(
        stack.email,
        { notificationIds: ids },
        runOf(() => false),
        smtpSlots(5),
      ),
      "done",
    );
    for (const id of ids) assert.equal((await emailOf(id))?.status, "SENT");
  });

  it("still runs a job queued by an earlier version, which names one notification", async () => {
    const { ids } = await pendingEmails(1);
    const legacy = { notificationId: ids[0] } as unknown as EmailJobData;
    assert.equal(
      await sendEmails(
        stack.email,
        legacy,
        runOf(() => false),
        smtpSlots(5),
      ),
      "done",
    );
    assert.equal((await emailOf(ids[0] ?? ""))?.status, "SENT");
  });

  it("emails no account deleted since its notification was stored, and says why", async () => {
    const { user, ids } = await pendingEmails(1);
    await stack.orm.em.fork().nativeUpdate(User, { _id: user._id }, { deletedAt: new Date() });
    const before = smtp.received.length;
    assert.equal(
      await sendEmails(
        stack.email,
        { notificationIds: ids },
        runOf(() => false),
        smtpSlots(5),
      ),
      "skipped",
    );
    assert.equal(smtp.received.length, before, "nothing sent");
    const email = await emailOf(ids[0] ?? "");
    assert.equal(email?.status, "SKIPPED");
    assert.equal(email?.lastError, "recipient not found");
  });
});

/** The mailer's connections, as the worker shares them between its email jobs. */
function smtpSlots(connections: number): (send: () => Promise<void>) => Promise<void> {
  const queue = new PQueue({ concurrency: connections });
  return (send) => queue.add(send);
}
