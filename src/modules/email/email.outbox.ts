import type { JobScheduler } from "../../infra/agenda.js";
import type { Collection, Document } from "mongodb";
import { isBulkOfDuplicates } from "../../infra/orm.js";
import { Digest, DigestItem } from "./digest.entity.js";
import { EMAIL_JOB, TRANSACTIONAL_EMAIL_JOB, emailBatches } from "./email.jobs.js";
import type { EmailOutbox } from "../notification/notification.service.js";

export type { EmailOutbox };

/** The email outbox NotificationService follows stored notifications up with. */
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
