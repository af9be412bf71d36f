import { ObjectId } from "@mikro-orm/mongodb";
import type { EntityManager } from "../../infra/orm.js";
import { isDuplicateKeyError } from "../../infra/orm.js";
import { badInput, conflict } from "../../graphql/errors.js";
import { User } from "../user/user.entity.js";
import { NotificationRequest, requestIdFor } from "./notification-request.entity.js";
import type { SendNotificationInput, SendNotificationResult } from "./notification.types.js";

/** `sendNotification`: requests from other backends, made safe to retry by their idempotency key. */
export class NotificationRequestService {
  /**
   * Stores a request from another backend; NotificationRequestSubscriber schedules its delivery once
   * it is committed. The idempotency key's unique index decides races between two identical calls.
   */
  async send(em: EntityManager, input: SendNotificationInput, sentBy: string): Promise<SendNotificationResult> {
    const previous = await em.findOne(NotificationRequest, { _id: requestIdFor(input.idempotencyKey) });
    if (previous) return replay(previous, input);
    const recipientIds = input.recipientIds.map((id) => new ObjectId(id));
    const known = await em.find(User, { _id: { $in: recipientIds }, deletedAt: null }, { fields: ["_id"] });
    if (known.length !== recipientIds.length) {
      const knownIds = new Set(known.map((u) => u.id));
      const unknown = input.recipientIds.filter((id) => !knownIds.has(id));
      throw badInput("recipientIds", `no user has the id ${unknown.slice(0, 5).join(", ")}`);
    }
    const request = new NotificationRequest({
      idempotencyKey: input.idempotencyKey,
      recipientIds,
      title: input.title,
      body: input.body,
      sentBy,
    });
    try {
      await em.persist(request).flush();
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      const winner = await em.fork().findOneOrFail(NotificationRequest, { _id: requestIdFor(input.idempotencyKey) });
      return replay(winner, input);
    }
    return toResult(request, false);
  }
}

function replay(previous: NotificationRequest, input: SendNotificationInput): SendNotificationResult {
  const sameRecipients =
    previous.recipientIds.length === input.recipientIds.length &&
    previous.recipientIds.every((id, i) => id.toHexString() === input.recipientIds[i]);
  if (!sameRecipients || previous.title !== input.title || previous.body !== input.body) {
    throw conflict("This idempotencyKey was already used for a different notification", "idempotencyKey");
  }
  return toResult(previous, true);
}

function toResult(request: NotificationRequest, replayed: boolean): SendNotificationResult {
  return {
    id: request.id,
    idempotencyKey: request.idempotencyKey,
    recipientCount: request.recipientIds.length,
    createdAt: request.createdAt,
    replayed,
  };
}
