import { INBOX, type InboxMessage } from "./inbox-events.js";

declare module "../../infra/pubsub.js" {
  interface Topics {
    /** Every change to a user's inbox, published by InboxLog as it logs it (channel per user). */
    [INBOX]: InboxMessage;
  }
}
