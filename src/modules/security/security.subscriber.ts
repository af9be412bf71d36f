import type { EventSubscriber } from "@mikro-orm/core";
import type { JobScheduler } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { recordOnChange, scheduleOnCreate } from "../../infra/signals.js";
import { User } from "../user/user.entity.js";
import { AccountChange, AccountChangeKind } from "./account-change.entity.js";

export const ACCOUNT_CHANGE_JOB = "security.notify";

export interface AccountChangeJobData {
  changeId: string;
}

declare module "../../infra/agenda.js" {
  interface JobPayloads {
    [ACCOUNT_CHANGE_JOB]: AccountChangeJobData;
  }
}

/**
 * A user's password or email address that really changed is recorded by the same flush, with the
 * address before; the committed record schedules the notice.
 */
export function securitySubscribers(scheduler: JobScheduler, logger: Logger): EventSubscriber[] {
  return [
    recordOnChange({
      entity: User,
      fields: ["email", "passwordHash"],
      record: ({ entity, before, changed }) =>
        changed.includes("email")
          ? new AccountChange({
              userId: entity._id,
              kind: AccountChangeKind.EMAIL,
              changedAt: entity.emailChangedAt ?? new Date(),
              ...(before.email ? { oldEmail: before.email } : {}),
              newEmail: entity.email,
            })
          : new AccountChange({
              userId: entity._id,
              kind: AccountChangeKind.PASSWORD,
              changedAt: entity.passwordChangedAt ?? new Date(),
            }),
    }),
    scheduleOnCreate({
      entity: AccountChange,
      job: ACCOUNT_CHANGE_JOB,
      data: (change): AccountChangeJobData => ({ changeId: change.id }),
      scheduler,
      logger,
    }),
  ];
}
