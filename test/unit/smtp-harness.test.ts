import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import nodemailer from "nodemailer";
import { startSmtpServer, type SmtpServer } from "../helpers/smtp.js";

const FROM = "herald@example.test";
const TO = "user@example.test";

// The SMTP error nodemailer reports for a refused DATA, without depending on its error class.
function smtpResponseCode(err: unknown): number | undefined {
  return (err as { responseCode?: number }).responseCode;
}

describe("SMTP test server", () => {
  let server: SmtpServer;
  before(async () => {
    server = await startSmtpServer();
  });
  after(async () => {
    await server.stop();
  });

  it("receives a plain message with its subject, text, html and Message-ID", async () => {
    const transport = nodemailer.createTransport(server.url);
    try {
      const info = await transport.sendMail({
        from: FROM,
        to: TO,
        subject: "Hello",
        text: "plain body",
        html: "<p>html body</p>",
        messageId: "<plain-1@herald.test>",
      });
      assert.equal(info.messageId, "<plain-1@herald.test>");
      const mail = await server.waitFor((m) => m.messageId === "<plain-1@herald.test>");
      assert.equal(mail.subject, "Hello");
      assert.equal(mail.text?.trim(), "plain body");
      assert.equal(mail.html, "<p>html body</p>");
      assert.equal(server.attempts("plain-1@herald.test"), 1, "brackets are optional");
      assert.equal(server.received.length, 1);
    } finally {
      transport.close();
    }
  });

  it("refuses the first attempts of a Message-ID with 451, then accepts it", async () => {
    server.setRefuse({ kind: "first", count: 2 });
    const transport = nodemailer.createTransport(server.url);
    const message = { from: FROM, to: TO, subject: "Retry me", text: "x", messageId: "<retry-1@herald.test>" };
    try {
      for (let attempt = 1; attempt <= 2; attempt++) {
        await assert.rejects(transport.sendMail(message), (err) => {
          assert.equal(smtpResponseCode(err), 451, `attempt ${attempt}`);
          assert.match(String((err as Error).message), /try again later/);
          return true;
        });
      }
      assert.equal(server.received.filter((m) => m.messageId === message.messageId).length, 0);
      await transport.sendMail(message);
      const mail = await server.waitFor((m) => m.messageId === message.messageId);
      assert.equal(mail.subject, "Retry me");
      assert.equal(server.attempts(message.messageId), 3);
      assert.equal(server.received.filter((m) => m.messageId === message.messageId).length, 1);
    } finally {
      transport.close();
      server.setRefuse({ kind: "none" });
    }
  });

  it("with 'always' refuses every send and receives nothing", async () => {
    server.setRefuse({ kind: "always" });
    const earlier = server.received.length;
    const transport = nodemailer.createTransport(server.url);
    try {
      for (const id of ["<always-1@herald.test>", "<always-1@herald.test>", "<always-2@herald.test>"]) {
        await assert.rejects(
          transport.sendMail({ from: FROM, to: TO, subject: "Never", text: "x", messageId: id }),
          (err) => smtpResponseCode(err) === 451,
        );
      }
      assert.equal(server.attempts("<always-1@herald.test>"), 2);
      assert.equal(server.attempts("<always-2@herald.test>"), 1);
      assert.equal(server.received.length, earlier);
      await assert.rejects(
        server.waitForMessages(earlier + 1, 200),
        /timed out after 200 ms waiting for .* message\(s\): .* refused/,
      );
    } finally {
      transport.close();
      server.setRefuse({ kind: "none" });
    }
  });

  it("waits for messages that arrive later, in arrival order", async () => {
    const earlier = server.received.length;
    const waiting = server.waitForMessages(earlier + 2);
    const transport = nodemailer.createTransport(server.url);
    try {
      await transport.sendMail({ from: FROM, to: TO, subject: "first", text: "1" });
      await transport.sendMail({ from: FROM, to: TO, subject: "second", text: "2" });
      const all = await waiting;
      assert.deepEqual(
        all.slice(earlier).map((m) => m.subject),
        ["first", "second"],
      );
    } finally {
      transport.close();
    }
  });
});

describe("SMTP test server lifecycle", () => {
  it("stop() returns promptly with a pooled client still connected, and rejects pending waits", async () => {
    const server = await startSmtpServer();
    const transport = nodemailer.createTransport({ url: server.url, pool: true });
    try {
      await transport.sendMail({ from: FROM, to: TO, subject: "pooled", text: "x" });
      const waiting = server.waitForMessages(5, 10_000);
      const started = Date.now();
      await server.stop();
      assert.ok(Date.now() - started < 5000, "stop() does not wait smtp-server's 30 s close timeout");
      await assert.rejects(waiting, /SMTP server stopped while waiting for 5 message\(s\): 1 message\(s\) accepted/);
    } finally {
      transport.close();
    }
  });
});
