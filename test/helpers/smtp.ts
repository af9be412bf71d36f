import type { AddressInfo } from "node:net";
import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer, type SMTPServerDataStream, type SMTPServerError } from "smtp-server";

/** Which deliveries the server answers with a temporary failure (451) at the end of DATA. */
/**
 * How the server answers the end of a message: accept, refuse (451), or "hold": the message is
 * received and counted, but the reply never comes, as when a sender dies before hearing back.
 */
export type RefusePolicy = { kind: "none" } | { kind: "first"; count: number } | { kind: "always" } | { kind: "hold" };

/** A real SMTP server on 127.0.0.1 that a test controls, so mail code is tested over the wire. */
export interface SmtpServer {
  /** smtp://127.0.0.1:PORT, for SMTP_URL. */
  readonly url: string;
  readonly port: number;
  /** Accepted messages only, in the order they were accepted. */
  readonly received: ParsedMail[];
  /** DATA transfers seen for a Message-ID, refused ones included; the angle brackets are optional. */
  attempts(messageId: string): number;
  /** Resolves with all messages received so far once there are at least `count`. */
  waitForMessages(count: number, timeoutMs?: number): Promise<ParsedMail[]>;
  /** The first received message, earlier or later, that matches. */
  waitFor(predicate: (m: ParsedMail) => boolean, timeoutMs?: number): Promise<ParsedMail>;
  setRefuse(policy: RefusePolicy): void;
  /** Resolves once the server is closed; waits still pending are rejected. */
  stop(): Promise<void>;
}

const DEFAULT_WAIT_MS = 5000;
// smtp-server waits this long (30 s by default) for open connections before it drops them with
// a 421; a pooled nodemailer transport keeps idle connections open, which would stall stop().
const CLOSE_TIMEOUT_MS = 500;

export async function startSmtpServer(options: { refuse?: RefusePolicy } = {}): Promise<SmtpServer> {
  let policy: RefusePolicy = options.refuse ?? { kind: "none" };
  const received: ParsedMail[] = [];
  const attemptsById = new Map<string, number>();
  let refused = 0;
  // Each pending wait re-checks itself whenever a message is accepted or the server stops.
  const listeners = new Set<(stopped: boolean) => void>();

  const accept = async (stream: SMTPServerDataStream): Promise<void> => {
    // The whole message is read before deciding, since the counter is keyed by its Message-ID.
    const mail = await simpleParser(stream);
    const key = normalizeMessageId(mail.messageId ?? "");
    const attempt = (attemptsById.get(key) ?? 0) + 1;
    attemptsById.set(key, attempt);
    if (shouldRefuse(policy, attempt)) {
      refused += 1;
      throw temporaryFailure();
    }
    received.push(mail);
    for (const listener of [...listeners]) listener(false);
    if (policy.kind === "hold") await new Promise<never>(() => {});
  };

  const smtp = new SMTPServer({
    logger: false,
    // Plain SMTP only: no certificate to manage, and nodemailer then never tries to upgrade.
    disabledCommands: ["STARTTLS", "AUTH"],
    authOptional: true,
    closeTimeout: CLOSE_TIMEOUT_MS,
    onData(stream, _session, callback) {
      accept(stream).then(
        () => callback(),
        (err: Error) => {
          // A parse failure must still drain the stream, or the connection hangs in DATA.
          stream.resume();
          callback(err);
        },
      );
    },
  });
  // Clients that reset their connection surface here; without a listener the test process crashes.
  smtp.on("error", () => {});

  const port = await new Promise<number>((resolve, reject) => {
    smtp.server.once("error", reject);
    smtp.listen(0, "127.0.0.1", () => {
      smtp.server.off("error", reject);
      resolve((smtp.server.address() as AddressInfo).port);
    });
  });

  const describeReceived = (): string =>
    `${received.length} message(s) accepted (subjects: ${JSON.stringify(received.map((m) => m.subject ?? null))}), ` +
    `${refused} refused`;

  const waitUntil = <T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const now = check();
      if (now !== undefined) return resolve(now);
      const finish = () => {
        clearTimeout(timer);
        listeners.delete(listener);
      };
      const listener = (stopped: boolean) => {
        const value = check();
        if (value !== undefined) {
          finish();
          resolve(value);
        } else if (stopped) {
          finish();
          reject(new Error(`SMTP server stopped while waiting for ${what}: ${describeReceived()}`));
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${describeReceived()}`));
      }, timeoutMs);
      listeners.add(listener);
    });

  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    received,
    attempts: (messageId) => attemptsById.get(normalizeMessageId(messageId)) ?? 0,
    waitForMessages: (count, timeoutMs = DEFAULT_WAIT_MS) =>
      waitUntil(() => (received.length >= count ? [...received] : undefined), `${count} message(s)`, timeoutMs),
    waitFor: (predicate, timeoutMs = DEFAULT_WAIT_MS) =>
      waitUntil(() => received.find(predicate), "a matching message", timeoutMs),
    setRefuse: (next) => {
      policy = next;
    },
    stop: async () => {
      await new Promise<void>((resolve) => smtp.close(resolve));
      for (const listener of [...listeners]) listener(true);
    },
  };
}

function shouldRefuse(policy: RefusePolicy, attempt: number): boolean {
  switch (policy.kind) {
    case "none":
    case "hold":
      return false;
    case "first":
      return attempt <= policy.count;
    case "always":
      return true;
  }
}

function temporaryFailure(): SMTPServerError {
  const err: SMTPServerError = new Error("try again later");
  err.responseCode = 451;
  return err;
}

// mailparser keeps the angle brackets of the header, nodemailer's info.messageId too; callers may
// pass either form.
function normalizeMessageId(messageId: string): string {
  const bare = messageId.trim().replace(/^<(.*)>$/, "$1");
  return bare === "" ? "" : `<${bare}>`;
}
