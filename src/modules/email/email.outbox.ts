import type { ObjectId } from "@mikro-orm/mongodb";
import type { JobScheduler } from "../../infra/agenda.js";
import type { EntityManager } from "../../infra/orm.js";
import type { NotificationKind } from "../notification/notification.enums.js";
import type { EmailPlan, PreferencesService } from "../preferences/preferences.service.js";
import { DigestItem } from "./digest.entity.js";
import { EMAIL_JOB, type EmailJobData } from "./email.jobs.js";

/** What NotificationService asks about email: who gets one, and to schedule the sends. */
export interface EmailOutbox {
  plan(em: EntityManager, recipientIds: ObjectId[], kind: NotificationKind): Promise<Map<string, EmailPlan>>;
  /** One `email.send` job per notification, after the notifications are stored. */
  schedule(notificationIds: string[]): Promise<void>;
  /** Keeps stored notifications for their recipients' next digest email. */
  gather(em: EntityManager, items: { userId: ObjectId; notificationId: ObjectId }[]): Promise<void>;
}

export function createEmailOutbox(preferences: PreferencesService, scheduler: JobScheduler): EmailOutbox {
  return {
    plan: (em, recipientIds, kind) => preferences.emailPlan(em, recipientIds, kind),
    schedule: async (notificationIds) => {
      for (const notificationId of notificationIds) {
        await scheduler.now<EmailJobData>(EMAIL_JOB, { notificationId });
      }
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
