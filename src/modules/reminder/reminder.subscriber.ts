import type { EventSubscriber } from "@mikro-orm/core";
import type { JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { scheduleOnCreate } from "../../infra/signals.js";
import { Reminder } from "./reminder.entity.js";

export const REMINDER_JOB = "reminder.fire";

export interface ReminderJobData {
  reminderId: string;
}

declare module "../../infra/agenda.js" {
  interface JobPayloads {
    [REMINDER_JOB]: ReminderJobData;
  }
}

/** A committed reminder schedules its job for its sendAt. */
export function reminderSubscribers(scheduler: JobScheduler, logger: Logger): EventSubscriber[] {
  return [
    scheduleOnCreate({
      entity: Reminder,
      job: REMINDER_JOB,
      data: (r): ReminderJobData => ({ reminderId: r.id }),
      at: (r) => r.sendAt,
      scheduler,
      logger,
    }),
  ];
}
