import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { start } from "../../src/app.js";
import { loadConfig } from "../../src/config/config.js";
import { createLogger } from "../../src/infra/logger.js";
import { startTracing } from "../../src/infra/tracing.js";
import { FollowDocument } from "../generated/graphql.js";
import { testMongoUrl, testRedisUrl } from "../helpers/env.js";
import { eventually, gqlOk } from "../helpers/graphql-client.js";
import { TEST_JWT_SECRET, TEST_SERVICE_KEY, uniqueDatabase } from "../helpers/herald.js";
import { startSmtpServer, type SmtpServer } from "../helpers/smtp.js";
import { signUp } from "../helpers/users.js";

/**
 * Herald in this process with an in-memory span exporter: one trace follows a mutation through the
 * job it schedules to the push (the inbox commit) and through the email job to the email sent.
 */
describe("traces", () => {
  const exporter = new InMemorySpanExporter();
  const tracing = startTracing({ serviceName: "herald-test", exporter, batch: false });
  let smtp: SmtpServer;
  let herald: { url: string; stop: () => Promise<void> };

  before(async () => {
    smtp = await startSmtpServer();
    const config = loadConfig({
      NODE_ENV: "production",
      PORT: "0",
      MONGO_URL: testMongoUrl(uniqueDatabase("tracing")),
      REDIS_URL: testRedisUrl(),
      JWT_SECRET: TEST_JWT_SECRET,
      SERVICE_API_KEY: TEST_SERVICE_KEY,
      SMTP_URL: smtp.url,
      // Agenda keeps a timer of half the lock per run: short, so the test's process ends soon after.
      AGENDA_LOCK_LIFETIME_MS: "4000",
      RATE_LIMITS: "off",
    });
    const { port, stop } = await start(config, createLogger({ level: process.env["TEST_LOG_LEVEL"] ?? "warn" }));
    herald = { url: `http://127.0.0.1:${port}`, stop };
  });
  after(async () => {
    await herald?.stop();
    await smtp?.stop();
    await tracing.stop();
  });

  it("follows a follow from the mutation to its job, the push and the email", async () => {
    const ada = await signUp(herald.url, "Ada");
    const bob = await signUp(herald.url, "Bob");
    await gqlOk(herald.url, FollowDocument, { userId: bob.id }, ada.auth);
    await smtp.waitFor((m) => m.subject === "Ada followed you", 15_000);

    const spans = () => exporter.getFinishedSpans();
    const mutation = spans().find((s) => s.name === "graphql mutation Follow");
    assert.ok(
      mutation,
      `a span for the mutation among ${spans()
        .map((s) => s.name)
        .join(", ")}`,
    );
    assert.equal(mutation.attributes["herald.outcome"], "ok");
    const trace = mutation.spanContext().traceId;
    const inTrace = (name: string) => spans().filter((s) => s.name === name && s.spanContext().traceId === trace);
    const parentOf = (span: ReadableSpan) =>
      spans().find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId);

    // The job's span ends when its run does, which may be after the email it scheduled went out.
    const job = await eventually(() => Promise.resolve(inTrace("job follow.notify")[0]), {
      timeoutMs: 10_000,
      what: "the job the mutation scheduled, in its trace",
    });
    assert.equal(parentOf(job), mutation, "as a child of the mutation");
    assert.equal(job.attributes["herald.job.outcome"], "done");

    const push = inTrace("inbox.commit").find((s) => parentOf(s) === job);
    assert.ok(push, "the job's inbox commit (the push) is in the trace");

    // The email goes out after its job's own lock and run: wait for the span to end.
    const email = await eventually(() => Promise.resolve(inTrace("email.send")[0]), {
      timeoutMs: 10_000,
      what: "the email's span in the trace",
    });
    const emailJob = parentOf(email);
    assert.match(emailJob?.name ?? "", /^job email\./);
    assert.equal(emailJob?.spanContext().traceId, trace);
  });
});
