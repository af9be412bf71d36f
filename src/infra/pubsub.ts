import { RedisPubSub } from "graphql-redis-subscriptions";
import type { PubSub } from "type-graphql";
import { onReconnected, type Redis } from "./redis.js";

/**
 * The channel layer: any process publishes, every API instance's subscribers receive. Each topic
 * is per user (`KEY:userId`), so an instance subscribes in Redis only to the users it serves
 * instead of filtering everybody's events.
 */
export interface TopicListeners<Topics extends object> {
  /** Those of `ids` whose channel on `topic` has a subscriber right now, on any instance. */
  listening(topic: keyof Topics & string, ids: readonly string[]): Promise<string[]>;
}

export interface PubSubBridge<Topics extends object> extends TopicListeners<Topics> {
  /** The shape type-graphql's `@Subscription({ topics, topicId })` consumes. */
  readonly graphql: PubSub;
  /**
   * Calls `onMessage` with each message on the channel, from the moment the answer resolves (Redis
   * has confirmed the subscription); the answer stops it.
   */
  listen<K extends keyof Topics & string>(
    topic: K,
    id: string,
    onMessage: (payload: Topics[K]) => void,
  ): Promise<() => void>;
  /**
   * Calls `listener` each time the subscriber connection is back after losing Redis and listens
   * again on every channel: whatever was published meanwhile was not received.
   */
  onResubscribed(listener: () => void): () => void;
  close(): Promise<void>;
}

/**
 * Every channel Herald publishes on, with its payload, as JobPayloads is for jobs. Each module adds
 * its own topics where it names them, by declaration merging. Channel: `${topic}:${id}`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by the modules
export interface Topics {}

/** Channels asked about in one NUMSUB: keeps each command, and Redis's time on it, small. */
const NUMSUB_CHUNK = 1000;

export function channelName(topic: string, id: string): string {
  return `${topic}:${id}`;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** JSON through Redis turns Dates into strings; fields named `…At` come back as Dates. */
export function reviveDates(key: unknown, value: unknown): unknown {
  if (typeof key === "string" && key.endsWith("At") && typeof value === "string" && ISO_DATE.test(value)) {
    return new Date(value);
  }
  return value;
}

export function createPubSub<Topics extends object>(clients: {
  publisher: Redis;
  subscriber: Redis;
}): PubSubBridge<Topics> {
  const redis = new RedisPubSub({
    publisher: clients.publisher,
    subscriber: clients.subscriber,
    reviver: reviveDates,
  });
  const resubscribed = new Set<() => void>();
  onReconnected(clients.subscriber, () => {
    // ioredis sends the SUBSCRIBEs of its channels before it emits "ready": the PING's answer
    // comes after theirs.
    clients.subscriber.ping().then(
      () => resubscribed.forEach((listener) => listener()),
      () => undefined,
    );
  });
  return {
    listen: async (topic, id, onMessage) => {
      const subId = await redis.subscribe(channelName(topic, id), onMessage as (message: unknown) => void);
      return () => redis.unsubscribe(subId);
    },
    onResubscribed: (listener) => {
      resubscribed.add(listener);
      return () => resubscribed.delete(listener);
    },
    listening: async (topic, ids) => {
      const found: string[] = [];
      for (let i = 0; i < ids.length; i += NUMSUB_CHUNK) {
        const chunk = ids.slice(i, i + NUMSUB_CHUNK);
        const reply = await clients.publisher.pubsub("NUMSUB", ...chunk.map((id) => channelName(topic, id)));
        // The reply alternates channel, count, in the order asked.
        found.push(...chunk.filter((_, j) => Number(reply[2 * j + 1]) > 0));
      }
      return found;
    },
    graphql: {
      publish: () => {
        // Herald publishes from Redis scripts (see InboxLog), never through type-graphql.
        throw new Error("Herald publishes from Redis scripts, not through type-graphql");
      },
      subscribe: (routingKey: string, dynamicId?: unknown) =>
        redis.asyncIterableIterator(
          dynamicId === undefined ? routingKey : channelName(routingKey, dynamicId as string),
        ) as AsyncIterable<unknown>,
    },
    // Only the subscriber is ours to close; the publisher is shared with the rest of the process.
    close: async () => {
      await clients.subscriber.quit();
    },
  };
}
