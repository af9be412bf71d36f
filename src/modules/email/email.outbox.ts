import type { ObjectId } from "@mikro-orm/mongodb";
import type { JobScheduler } from "../../infra/agenda.js";
import type { Collection, Document } from "mongodb";
import { isBulkOfDuplicates, type EntityManager } from "../../infra/orm.js";
import { Digest, DigestItem } from "./digest.entity.js";
import { EMAIL_JOB, TRANSACTIONAL_EMAIL_JOB, emailBatches } from "./email.jobs.js";

/** What NotificationService asks of email: to schedule the sends, and to keep what waits for a digest. */
export interface EmailOutbox {
  /**
   * Email jobs for the notifications' emails (a batch each), after they are stored: transactional
   * for a notification written on its own, bulk for a batch.
   */
  schedule(notificationIds: string[], transactional: boolean): Promise<void>;
  /** Keeps stored notifications for their recipients' next digest email; keeping one twice keeps it once. */
  gather(em: EntityManager, items: { userId: ObjectId; notificationId: ObjectId }[]): Promise<void>;
  /** Those of the notifications that a digest already holds. */
  inDigests(em: EntityManager, notificationIds: ObjectId[]): Promise<ObjectId[]>;
}

export function createEmailOutbox(scheduler: JobScheduler): EmailOutbox {
  return {
    schedule: async (notificationIds, transactional) => {
      const lane = transactional ? TRANSACTIONAL_EMAIL_JOB : EMAIL_JOB;
      for (const batch of emailBatches(notificationIds)) await scheduler.now(lane, batch);
    },
    gather: async (em, items) => {
      if (items.length === 0) return;
      const collection = em.getCollection(DigestItem) as unknown as Collection<Document>;
      const docs = items.map((i) => ({ ...new DigestItem(i.userId, i.notificationId) }));
      try {
        // Unordered: an item kept already (a re-run, or the recovery sweep) must not stop the rest.
        await collection.insertMany(docs, { ordered: false });
      } catch (err) {
        if (!isBulkOfDuplicates(err)) throw err;
      }
    },
    inDigests: async (em, notificationIds) => {
      if (notificationIds.length === 0) return [];
      const digests = await em.find(
        Digest,
        { notificationIds: { $in: notificationIds } },
        { fields: ["notificationIds"] },
      );
      const asked = new Set(notificationIds.map((id) => id.toHexString()));
      return digests.flatMap((d) => d.notificationIds).filter((id) => asked.has(id.toHexString()));
    },
  };
}
