import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ObjectId } from "@mikro-orm/mongodb";
import type { JobScheduler } from "../../src/infra/agenda.js";
import { Notification } from "../../src/modules/notification/notification.entity.js";
import { sweep } from "../../src/modules/recovery/recovery.jobs.js";
import { AccountChange, AccountChangeKind } from "../../src/modules/security/account-change.entity.js";
import { maskEmail, notifyAccountChange } from "../../src/modules/security/security.jobs.js";
import { ACCOUNT_CHANGE_JOB } from "../../src/modules/security/security.subscriber.js";
import { User } from "../../src/modules/user/user.entity.js";
import { startWorkerStack, type WorkerStack } from "../helpers/stack.js";

describe("security notices, job by job", () => {
  let stack: WorkerStack;

  before(async () => {
    stack = await startWorkerStack("it_security");
  });

  after(async () => {
    await stack.stop();
  });

  async function userWithEmailChangedAt(at: Date | null): Promise<User> {
    const user = new User(`${new ObjectId().toHexString()}@example.com`, "Owner", "scrypt$unused");
    user.emailChangedAt = at;
    await stack.orm.em.fork().persist(user).flush();
    return user;
  }

  async function change(user: User, changedAt: Date, createdAt = new Date()): Promise<AccountChange> {
    const record = new AccountChange({
      userId: user._id,
      kind: AccountChangeKind.EMAIL,
      changedAt,
      oldEmail: "before@example.com",
      newEmail: user.email,
    });
    record.createdAt = createdAt;
    await stack.orm.em.fork().persist(record).flush();
    return record;
  }

  const noticesOf = (user: User) => stack.orm.em.fork().count(Notification, { recipientId: user._id });

  it("tells of a change once, however often its job runs, by email to the old address", async () => {
    const at = new Date();
    const user = await userWithEmailChangedAt(at);
    const record = await change(user, at);
    assert.equal(await notifyAccountChange(stack, { changeId: record.id }), "done");
    assert.equal(await notifyAccountChange(stack, { changeId: record.id }), "skipped");
    const notice = await stack.orm.em.fork().findOneOrFail(Notification, { recipientId: user._id });
    assert.equal(notice.emailTo, "before@example.com");
    assert.match(notice.body, /\*\*\*@example\.com/);
    assert.equal(await noticesOf(user), 1);
  });

  it("tells nothing of a change whose write failed after its record was written", async () => {
    // The flush wrote the record, then the user's update failed: the user kept an earlier time.
    const user = await userWithEmailChangedAt(new Date(Date.now() - 60_000));
    const record = await change(user, new Date());
    assert.equal(await notifyAccountChange(stack, { changeId: record.id }), "skipped");
    assert.equal(await noticesOf(user), 0);
  });

  it("is found by the recovery sweep when its job was lost", async () => {
    const long = new Date(Date.now() - 10 * 60_000);
    const user = await userWithEmailChangedAt(long);
    const record = await change(user, long, long);
    const scheduled: { name: string; data: object }[] = [];
    const recorder: JobScheduler = {
      now: (name, data) => {
        scheduled.push({ name, data });
        return Promise.resolve();
      },
      at: () => Promise.resolve(),
    };
    await sweep({ ...stack, scheduler: recorder });
    assert.ok(
      scheduled.some((s) => s.name === ACCOUNT_CHANGE_JOB && (s.data as { changeId: string }).changeId === record.id),
    );
  });

  it("hides all of an address but its first letter and its domain", () => {
    assert.equal(maskEmail("jane.doe@example.com"), "j***@example.com");
    assert.equal(maskEmail("x@y.org"), "x***@y.org");
    assert.equal(maskEmail("no-at-sign"), "***");
  });
});
