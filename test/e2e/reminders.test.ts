import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  CancelReminderDocument,
  MyRemindersDocument,
  NotificationAddedDocument,
  ReminderInboxDocument,
  ScheduleReminderDocument,
} from "../generated/graphql.js";
import { connectWs, eventually, gql, gqlOk, Subscription } from "../helpers/graphql-client.js";
import { startCluster, startHerald, type Cluster, type HeraldProcess } from "../helpers/herald.js";
import { signUp } from "../helpers/users.js";

/** Reminders fire at their time, not before; cancelled ones never; all of it survives restarts. */
describe("scheduled reminders", () => {
  let cluster: Cluster;
  let api: string;

  before(async () => {
    // Due jobs run at the worker's next poll: poll often so firing times are close to sendAt.
    cluster = await startCluster("e2e_reminders", 1, { AGENDA_PROCESS_EVERY_MS: "200" });
    api = cluster.apis[0]?.url ?? "";
  });

  after(async () => {
    await cluster?.stop();
  });

  const register = (apiUrl = api) => signUp(apiUrl, "R");

  const inFuture = (ms: number) => new Date(Date.now() + ms).toISOString();

  const schedule = async (auth: Record<string, string>, title: string, sendAt: string, apiUrl = api) =>
    (await gqlOk(apiUrl, ScheduleReminderDocument, { input: { title, body: `${title} body`, sendAt } }, auth))
      .scheduleReminder;

  const reminderTitles = async (auth: Record<string, string>, apiUrl = api) =>
    (await gqlOk(apiUrl, ReminderInboxDocument, {}, auth)).notifications.edges.map((e) => e.node.title);

  it("fires at its time, live and in the inbox, and leaves the pending list", async () => {
    const user = await register();
    const ws = connectWs(api, { authorization: `Bearer ${user.token}` });
    const live = new Subscription(ws.client, NotificationAddedDocument);
    try {
      const reminder = await schedule(user.auth, "Stand-up", inFuture(1500));
      assert.deepEqual(
        (await gqlOk(api, MyRemindersDocument, {}, user.auth)).reminders.map((r) => r.id),
        [reminder.id],
      );
      let event;
      do event = await live.next(10_000);
      while (event.data?.notificationAdded.kind !== "REMINDER");
      const fired = event.data.notificationAdded;
      assert.equal(fired.title, "Stand-up");
      assert.ok(new Date(fired.createdAt).getTime() >= new Date(reminder.sendAt).getTime(), "not before its time");
      assert.deepEqual(await reminderTitles(user.auth), ["Stand-up"]);
      assert.deepEqual((await gqlOk(api, MyRemindersDocument, {}, user.auth)).reminders, []);
    } finally {
      await ws.dispose();
    }
  });

  it("never fires a cancelled reminder", async () => {
    const user = await register();
    const cancelled = await schedule(user.auth, "Cancelled", inFuture(1000));
    await schedule(user.auth, "Kept", inFuture(1000));
    // Due after both: once it has fired, the cancelled one's job has had its turn too.
    await schedule(user.auth, "Later", inFuture(1800));
    assert.equal((await gqlOk(api, CancelReminderDocument, { id: cancelled.id }, user.auth)).cancelReminder, true);
    assert.equal((await gqlOk(api, CancelReminderDocument, { id: cancelled.id }, user.auth)).cancelReminder, false);
    await eventually(async () => ((await reminderTitles(user.auth)).includes("Later") ? true : undefined), {
      timeoutMs: 15_000,
      what: "the later reminder",
    });
    assert.deepEqual((await reminderTitles(user.auth)).sort(), ["Kept", "Later"]);
  });

  it("refuses a time in the past, and another user's reminder is NOT_FOUND", async () => {
    const [owner, other] = [await register(), await register()];
    const past = await gql(
      api,
      ScheduleReminderDocument,
      {
        input: { title: "Too late", body: "b", sendAt: new Date(Date.now() - 60_000).toISOString() },
      },
      owner.auth,
    );
    assert.equal(past.errors?.[0]?.extensions?.["code"], "BAD_USER_INPUT");
    assert.equal(past.errors?.[0]?.extensions?.["field"], "sendAt");
    const mine = await schedule(owner.auth, "Mine", inFuture(60_000));
    const stolen = await gql(api, CancelReminderDocument, { id: mine.id }, other.auth);
    assert.equal(stolen.errors?.[0]?.extensions?.["code"], "NOT_FOUND");
    assert.equal((await gqlOk(api, MyRemindersDocument, {}, owner.auth)).reminders.length, 1, "still pending");
  });

  it("survives a restart of every process", async () => {
    const user = await register();
    await schedule(user.auth, "After restart", inFuture(2500));
    await cluster.stop();
    // The same database and configuration, new processes.
    const worker = await startHerald({ ...cluster.env, ROLES: "worker" });
    const restartedApi: HeraldProcess = await startHerald({ ...cluster.env, ROLES: "api" });
    cluster = {
      worker,
      apis: [restartedApi],
      env: cluster.env,
      stop: async () => {
        const codes = await Promise.all([restartedApi.stop(), worker.stop()]);
        assert.deepEqual(codes, [0, 0]);
      },
    };
    await eventually(
      async () => ((await reminderTitles(user.auth, restartedApi.url)).includes("After restart") ? true : undefined),
      { timeoutMs: 15_000, what: "the reminder to fire after the restart" },
    );
  });
});
