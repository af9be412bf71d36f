import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import {
  CreatePostDocument,
  FollowDocument,
  InboxStartDocument,
  SendNotificationDocument,
} from "../generated/graphql.js";
import { launchChromium, Relay, testOutput, untilLive } from "../helpers/browser.js";
import { gqlOk } from "../helpers/graphql-client.js";
import { startCluster, TEST_SERVICE_KEY, type Cluster } from "../helpers/herald.js";
import { signUp, untilUnread, type TestUser } from "../helpers/users.js";

const PASSWORD = "correct horse battery";
const WAIT_MS = 20_000;

/** The example app (examples/web) as a person uses it: in Chromium, by labels and roles. */
describe("the example app in a browser", () => {
  let cluster: Cluster;
  let browser: Browser;
  let relay: Relay;
  let sent = 0;

  before(async () => {
    cluster = await startCluster("browser", 2);
    relay = new Relay(api(0).port);
    await relay.open();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await relay?.cut();
    await cluster?.stop();
  });

  const api = (i: number) => {
    const proc = cluster.apis[i];
    if (!proc) throw new Error(`no api instance ${i}`);
    return proc;
  };

  const send = async (user: TestUser, title: string) => {
    sent += 1;
    await gqlOk(
      api(1).url,
      SendNotificationDocument,
      { input: { recipientIds: [user.id], title, body: `${title}: details`, idempotencyKey: `browser-${sent}` } },
      { "x-api-key": TEST_SERVICE_KEY },
    );
  };

  async function openSignedIn(baseUrl: string, user: TestUser): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${baseUrl}/app/`);
    await page.getByLabel("Email").fill(user.email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await live(page);
    return page;
  }

  const live = (page: Page) => untilLive(page, WAIT_MS);
  const bell = (page: Page, label: string) =>
    page.getByRole("button", { name: label, exact: true }).waitFor({ timeout: WAIT_MS });
  const items = (page: Page, text: string) =>
    page.getByRole("list", { name: "Inbox" }).getByRole("listitem").filter({ hasText: text });
  const shown = (page: Page, text: string) => items(page, text).first().waitFor({ timeout: WAIT_MS });

  it("keeps two tabs of one user on two api instances current, through a lost connection", async (t) => {
    const ada = await signUp(api(1).url, "Ada");
    const bob = await signUp(api(1).url, "Bob");
    await gqlOk(api(1).url, FollowDocument, { userId: bob.id }, ada.auth);
    await untilUnread(api(1).url, ada, 1);
    // Tab A reaches the first api instance through the relay, tab B the second one directly.
    const tabA = await openSignedIn(relay.url, ada);
    const tabB = await openSignedIn(api(1).url, ada);
    for (const tab of [tabA, tabB]) await bell(tab, "Notifications: 1 unread");

    const started = performance.now();
    await send(ada, "Build 1 passed");
    await Promise.all([tabA, tabB].map((tab) => shown(tab, "Build 1 passed")));
    t.diagnostic(`a notification reached both tabs ${Math.round(performance.now() - started)} ms after it was sent`);
    for (const tab of [tabA, tabB]) await bell(tab, "Notifications: 2 unread");

    await tabA.getByRole("button", { name: "Mark all read" }).click();
    await bell(tabB, "Notifications: no unread");

    // The network drops under tab A; what happens meanwhile reaches it once it is back.
    await relay.cut();
    await tabA
      .getByRole("status")
      .filter({ hasText: /Offline/ })
      .waitFor({ timeout: WAIT_MS });
    for (const n of [1, 2, 3]) await send(ada, `Sent while offline ${n}`);
    await shown(tabB, "Sent while offline 3");
    await relay.restore();
    await live(tabA);
    for (const n of [1, 2, 3]) {
      await shown(tabA, `Sent while offline ${n}`);
      assert.equal(await items(tabA, `Sent while offline ${n}`).count(), 1, `offline ${n} shown once`);
    }
    for (const tab of [tabA, tabB]) await bell(tab, "Notifications: 3 unread");

    // A post by someone Ada follows shows up live.
    await gqlOk(api(0).url, CreatePostDocument, { input: { title: "Ship it", body: "Friday release" } }, bob.auth);
    await Promise.all([tabA, tabB].map((tab) => shown(tab, "Ship it")));
    for (const tab of [tabA, tabB]) await bell(tab, "Notifications: 4 unread");
    assert.equal(await items(tabB, "Build 1 passed").count(), 1, "nothing shown twice");

    const screenshot = await testOutput("inbox.png");
    await tabA.screenshot({ path: screenshot, fullPage: true });
    t.diagnostic(`screenshot of the inbox: ${screenshot}`);
  });

  it("schedules and cancels a reminder, and keeps a preference, through the app's forms", async () => {
    const dora = await signUp(api(0).url, "Dora");
    const tab = await openSignedIn(api(0).url, dora);
    // A page load asks for the inbox once: the bell and the list read what that answer put in the cache.
    const asked: string[] = [];
    tab.on("request", (r) => {
      const body = r.url().endsWith("/graphql") ? r.postData() : null;
      if (body) asked.push((JSON.parse(body) as { operationName?: string }).operationName ?? "?");
    });
    await tab.reload();
    await live(tab);
    await tab.getByRole("button", { name: /^Notifications: / }).waitFor({ timeout: WAIT_MS });
    await tab.getByRole("list", { name: "Inbox" }).waitFor({ timeout: WAIT_MS });
    assert.deepEqual(asked, ["InboxStart"]);

    await tab.getByRole("link", { name: "Reminders" }).click();
    await tab.getByLabel("Title").fill("Water the plants");
    await tab.getByLabel("Body").fill("The ficus too");
    await tab.getByRole("button", { name: "Schedule reminder" }).click();
    const pending = tab.getByRole("list", { name: "Pending reminders" });
    await pending.getByRole("listitem").filter({ hasText: "Water the plants" }).waitFor({ timeout: WAIT_MS });
    await tab.getByRole("button", { name: 'Cancel "Water the plants"' }).click();
    await pending.getByRole("listitem").filter({ hasText: "Water the plants" }).waitFor({ state: "detached" });

    await tab.getByRole("link", { name: "Preferences" }).click();
    const email = tab.getByRole("checkbox", { name: "Email for New follower" });
    assert.equal(await email.isChecked(), true, "on by default");
    // The box changes at once (an optimistic answer); the reload must wait for the server's.
    const stored = tab.waitForResponse((r) => r.request().postData()?.includes('"UpdatePreferences"') === true);
    await email.uncheck();
    assert.equal((await stored).status(), 200);
    // Stored, not just shown: a new page reads it back from the server.
    await tab.reload();
    await live(tab);
    await tab.getByRole("link", { name: "Preferences" }).click();
    await tab.getByRole("checkbox", { name: "Email for New follower" }).waitFor({ timeout: WAIT_MS });
    assert.equal(await tab.getByRole("checkbox", { name: "Email for New follower" }).isChecked(), false);
    await tab.context().close();
  });

  it("runs a GraphiQL subscription with every other host blocked", async () => {
    const url = api(0).url;
    const carol = await signUp(url, "Carol");
    const { notifications } = await gqlOk(url, InboxStartDocument, { first: 1 }, carol.auth);
    const context = await browser.newContext();
    const blocked: string[] = [];
    await context.route("**/*", async (route) => {
      if (new URL(route.request().url()).host === new URL(url).host) return route.continue();
      blocked.push(route.request().url());
      return route.abort();
    });
    await context.addInitScript(
      ({ headers, query }) => {
        localStorage.setItem("graphiql:headers", headers);
        localStorage.setItem("graphiql:query", query);
      },
      {
        headers: JSON.stringify({ Authorization: `Bearer ${carol.token}` }),
        query: `subscription live { inboxEvents(after: "${notifications.streamCursor}") { type notification { title } } }`,
      },
    );
    const page = await context.newPage();
    await page.goto(`${url}/graphql`);
    await page.getByRole("button", { name: /Execute query/ }).click();
    await send(carol, "Seen in GraphiQL");
    await page.getByText("Seen in GraphiQL").first().waitFor({ timeout: WAIT_MS });
    assert.deepEqual(blocked, [], "GraphiQL asked no other host for anything");
    await context.close();
  });
});
