import nodemailer from "nodemailer";

export interface OutgoingEmail {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** The same for every copy of one email, so a receiver can recognise a resend. */
  messageId: string;
  headers?: Record<string, string>;
}

export interface Mailer {
  send(email: OutgoingEmail): Promise<void>;
  close(): void;
}

/** SMTP connections a mailer keeps open, and so how many emails it sends at once. */
export const MAILER_CONNECTIONS = 5;

/** SMTP through nodemailer, with pooled connections: a worker sends many emails in a row. */
export function createMailer(smtpUrl: string, from: string): Mailer {
  const transport = nodemailer.createTransport({
    url: smtpUrl,
    pool: true,
    maxConnections: MAILER_CONNECTIONS,
    // nodemailer waits up to 2 min to connect and 10 min on a silent socket. A send that outlives
    // the job lock (1 min by default) is taken for abandoned, and made again by another run.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  });
  return {
    send: async (email) => {
      await transport.sendMail({ from, ...email });
    },
    close: () => transport.close(),
  };
}
