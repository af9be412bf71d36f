import type { EventSubscriber } from "@mikro-orm/core";
import type { JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { scheduleOnCreate } from "../../infra/signals.js";
import { Follow } from "./follow.entity.js";

export const FOLLOW_JOB = "follow.notify";

export interface FollowJobData {
  followId: string;
}

declare module "../../infra/agenda.js" {
  interface JobPayloads {
    [FOLLOW_JOB]: FollowJobData;
  }
}

/** A committed follow tells the followed user. */
export function followSubscribers(scheduler: JobScheduler, logger: Logger): EventSubscriber[] {
  return [
    scheduleOnCreate({
      entity: Follow,
      job: FOLLOW_JOB,
      data: (f): FollowJobData => ({ followId: f.id }),
      scheduler,
      logger,
    }),
  ];
}
