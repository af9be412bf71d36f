import { EventEmitter, on } from "node:events";
import type { PubSub } from "type-graphql";
import { InboxEventType } from "./notification.enums.js";
import type { NotificationView } from "./notification.types.js";

export { InboxEventType };

/** The per-user channel every change to an inbox is published on (see InboxLog). */
export const INBOX = "INBOX";

/**
 * The routing key of inboxEvents: not a channel, but a feed that reads the log and then listens on
 * INBOX (see withInboxFeeds); its topic id is an InboxFeedRequest.
 */
export const INBOX_FEED = "INBOX_FEED";

export interface InboxFeedRequest {
  userId: string;
  after: InboxPosition | null;
}

/** Serves INBOX_FEED subscriptions with openInboxFeed, and every other one as `pubSub` does. */
export function withInboxFeeds(pubSub: PubSub, deps: InboxFeedDeps): PubSub {
  return {
    publish: (...args) => pubSub.publish(...args),
    subscribe: (routingKey, dynamicId) => {
      if (routingKey !== INBOX_FEED) return pubSub.subscribe(routingKey, dynamicId);
      const { userId, after } = dynamicId as InboxFeedRequest;
      return openInboxFeed(deps, userId, after);
    },
  };
}

/** A change to one user's inbox, as logged: a notification's state after it, or what went. */
export type InboxChange =
  | {
      type: InboxEventType.ADDED | InboxEventType.READ | InboxEventType.UNREAD | InboxEventType.ARCHIVED;
      notification: NotificationView;
    }
  | { type: InboxEventType.DELETED; notificationId: string }
  | { type: InboxEventType.ALL_READ };

/** A place in one user's log: its epoch, the sequence number of the last event seen and its id. */
export interface InboxPosition {
  epoch: string;
  seq: number;
  /** The Redis stream id of that event ("0-0" before the first). */
  id: string;
}

/** An event read back from the log. */
export interface StoredInboxEvent {
  position: InboxPosition;
  unreadCount: number;
  change: InboxChange;
}

/**
 * What the log publishes for each event (see InboxLog's COMMIT). For a user without a stream, the
 * epoch is empty and the sequence number 0: the event was published, not logged.
 */
export interface InboxMessage {
  epoch: string;
  seq: number;
  id: string;
  /** Moves forward with every change to the user's inbox, logged or not. */
  version: number;
  unreadCount: number;
  change: InboxChange;
}

/** An event as a subscription delivers it. */
export interface InboxEventPayload {
  position: InboxPosition;
  type: InboxEventType;
  notification: NotificationView | null;
  notificationId: string | null;
  unreadCount: number;
  at: Date;
}

const CURSOR_VERSION = "i1";
const EPOCH = /^[0-9a-f]{16}$/;
const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

export function encodeInboxCursor(p: InboxPosition): string {
  return Buffer.from(`${CURSOR_VERSION}:${p.epoch}:${p.seq}:${p.id}`).toString("base64url");
}

/** The position, or null when the string is not a cursor of this API's stream. */
export function decodeInboxCursor(value: string): InboxPosition | null {
  if (value.length > 200) return null;
  const parts = Buffer.from(value, "base64url").toString("utf8").split(":");
  if (parts.length !== 4) return null;
  const [version, epoch = "", seq = "", id = ""] = parts;
  if (version !== CURSOR_VERSION || !EPOCH.test(epoch) || !/^\d{1,15}$/.test(seq) || !STREAM_ID.test(id)) {
    return null;
  }
  return { epoch, seq: Number(seq), id };
}

export function toPayload(e: StoredInboxEvent | InboxMessage): InboxEventPayload {
  const position = "position" in e ? e.position : { epoch: e.epoch, seq: e.seq, id: e.id };
  const { change } = e;
  return {
    position,
    type: change.type,
    notification: "notification" in change ? change.notification : null,
    notificationId:
      "notification" in change ? change.notification.id : "notificationId" in change ? change.notificationId : null,
    unreadCount: e.unreadCount,
    // Stream ids start with the time they were written, in milliseconds.
    at: new Date(Number(position.id.split("-")[0])),
  };
}

/** What a feed needs from the log, from Redis's channels and from the database. */
export interface InboxFeedDeps {
  position(userId: string): Promise<InboxPosition>;
  after(userId: string, from: InboxPosition, limit: number): Promise<StoredInboxEvent[] | null>;
  /** Calls `onMessage` with each message on the user's INBOX channel once it listens; answers how to stop. */
  listen(userId: string, onMessage: (message: InboxMessage) => void): Promise<() => void>;
  /** Calls `listener` each time the channels listen again after Redis was away; answers how to stop. */
  onResubscribed(listener: () => void): () => void;
  unreadCount(userId: string): Promise<number>;
}

/** Events read from the log in one call while catching up. */
const CATCH_UP_PAGE = 500;

/**
 * One user's events for one subscription: those after a position first, then live ones, none
 * missing and none twice.
 *
 * It listens on the user's channel before it reads the log, keeping what arrives meanwhile; each
 * event carries its sequence number, so one already delivered is skipped and a hole (a message lost
 * while Redis's connection was down) is filled from the log. When the log cannot serve the position
 * (another epoch, or events after it already dropped), the first event is RESET, with a fresh
 * position and the current count, and the feed goes on from there.
 */
export function openInboxFeed(
  deps: InboxFeedDeps,
  userId: string,
  after: InboxPosition | null,
): AsyncIterableIterator<InboxEventPayload> {
  const out = new EventEmitter();
  const events = on(out, "event");
  let at: InboxPosition | null = null;
  let closed = false;
  let stop = () => undefined as void;

  const emit = (payload: InboxEventPayload) => {
    at = payload.position;
    out.emit("event", payload);
  };
  const reset = async () => {
    const position = await deps.position(userId);
    const unreadCount = await deps.unreadCount(userId);
    emit({
      position,
      type: InboxEventType.RESET,
      notification: null,
      notificationId: null,
      unreadCount,
      at: new Date(),
    });
  };
  const catchUp = async (from: InboxPosition) => {
    at = from;
    for (let position = from; ;) {
      const page = await deps.after(userId, position, CATCH_UP_PAGE);
      if (!page) return reset();
      for (const e of page) emit(toPayload(e));
      const last = page.at(-1);
      if (!last || page.length < CATCH_UP_PAGE) return;
      position = last.position;
    }
  };
  const live = async (message: InboxMessage) => {
    if (!at) return;
    if (message.epoch !== at.epoch) return catchUp(at);
    if (message.seq <= at.seq) return;
    if (message.seq === at.seq + 1) return emit(toPayload(message));
    return catchUp(at);
  };

  // Each step runs after the one before, in the order they arrived.
  let chain: Promise<unknown>;
  const enqueue = (step: () => Promise<unknown> | undefined) => {
    chain = chain.then(() => (closed ? undefined : step())).catch((err: unknown) => out.emit("error", err));
  };
  const listening = deps.listen(userId, (message) => enqueue(() => live(message)));
  chain = listening.then(async (unlisten) => {
    const unhook = deps.onResubscribed(() => enqueue(() => (at ? catchUp(at) : undefined)));
    stop = () => {
      unlisten();
      unhook();
    };
    if (closed) return stop();
    if (after) await catchUp(after);
    else at = await deps.position(userId);
  });
  chain = chain.catch((err: unknown) => out.emit("error", err));

  const close = () => {
    if (closed) return;
    closed = true;
    stop();
  };
  const iterator: AsyncIterableIterator<InboxEventPayload> = {
    next: async () => {
      const result = await events.next();
      return result.done
        ? { done: true, value: undefined }
        : { done: false, value: (result.value as [InboxEventPayload])[0] };
    },
    return: async () => {
      close();
      await events.return?.();
      return { done: true, value: undefined };
    },
    throw: async (err: unknown) => {
      close();
      await events.return?.();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
