import type { EventSubscriber } from "@mikro-orm/core";
import type { JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { scheduleOnCreate } from "../../infra/signals.js";
import { NotificationRequest } from "./notification-request.entity.js";

export const DELIVER_JOB = "notification.deliver";

export interface DeliverJobData {
  requestId: string;
}

declare module "../../infra/agenda.js" {
  interface JobPayloads {
    [DELIVER_JOB]: DeliverJobData;
  }
}

/** A committed `sendNotification` request schedules its delivery. */
export function notificationRequestSubscribers(scheduler: JobScheduler, logger: Logger): EventSubscriber[] {
  return [
    scheduleOnCreate({
      entity: NotificationRequest,
      job: DELIVER_JOB,
      data: (r): DeliverJobData => ({ requestId: r.id }),
      scheduler,
      logger,
    }),
  ];
}
