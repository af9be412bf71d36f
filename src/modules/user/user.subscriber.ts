import type { EventSubscriber } from "@mikro-orm/core";
import type { JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { scheduleOnCreate } from "../../infra/signals.js";
import { User } from "./user.entity.js";

export const WELCOME_JOB = "notification.welcome";

export interface WelcomeJobData {
  userId: string;
}

declare module "../../infra/agenda.js" {
  interface JobPayloads {
    [WELCOME_JOB]: WelcomeJobData;
  }
}

/** The "post_save" signal for users: a committed sign-up schedules the welcome job. */
export function userSubscribers(scheduler: JobScheduler, logger: Logger): EventSubscriber[] {
  return [
    scheduleOnCreate({
      entity: User,
      job: WELCOME_JOB,
      data: (u): WelcomeJobData => ({ userId: u.id }),
      scheduler,
      logger,
    }),
  ];
}
