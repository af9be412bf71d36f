import type { EventSubscriber } from "@mikro-orm/core";
import type { JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { scheduleOnChange, scheduleOnCreate } from "../../infra/signals.js";
import { User } from "./user.entity.js";

export const WELCOME_JOB = "notification.welcome";

export const ACCOUNT_JOB = "account.deleted";

export interface WelcomeJobData {
  userId: string;
}

export interface AccountJobData {
  userId: string;
  /** The second run, a while after the first, for what jobs already running wrote meanwhile. */
  late?: boolean;
}

declare module "../../infra/agenda.js" {
  interface JobPayloads {
    [WELCOME_JOB]: WelcomeJobData;
    [ACCOUNT_JOB]: AccountJobData;
  }
}

/**
 * The signals of users: a committed sign-up schedules the welcome job, a committed deleteAccount
 * the removal of the account's data.
 */
export function userSubscribers(scheduler: JobScheduler, logger: Logger): EventSubscriber[] {
  return [
    scheduleOnCreate({
      entity: User,
      job: WELCOME_JOB,
      data: (u): WelcomeJobData => ({ userId: u.id }),
      scheduler,
      logger,
    }),
    scheduleOnChange({
      entity: User,
      field: "deletedAt",
      when: (u) => u.deletedAt != null,
      job: ACCOUNT_JOB,
      data: (u): AccountJobData => ({ userId: u.id }),
      scheduler,
      logger,
    }),
  ];
}
