// The browser scenario of `npm run bench`: what the example app (examples/web) costs a browser.
// A page load, cold (empty HTTP cache) and warm (a reload), next to GraphiQL's in the same run,
// both served by the same api process; then how long a notification takes from sendNotification
// to its list item in the app's page, next to a plain graphql-ws client in Node subscribed at the
// same time (the difference is what Apollo Client, React and the DOM add).
import { createServer } from "node:http";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { renderPlayground } from "../../src/graphql/playground.js";
import {
  NotificationAddedDocument,
  RegisterDocument,
  SendNotificationDocument,
  type NotificationAddedSubscription,
} from "../generated/graphql.js";
import { launchChromium, untilLive } from "../helpers/browser.js";
import { connectWs, gqlOk, Subscription } from "../helpers/graphql-client.js";
import { TEST_SERVICE_KEY, type HeraldProcess } from "../helpers/herald.js";
import { summarize, type Summary } from "./stats.js";

export interface PageLoad {
  /** Bytes over the wire (compressed bodies and headers), the page and everything it loaded. */
  bytes: number;
  /** From navigation to the page's `load` event. */
  loadMs: number;
  /** From navigation to the app's connection state reading "Live" (the app only). */
  liveMs?: number;
  /** JavaScript heap in use once loaded. */
  heapBytes: number;
}

export interface BrowserResult {
  app: { cold: PageLoad; warm: PageLoad };
  graphiql: { cold: PageLoad; warm: PageLoad };
  /** GraphiQL as it was served before: one page, scripts inlined, no compression or caching headers. */
  graphiqlWhole: { cold: PageLoad; warm: PageLoad };
  /** sendNotification to the list item in the page, ms. */
  page: Summary;
  /** sendNotification to the event at a graphql-ws client in Node, ms. */
  node: Summary;
}

const PASSWORD = "correct horse battery";

export async function measureBrowser(options: {
  api: HeraldProcess;
  sends: number;
  log: (message: string) => void;
  onCleanup: (name: string, stop: () => Promise<unknown>) => void;
}): Promise<BrowserResult> {
  const url = options.api.url;
  const { register } = await gqlOk(url, RegisterDocument, {
    input: { email: `reader.${Date.now()}@bench.example`, password: PASSWORD, displayName: "Reader" },
  });
  const session = {
    token: register.token,
    expiresAt: register.expiresAt,
    refreshToken: register.refreshToken,
    user: { id: register.user.id, displayName: register.user.displayName },
  };
  const browser = await launchChromium();
  options.onCleanup("chromium", () => browser.close());

  options.log("browser: loading the app and GraphiQL, cold and warm …");
  const whole = await servePageWhole(renderPlayground("/graphql"));
  options.onCleanup("GraphiQL as one page", () => whole.close());
  // Once first: Herald compresses each file on its first request, which a browser's first visit
  // after a deploy pays once; the figures are a browser's, so that is left out.
  await coldAndWarm(browser, `${url}/app/`, session, true);
  await coldAndWarm(browser, `${url}/graphql`, session, false);
  const app = await coldAndWarm(browser, `${url}/app/`, session, true);
  const graphiql = await coldAndWarm(browser, `${url}/graphql`, session, false);
  const graphiqlWhole = await coldAndWarm(browser, whole.url, session, false);

  options.log(`browser: ${options.sends} notifications to the page and to a Node client …`);
  const context = await browser.newContext();
  await signedIn(context, session);
  const page = await context.newPage();
  await page.addInitScript(() => {
    // When each title first appears in the page, by the same clock as the sender's (one machine).
    const seen: Record<string, number> = {};
    (window as unknown as { seen: Record<string, number> }).seen = seen;
    new MutationObserver(() => {
      for (const item of document.querySelectorAll("li h3")) {
        const title = item.textContent?.replace(/^Unread:\s*/, "") ?? "";
        if (title.startsWith("bench ") && !(title in seen)) seen[title] = Date.now();
      }
    }).observe(document, { childList: true, subtree: true });
  });
  await page.goto(`${url}/app/`);
  await live(page);
  const ws = connectWs(url, { authorization: `Bearer ${register.token}` });
  options.onCleanup("graphql-ws client", () => ws.dispose());
  const node = new Subscription<NotificationAddedSubscription>(ws.client, NotificationAddedDocument);
  const toPage: number[] = [];
  const toNode: number[] = [];
  for (let i = 0; i < options.sends; i += 1) {
    const title = `bench ${i}`;
    const sent = Date.now();
    await gqlOk(
      url,
      SendNotificationDocument,
      { input: { recipientIds: [register.user.id], title, body: "b", idempotencyKey: `bench-browser-${sent}-${i}` } },
      { "x-api-key": TEST_SERVICE_KEY },
    );
    for (;;) {
      const event = await node.next(30_000);
      if (event.data?.notificationAdded.title === title) break;
    }
    toNode.push(Date.now() - sent);
    const shown = await page.waitForFunction(
      (t) => (window as unknown as { seen: Record<string, number> }).seen[t],
      title,
      { timeout: 30_000, polling: 10 },
    );
    toPage.push(((await shown.jsonValue()) as number) - sent);
  }
  await context.close();
  return { app, graphiql, graphiqlWhole, page: summarize(toPage), node: summarize(toNode) };
}

async function coldAndWarm(
  browser: Browser,
  url: string,
  session: object,
  isApp: boolean,
): Promise<{ cold: PageLoad; warm: PageLoad }> {
  const context = await browser.newContext();
  try {
    await signedIn(context, session);
    const page = await context.newPage();
    const cold = await load(page, () => page.goto(url), isApp);
    const warm = await load(page, () => page.reload(), isApp);
    return { cold, warm };
  } finally {
    await context.close();
  }
}

async function load(page: Page, navigate: () => Promise<unknown>, isApp: boolean): Promise<PageLoad> {
  const started = Date.now();
  await navigate();
  await page.waitForLoadState("load");
  const liveMs = isApp ? (await live(page), Date.now() - started) : undefined;
  const figures = await page.evaluate(() => {
    const entries = [
      ...performance.getEntriesByType("navigation"),
      ...performance.getEntriesByType("resource"),
    ] as PerformanceResourceTiming[];
    const navigation = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming | undefined;
    const memory = (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory;
    return {
      bytes: entries.reduce((sum, e) => sum + e.transferSize, 0),
      loadMs: navigation ? navigation.loadEventEnd - navigation.startTime : 0,
      heapBytes: memory?.usedJSHeapSize ?? 0,
    };
  });
  return { ...figures, ...(liveMs === undefined ? {} : { liveMs }) };
}

/** A page served whole with no caching headers and no compression, on a port of its own. */
async function servePageWhole(html: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The app's stored session (examples/web/src/auth.ts), so each page opens signed in. */
async function signedIn(context: BrowserContext, session: object): Promise<void> {
  await context.addInitScript((value) => localStorage.setItem("herald.session", value), JSON.stringify(session));
}

function live(page: Page): Promise<void> {
  return untilLive(page, 30_000);
}

export function reportBrowser(r: BrowserResult): string[] {
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
  const row = (name: string, l: PageLoad) =>
    `${name}: ${kib(l.bytes)} transferred, load ${l.loadMs.toFixed(0)} ms` +
    (l.liveMs === undefined ? "" : `, "Live" after ${l.liveMs} ms`) +
    `, JS heap ${(l.heapBytes / 1024 / 1024).toFixed(1)} MiB`;
  const ms = (s: Summary) => `p50 ${s.p50} ms, p95 ${s.p95} ms, max ${s.max} ms (${s.count})`;
  return [
    "Browser (headless Chromium, one api + one worker process)",
    row("example app, cold", r.app.cold),
    row("example app, reload", r.app.warm),
    row("GraphiQL, cold", r.graphiql.cold),
    row("GraphiQL, reload", r.graphiql.warm),
    row("GraphiQL as one page (as served before), cold", r.graphiqlWhole.cold),
    row("GraphiQL as one page (as served before), reload", r.graphiqlWhole.warm),
    `sendNotification to the item in the app's page: ${ms(r.page)}`,
    `sendNotification to a graphql-ws client in Node, same sends: ${ms(r.node)}`,
  ];
}
