import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ObjectId } from "@mikro-orm/mongodb";
import { Redis } from "ioredis";
import { ActivityEntry } from "../../src/modules/activity/activity.entity.js";
import { NotificationRequest } from "../../src/modules/notification/notification-request.entity.js";
import { DELIVER_JOB } from "../../src/modules/notification/notification-request.subscriber.js";
import { Delivery, Notification } from "../../src/modules/notification/notification.entity.js";
import { EMAIL_JOB } from "../../src/modules/email/email.jobs.js";
import { PendingAnnouncement } from "../../src/modules/notification/announcement.entity.js";
import {
  DeliveryStatus,
  NotificationChannel,
  NotificationKind,
} from "../../src/modules/notification/notification.enums.js";
import { deliverRequest, welcome } from "../../src/modules/notification/notification.jobs.js";
import { cleanUp, sweep } from "../../src/modules/recovery/recovery.jobs.js";
import {
  Reminder,
  ReminderDecision,
  ReminderOutcome,
  ReminderStatus,
} from "../../src/modules/reminder/reminder.entity.js";
import { Digest } from "../../src/modules/email/digest.entity.js";
import { EmailAttempt } from "../../src/modules/email/email-attempt.entity.js";
import { fireReminder } from "../../src/modules/reminder/reminder.jobs.js";
import { ReminderService } from "../../src/modules/reminder/reminder.service.js";
import { User } from "../../src/modules/user/user.entity.js";
import { WELCOME_JOB } from "../../src/modules/user/user.subscriber.js";
import type { JobScheduler } from "../../src/infra/agenda.js";
import { testRedisUrl } from "../helpers/env.js";
import { createEmailOutbox } from "../../src/modules/email/email.outbox.js";
import { NotificationService } from "../../src/modules/notification/notification.service.js";
import { InboxLog } from "../../src/modules/notification/inbox-log.js";
import { InboxEventType, type InboxMessage } from "../../src/modules/notification/inbox-events.js";
import type { NotificationView } from "../../src/modules/notification/notification.types.js";
import { ChannelRecorder, startWorkerStack, type WorkerStack } from "../helpers/stack.js";

/** The notification an inbox event published on the user's channel carries, if any. */
function addedOf(message: unknown): NotificationView | undefined {
  const { change } = message as InboxMessage;
  return "notification" in change ? change.notification : undefined;
}

/** Jobs may run more than once (retries, a crash, FerretDB's non-atomic locks); effects happen once. */
describe("jobs are idempotent", () => {
  let stack: WorkerStack;
  let publisher: Redis;

  before(async () => {
    stack = await startWorkerStack("it_jobs");
    publisher = new Redis(testRedisUrl());
  });

  after(async () => {
    publisher.disconnect();
    await stack.stop();
  });

  async function newUser(name: string, createdAt = new Date()): Promise<User> {
    const em = stack.orm.em.fork();
    const user = new User(`${name}.${new ObjectId().toHexString()}@example.com`, name, "scrypt$unused");
    user.createdAt = createdAt;
    await em.persist(user).flush();
    return user;
  }

  /** Schedules `name` twice at once through Agenda and waits until both runs completed. */
  async function runTwiceThroughAgenda(name: string, data: object): Promise<void> {
    let completed = 0;
    const bothDone = new Promise<void>((resolve) => {
      const onComplete = () => {
        completed += 1;
        if (completed === 2) {
          stack.agenda.off(`complete:${name}`, onComplete);
          // Agenda drops a job from its running list just after this event; wait for that, or a
          // drain() right after would wait for a completion that has already happened.
          setImmediate(resolve);
        }
      };
      stack.agenda.on(`complete:${name}`, onComplete);
    });
    await Promise.all([stack.agenda.now(name, data), stack.agenda.now(name, data)]);
    await bothDone;
  }

  it("a welcome job run twice writes one notification and one activity entry, and announces once", async () => {
    const user = await newUser("twice");
    const channel = await ChannelRecorder.open(`INBOX:${user.id}`);
    await runTwiceThroughAgenda(WELCOME_JOB, { userId: user.id });

    const em = stack.orm.em.fork();
    const notifications = await em.find(Notification, { recipientId: user._id });
    assert.equal(notifications.length, 1);
    assert.equal(notifications[0]?.kind, NotificationKind.WELCOME);
    assert.equal(
      await em.count(PendingAnnouncement, { notificationIds: notifications[0]?._id }),
      0,
      "no announcement left pending",
    );
    assert.equal(await em.count(ActivityEntry, { actorId: user._id, verb: "user.registered" }), 1);
    assert.ok((await em.findOneOrFail(User, { _id: user._id })).welcomedAt);

    const announced = await channel.settle(publisher);
    channel.close();
    assert.equal(announced.length, 1);
    assert.equal((announced[0] as InboxMessage).change.type, InboxEventType.ADDED);
    assert.equal(addedOf(announced[0])?.id, notifications[0]?.id);
  });

  it("a deliver job run twice writes one SYSTEM notification per recipient", async () => {
    const [a, b] = [await newUser("a"), await newUser("b")];
    const em = stack.orm.em.fork();
    const request = new NotificationRequest({
      idempotencyKey: `twice-${new ObjectId().toHexString()}`,
      recipientIds: [a._id, b._id],
      title: "Maintenance",
      body: "Tonight at 22:00",
    });
    await em.persist(request).flush();
    const channel = await ChannelRecorder.open(`INBOX:${a.id}`);

    await runTwiceThroughAgenda(DELIVER_JOB, { requestId: request.id });

    const check = stack.orm.em.fork();
    for (const user of [a, b]) {
      const mine = await check.find(Notification, { recipientId: user._id, kind: NotificationKind.SYSTEM });
      assert.equal(mine.length, 1, `one notification for ${user.displayName}`);
      assert.equal(mine[0]?.title, "Maintenance");
    }
    assert.ok((await check.findOneOrFail(NotificationRequest, { _id: request._id })).completedAt);
    assert.equal((await channel.settle(publisher)).length, 1);
    channel.close();
    assert.equal(await deliverRequest(stack, { requestId: request.id }), "skipped", "a completed request is skipped");
  });

  it("a run interrupted between storing and announcing is announced by the recovery sweep", async () => {
    const user = await newUser("interrupted");
    // What an interrupted writer leaves: its pending announcement and the notification stored,
    // never announced.
    const em = stack.orm.em.fork();
    const stored = new Notification({
      recipientId: user._id,
      dedupeKey: `welcome:${user.id}`,
      kind: NotificationKind.WELCOME,
      title: "Welcome to Herald",
      body: "stored before a crash",
    });
    stored.createdAt = new Date(Date.now() - 5 * 60_000);
    const pending = new PendingAnnouncement([stored._id, new ObjectId()]);
    pending.createdAt = stored.createdAt;
    await em.persist([stored, pending]).flush();
    const channel = await ChannelRecorder.open(`INBOX:${user.id}`);

    // A re-run of the job does not write it again and is not the one to announce it...
    assert.equal(await welcome(stack, { userId: user.id }), "done");
    assert.equal(await stack.orm.em.fork().count(Notification, { recipientId: user._id }), 1);
    assert.equal((await channel.settle(publisher)).length, 0);

    // ...the sweep does, once.
    const scheduled: string[] = [];
    const recorder: JobScheduler = {
      now: (name) => {
        scheduled.push(name);
        return Promise.resolve();
      },
      at: () => Promise.resolve(),
    };
    const first = await sweep({ ...stack, scheduler: recorder });
    assert.ok((first["announced"] ?? 0) >= 1, "the sweep announced it");
    const again = await sweep({ ...stack, scheduler: recorder });
    const announced = await channel.settle(publisher);
    channel.close();
    assert.equal(announced.length, 1);
    assert.equal(addedOf(announced[0])?.body, "stored before a crash");
    assert.equal(again["announced"], 0);
  });

  it("the recovery sweep reschedules sign-ups and requests whose job was lost, and nothing recent", async () => {
    const old = new Date(Date.now() - 20 * 60_000);
    const lost = await newUser("lost", old);
    const fresh = await newUser("fresh");
    const em = stack.orm.em.fork();
    const request = new NotificationRequest({
      idempotencyKey: `lost-${new ObjectId().toHexString()}`,
      recipientIds: [lost._id],
      title: "t",
      body: "b",
    });
    request.createdAt = old;
    /** A SYSTEM notification stored long ago whose email is PENDING after `attempts` tries. */
    const pendingEmail = (name: string, attempts: number, nextAttemptAt: Date | null) => {
      const n = new Notification({
        recipientId: lost._id,
        dedupeKey: `${name}:${lost.id}`,
        kind: NotificationKind.SYSTEM,
        title: "t",
        body: "b",
      });
      n.createdAt = old;
      n.deliveries = [
        Object.assign(new Delivery(NotificationChannel.IN_APP, DeliveryStatus.SENT), { attempts: 1 }),
        Object.assign(new Delivery(NotificationChannel.EMAIL, DeliveryStatus.PENDING), { attempts, nextAttemptAt }),
      ];
      return n;
    };
    // Planned when the notification was stored, but its job never ran.
    const unsent = pendingEmail("unsent", 0, null);
    // Tried once, its retry still to come.
    const retrying = pendingEmail("retrying", 1, new Date(Date.now() + 60_000));
    // Tried once, and its retry long overdue: the stop came before the retry was scheduled.
    const overdue = pendingEmail("overdue", 1, new Date(Date.now() - 15 * 60_000));
    await em.persist([request, unsent, retrying, overdue]).flush();

    const scheduled: { name: string; data: object }[] = [];
    const recorder: JobScheduler = {
      now: (name, data) => {
        scheduled.push({ name, data });
        return Promise.resolve();
      },
      at: () => Promise.resolve(),
    };
    // A worker that sends email: only such a worker looks for emails whose job was lost.
    const emailing = new NotificationService(
      stack.pubsub,
      new InboxLog(publisher, { historyEvents: 1000, historyMs: 3600_000 }),
      stack.preferences,
      createEmailOutbox(recorder),
    );
    await sweep({ ...stack, notifications: emailing, scheduler: recorder });
    assert.ok(scheduled.some((s) => s.name === WELCOME_JOB && (s.data as { userId: string }).userId === lost.id));
    assert.ok(
      scheduled.some((s) => s.name === DELIVER_JOB && (s.data as { requestId: string }).requestId === request.id),
    );
    assert.ok(!scheduled.some((s) => (s.data as { userId?: string }).userId === fresh.id), "recent work is left alone");
    const emails = scheduled
      .filter((s) => s.name === EMAIL_JOB)
      .flatMap((s) => (s.data as { notificationIds: string[] }).notificationIds);
    assert.ok(emails.includes(unsent.id), "an email never tried is scheduled");
    assert.ok(emails.includes(overdue.id), "an email whose retry is long overdue is scheduled");
    assert.ok(!emails.includes(retrying.id), "one whose retry is still to come has it in Agenda");
  });
  it("a reminder cancelled while its job starts either fires or is cancelled, never both", async () => {
    const user = await newUser("forgetful");
    const service = new ReminderService();
    // Written without the signal, so no Agenda job of their own fires them meanwhile.
    const reminders = Array.from(
      { length: 20 },
      (_, i) =>
        new Reminder({ userId: user._id, title: `race ${i}`, body: "b", sendAt: new Date(Date.now() + 3600_000) }),
    );
    await stack.orm.em.fork().insertMany(Reminder, reminders);
    const outcomes = await Promise.all(
      reminders.map(async (r) => {
        const [cancelled] = await Promise.all([
          service.cancel(stack.orm.em.fork(), user.id, r._id.toHexString()),
          fireReminder(stack, { reminderId: r._id.toHexString() }),
        ]);
        return cancelled;
      }),
    );
    const em = stack.orm.em.fork();
    for (const [i, r] of reminders.entries()) {
      const notified = await em.count(Notification, { dedupeKey: `reminder:${r._id.toHexString()}` });
      const stored = await em.findOneOrFail(Reminder, { _id: r._id });
      if (outcomes[i]) {
        assert.equal(notified, 0, `reminder ${i}: cancelled, yet notified`);
        assert.equal(stored.status, ReminderStatus.CANCELLED);
      } else {
        assert.equal(notified, 1, `reminder ${i}: not cancelled, yet not notified`);
        assert.equal(stored.status, ReminderStatus.SENT);
      }
    }
  });
  it("the hourly cleanup drops finished bookkeeping and keeps what may still be in play", async () => {
    const now = Date.now();
    const daysAgo = (days: number) => new Date(now - days * 24 * 3600_000);
    const claim = (at: Date) => Object.assign(new EmailAttempt(new ObjectId().toHexString(), 1), { claimedAt: at });
    const decision = (at: Date) =>
      Object.assign(new ReminderOutcome(new ObjectId(), ReminderDecision.FIRE), { decidedAt: at });
    const digest = (at: Date, sent: boolean) =>
      Object.assign(new Digest(new ObjectId(), at.toISOString(), [new ObjectId()]), {
        createdAt: at,
        sentAt: sent ? at : null,
      });
    const old = { claim: claim(daysAgo(2)), decision: decision(daysAgo(2)), digest: digest(daysAgo(8), true) };
    const kept = {
      claim: claim(daysAgo(0.5)),
      decision: decision(daysAgo(0.5)),
      digest: digest(daysAgo(2), true),
      unsent: digest(daysAgo(8), false),
    };
    await stack.orm.em
      .fork()
      .persist([...Object.values(old), ...Object.values(kept)])
      .flush();

    const summary = await cleanUp(stack);
    for (const kind of ["emailAttempts", "reminderDecisions", "digests"]) {
      assert.ok((summary[kind] ?? 0) >= 1, `old ${kind} were deleted`);
    }
    const em = stack.orm.em.fork();
    assert.equal(await em.count(EmailAttempt, { _id: old.claim._id }), 0);
    assert.equal(await em.count(ReminderOutcome, { _id: old.decision._id }), 0);
    assert.equal(await em.count(Digest, { _id: old.digest._id }), 0);
    assert.equal(await em.count(EmailAttempt, { _id: kept.claim._id }), 1, "a claim of today");
    assert.equal(await em.count(ReminderOutcome, { _id: kept.decision._id }), 1, "a decision of today");
    assert.equal(await em.count(Digest, { _id: kept.digest._id }), 1, "a digest of this week");
    assert.equal(await em.count(Digest, { _id: kept.unsent._id }), 1, "a digest not yet sent");
  });
});
