import type { ObjectId } from "@mikro-orm/mongodb";
import type { JobScheduler } from "../../infra/agenda.js";
import type { EntityManager } from "../../infra/orm.js";
import type { NotificationKind } from "../notification/notification.enums.js";
import type { EmailPlan, PreferencesService } from "../preferences/preferences.service.js";
import { DigestItem } from "./digest.entity.js";
import { EMAIL_JOB, emailBatches } from "./email.jobs.js";

/** What NotificationService asks about email: who gets one, and to schedule the sends. */
export interface EmailOutbox {
  plan(em: EntityManager, recipientIds: ObjectId[], kind: NotificationKind): Promise<Map<string, EmailPlan>>;
  /** `email.send` jobs for the notifications' emails (a batch each), after they are stored. */
  schedule(notificationIds: string[]): Promise<void>;
  /** Keeps stored notifications for their recipients' next digest email. */
  gather(em: EntityManager, items: { userId: ObjectId; notificationId: ObjectId }[]): Promise<void>;
}

export function createEmailOutbox(preferences: PreferencesService, scheduler: JobScheduler): EmailOutbox {
  return {
    plan: (em, recipientIds, kind) => preferences.emailPlan(em, recipientIds, kind),
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
