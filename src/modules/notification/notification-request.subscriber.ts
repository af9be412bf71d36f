import { ChangeSetType, type EventSubscriber, type FlushEventArgs } from "@mikro-orm/core";
import { scheduleEach, type JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { NotificationRequest } from "./notification-request.entity.js";

export const DELIVER_JOB = "notification.deliver";

export interface DeliverJobData {
  requestId: string;
}

/** A committed `sendNotification` request schedules its delivery. */
export class NotificationRequestSubscriber implements EventSubscriber {
  constructor(
    private readonly scheduler: JobScheduler,
    private readonly logger: Logger,
  ) {}

  async afterFlush({ uow }: FlushEventArgs): Promise<void> {
    const created = uow
      .getChangeSets()
      .filter((cs) => cs.type === ChangeSetType.CREATE && cs.entity instanceof NotificationRequest)
      .map((cs) => (cs.entity as NotificationRequest).id);
    await scheduleEach(
      created,
      (requestId) => this.scheduler.now<DeliverJobData>(DELIVER_JOB, { requestId }),
      this.logger,
    );
  }
}
