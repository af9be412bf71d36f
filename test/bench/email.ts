// The email scenario of `npm run bench`: many users, one SYSTEM notification each (emailed by
// default), sent through sendNotification like any backend would. How fast the worker hands the
// emails to a local SMTP server, and whether every one arrives exactly once.
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { MongoClient, ObjectId, type Db } from "mongodb";
import { SMTPServer, type SMTPServerDataStream } from "smtp-server";
import { SendNotificationDocument } from "../generated/graphql.js";
import { eventually, gqlOk } from "../helpers/graphql-client.js";
import { TEST_SERVICE_KEY, type HeraldProcess } from "../helpers/herald.js";

export interface EmailResult {
  emails: number;
  /** From the first sendNotification request until every notification is stored. */
  queuedMs: number;
  /** From the first request to the last email accepted by the SMTP server. */
  totalMs: number;
  /** From the first email accepted to the last. */
  sendingMs: number;
  /** Messages the server accepted, and distinct Message-IDs among them. */
  received: number;
  distinct: number;
  /** Deliveries recorded SENT once the last email is in. */
  recordedSent: number;
  /** The worker's peak resident memory in MiB (Linux), undefined where it cannot be read. */
  workerPeakMiB: number | undefined;
}

/** sendNotification takes at most this many recipients per request. */
const REQUEST_RECIPIENTS = 1000;
const SEED_BATCH = 1000;
const EMAIL_TIMEOUT_MS = 15 * 60_000;

/** An SMTP server that only counts: it reads each message's headers for the Message-ID, nothing else. */
export interface SmtpSink {
  url: string;
  arrivals: number[];
  messageIds: Set<string>;
  stop(): Promise<void>;
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const arrivals: number[] = [];
  const messageIds = new Set<string>();
  const server = new SMTPServer({
    logger: false,
    disabledCommands: ["AUTH", "STARTTLS"],
    // A pool keeps its connections open; many clients at once should never be turned away.
    maxClients: 1000,
    onData(stream: SMTPServerDataStream, _session, callback) {
      let head = "";
      stream.on("data", (chunk: Buffer) => {
        if (head.length < 64 * 1024 && !head.includes("\r\n\r\n")) head += chunk.toString("latin1");
      });
      stream.on("end", () => {
        const id = /^message-id:\s*(\S+)/im.exec(head)?.[1];
        if (id) messageIds.add(id);
        arrivals.push(performance.now());
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    arrivals,
    messageIds,
    // Pooled client connections stay open; the server is closed under them.
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Seeds the recipients straight into the database (signing up 10,000 users through the API would
 * spend minutes hashing passwords, which is not what is measured), then asks for one SYSTEM
 * notification to each, a thousand recipients per sendNotification, and waits for the emails.
 */
export async function measureEmail(options: {
  worker: HeraldProcess;
  api: HeraldProcess;
  sink: SmtpSink;
  mongoUrl: string;
  emails: number;
  log: (message: string) => void;
  onCleanup: (name: string, stop: () => Promise<unknown>) => void;
}): Promise<EmailResult> {
  const mongo = new MongoClient(options.mongoUrl);
  options.onCleanup("seed connection", () => mongo.close());
  const db = mongo.db();
  const recipients = await seed(db, options.emails);
  options.log(`email: seeded ${options.emails} recipients; sending …`);

  const started = performance.now();
  const key = new ObjectId().toHexString();
  for (let i = 0; i < recipients.length; i += REQUEST_RECIPIENTS) {
    await gqlOk(
      options.api.url,
      SendNotificationDocument,
      {
        input: {
          recipientIds: recipients.slice(i, i + REQUEST_RECIPIENTS),
          title: "Scheduled maintenance",
          body: "Herald will be read-only for ten minutes tonight.",
          idempotencyKey: `bench-email-${key}-${i}`,
        },
      },
      { "x-api-key": TEST_SERVICE_KEY },
    );
  }
  const requests = db.collection("notification_requests");
  const total = Math.ceil(recipients.length / REQUEST_RECIPIENTS);
  // Each request is marked complete once all its notifications are stored and their emails queued.
  await eventually(
    async () => ((await requests.countDocuments({ completedAt: { $ne: null } })) === total ? true : undefined),
    { timeoutMs: EMAIL_TIMEOUT_MS, what: "every notification to be stored", intervalMs: 250 },
  );
  const queuedMs = performance.now() - started;
  options.log(`email: all ${options.emails} stored after ${(queuedMs / 1000).toFixed(1)} s; waiting for the emails …`);

  let reported = 0;
  await eventually(
    () => {
      const got = options.sink.arrivals.length;
      if (got >= reported + 2000) {
        reported = got;
        options.log(`email: ${got} received`);
      }
      return Promise.resolve(got >= options.emails ? true : undefined);
    },
    {
      timeoutMs: EMAIL_TIMEOUT_MS,
      what: `${options.emails} emails (${options.sink.arrivals.length} so far)`,
      intervalMs: 100,
    },
  );
  const first = options.sink.arrivals[0] ?? started;
  const last = options.sink.arrivals[options.sink.arrivals.length - 1] ?? started;
  // The delivery is recorded SENT just after the server accepts the message.
  let recordedSent = 0;
  await eventually(
    async () => {
      // (FerretDB v1 has no $elemMatch on fields: counted here.)
      const stored = await db
        .collection<{ deliveries: { channel: string; status: string }[] }>("notifications")
        .find({ kind: "SYSTEM" }, { projection: { deliveries: 1 } })
        .toArray();
      recordedSent = stored.filter((n) =>
        n.deliveries.some((d) => d.channel === "EMAIL" && d.status === "SENT"),
      ).length;
      return recordedSent >= options.emails ? true : undefined;
    },
    { timeoutMs: 60_000, what: "every delivery to be recorded SENT", intervalMs: 1000 },
  ).catch(() => undefined); // reported as found
  return {
    emails: options.emails,
    queuedMs,
    totalMs: last - started,
    sendingMs: last - first,
    received: options.sink.arrivals.length,
    distinct: options.sink.messageIds.size,
    recordedSent,
    workerPeakMiB: await peakMemoryMiB(options.worker.child.pid),
  };
}

/** VmHWM: the most resident memory the process has held so far. */
async function peakMemoryMiB(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const kib = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  return kib ? Number(kib) / 1024 : undefined;
}

async function seed(db: Db, count: number): Promise<string[]> {
  const now = new Date();
  const ids: string[] = [];
  for (let i = 0; i < count; i += SEED_BATCH) {
    const batch = Array.from({ length: Math.min(SEED_BATCH, count - i) }, (_, j) => ({
      _id: new ObjectId(),
      email: `reader.${i + j}.${new ObjectId().toHexString()}@bench.example`,
      displayName: `Reader ${i + j}`,
      passwordHash: "scrypt$seeded",
      createdAt: now,
      // Seeded users are past their welcome: the recovery sweep must leave them alone.
      welcomedAt: now,
    }));
    await db.collection("users").insertMany(batch);
    ids.push(...batch.map((u) => u._id.toHexString()));
  }
  return ids;
}
