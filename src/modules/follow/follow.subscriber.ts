import { ChangeSetType, type EventSubscriber, type FlushEventArgs } from "@mikro-orm/core";
import { scheduleEach, type JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { Follow } from "./follow.entity.js";

export const FOLLOW_JOB = "follow.notify";

export interface FollowJobData {
  followId: string;
}

/** A committed follow tells the followed user. */
export class FollowSubscriber implements EventSubscriber {
  constructor(
    private readonly scheduler: JobScheduler,
    private readonly logger: Logger,
  ) {}

  async afterFlush({ uow }: FlushEventArgs): Promise<void> {
    const created = uow
      .getChangeSets()
      .filter((cs) => cs.type === ChangeSetType.CREATE && cs.entity instanceof Follow)
      .map((cs) => (cs.entity as Follow).id);
    await scheduleEach(created, (followId) => this.scheduler.now<FollowJobData>(FOLLOW_JOB, { followId }), this.logger);
  }
}
