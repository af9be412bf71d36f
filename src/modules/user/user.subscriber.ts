import { ChangeSetType, type EventSubscriber, type FlushEventArgs } from "@mikro-orm/core";
import { scheduleEach, type JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { User } from "./user.entity.js";

export const WELCOME_JOB = "notification.welcome";

export interface WelcomeJobData {
  userId: string;
}

/** The "post_save" signal for users: a committed sign-up schedules the welcome job. */
export class UserSubscriber implements EventSubscriber {
  constructor(
    private readonly scheduler: JobScheduler,
    private readonly logger: Logger,
  ) {}

  async afterFlush({ uow }: FlushEventArgs): Promise<void> {
    const created = uow
      .getChangeSets()
      .filter((cs) => cs.type === ChangeSetType.CREATE && cs.entity instanceof User)
      .map((cs) => (cs.entity as User).id);
    await scheduleEach(created, (userId) => this.scheduler.now<WelcomeJobData>(WELCOME_JOB, { userId }), this.logger);
  }
}
