import { defineJob, type Agenda, type JobOutcome } from "../../infra/agenda.js";
import type { Logger } from "../../infra/logger.js";
import { findById, type MikroORM } from "../../infra/orm.js";
import { NotificationKind } from "../notification/notification.enums.js";
import type { NotificationDraft, NotificationService } from "../notification/notification.service.js";
import { User } from "../user/user.entity.js";
import { AccountChange, AccountChangeKind } from "./account-change.entity.js";
import { ACCOUNT_CHANGE_JOB, type AccountChangeJobData } from "./security.subscriber.js";

export interface SecurityJobDeps {
  orm: MikroORM;
  notifications: NotificationService;
  logger: Logger;
}

/**
 * Tells the owner of an account what changed: PASSWORD_CHANGED in the inbox and by email;
 * EMAIL_CHANGED in the inbox and by email to the old address, the new one partly hidden, since
 * whoever changed it may not be the owner. Once per change (its dedupe key).
 */
export async function notifyAccountChange(deps: SecurityJobDeps, data: AccountChangeJobData): Promise<JobOutcome> {
  const em = deps.orm.em.fork();
  const change = await findById(em, AccountChange, data.changeId);
  if (!change || change.notifiedAt) return "skipped";
  const user = await em.findOne(User, { _id: change.userId });
  const applied = user && (changedAtOf(user, change.kind)?.getTime() ?? 0) >= change.changedAt.getTime();
  if (applied) await deps.notifications.deliver(em, [noticeOf(change)]);
  await em.nativeUpdate(AccountChange, { _id: change._id }, { notifiedAt: new Date() });
  return applied ? "done" : "skipped";
}

/** When the user's password or address last changed: this change's time, or later, once it applied. */
function changedAtOf(user: User, kind: AccountChangeKind): Date | null | undefined {
  return kind === AccountChangeKind.PASSWORD ? user.passwordChangedAt : user.emailChangedAt;
}

function noticeOf(change: AccountChange): NotificationDraft {
  const common = { recipientId: change.userId, dedupeKey: `account-change:${change.id}` };
  const unlessYou = "If it was not you, sign in and change your password, or contact the service at once.";
  if (change.kind === AccountChangeKind.PASSWORD) {
    return {
      ...common,
      kind: NotificationKind.PASSWORD_CHANGED,
      title: "Your password was changed",
      body: `The password of your account was changed; your other devices were signed out. ${unlessYou}`,
    };
  }
  return {
    ...common,
    kind: NotificationKind.EMAIL_CHANGED,
    title: "Your email address was changed",
    body: `The email address of your account is now ${maskEmail(change.newEmail ?? "")}. ${unlessYou}`,
    ...(change.oldEmail ? { emailTo: change.oldEmail } : {}),
  };
}

/** "jane.doe@example.com" → "j***@example.com": enough to recognise one's own, not to learn another's. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf("@");
  if (at <= 0) return "***";
  return `${email[0] ?? ""}***${email.slice(at)}`;
}

export function defineSecurityJobs(agenda: Agenda, deps: SecurityJobDeps): void {
  defineJob(agenda, deps.logger, ACCOUNT_CHANGE_JOB, (data: AccountChangeJobData) => notifyAccountChange(deps, data));
}
