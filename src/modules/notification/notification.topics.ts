import { INBOX, type InboxMessage } from "./inbox-events.js";

/** Every per-user channel Herald publishes on, with its payload. Channel: `${topic}:${userId}`. */
export interface Topics extends Record<string, unknown> {
  /** Every change to the user's inbox, published by InboxLog as it logs it. */
  [INBOX]: InboxMessage;
}
