import type { ObjectId } from "@mikro-orm/mongodb";
import type { JobScheduler } from "../../infra/agenda.js";
import type { EntityManager } from "../../infra/orm.js";
import { DigestItem } from "./digest.entity.js";
import { EMAIL_JOB, emailBatches } from "./email.jobs.js";

/** What NotificationService asks of email: to schedule the sends, and to keep what waits for a digest. */
export interface EmailOutbox {
  /** `email.send` jobs for the notifications' emails (a batch each), after they are stored. */
  schedule(notificationIds: string[]): Promise<void>;
  /** Keeps stored notifications for their recipients' next digest email. */
  gather(em: EntityManager, items: { userId: ObjectId; notificationId: ObjectId }[]): Promise<void>;
}

export function createEmailOutbox(scheduler: JobScheduler): EmailOutbox {
  return {
    schedule: async (notificationIds) => {
      for (const batch of emailBatches(notificationIds)) await scheduler.now(EMAIL_JOB, batch);
    },
    gather: async (em, items) => {
      if (items.length > 0)
        await em.insertMany(
          DigestItem,
          items.map((i) => new DigestItem(i.userId, i.notificationId)),
        );
    },
  };
}
