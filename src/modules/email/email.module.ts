import type { FilterQuery } from "@mikro-orm/core";
import { keepGoing } from "../../infra/agenda.js";
import { deleteInBatches } from "../../infra/orm.js";
import type { HeraldModule, ModuleContext, RecoveryTask } from "../module.js";
import { Notification } from "../notification/notification.entity.js";
import { DeliveryStatus, NotificationChannel } from "../notification/notification.enums.js";
import { Digest, DigestItem } from "./digest.entity.js";
import { defineDigestJobs } from "./digest.jobs.js";
import { EmailAttempt } from "./email-attempt.entity.js";
import { EMAIL_JOB, defineEmailJobs, emailBatches, type EmailJobDeps } from "./email.jobs.js";

/**
 * An email attempt's claim matters while the email is in play, which is minutes; a day leaves room
 * for any outage the sweep recovers from.
 */
const KEEP_CLAIMS_MS = 24 * 3600_000;
/**
 * A digest that went out (or was given up) matters until its period is over and no abandoned batch
 * can still name its notifications: a week is ample.
 */
const KEEP_DIGESTS_MS = 7 * 24 * 3600_000;
/**
 * Emails wait longer than other work before the sweep takes them for lost: a large send queues
 * many, and rescheduling one that is only waiting adds a copy that finds nothing to do.
 */
const EMAIL_GRACE_MS = 10 * 60_000;

/**
 * Email: notifications stored with an email planned are sent in `email.send` batches; the
 * recurring `email.digest` sends the digests users chose. Without SMTP_URL emails are recorded as
 * skipped.
 */
export const emailModule: HeraldModule = {
  name: "email",
  entities: [DigestItem, Digest, EmailAttempt],
  jobs: (ctx) => {
    const deps = emailJobDeps(ctx);
    defineEmailJobs(ctx.agenda, deps);
    return defineDigestJobs(ctx.agenda, deps);
  },
  recovery: [lostEmails()],
  // What waits for a deleted account's next digest, and the digests it was sent.
  erase: async (ctx, userId, run) => {
    const em = ctx.orm.em.fork();
    await deleteInBatches(em, DigestItem, { userId }, () => keepGoing(run));
    await deleteInBatches(em, Digest, { userId }, () => keepGoing(run));
  },
  cleanup: [
    {
      name: "emailAttempts",
      run: (em, now) => em.nativeDelete(EmailAttempt, { claimedAt: { $lt: new Date(now.getTime() - KEEP_CLAIMS_MS) } }),
    },
    {
      name: "digests",
      run: (em, now) =>
        em.nativeDelete(Digest, {
          createdAt: { $lt: new Date(now.getTime() - KEEP_DIGESTS_MS) },
          $or: [{ sentAt: { $ne: null } }, { failedAt: { $ne: null } }],
        }),
    },
  ],
};

export function emailJobDeps(ctx: ModuleContext): EmailJobDeps {
  return {
    orm: ctx.orm,
    mailer: ctx.mailer,
    scheduler: ctx.scheduler,
    unsubscribe: ctx.unsubscribeTokens,
    publicUrl: ctx.config.publicUrl,
    counted: (kind, outcome) => ctx.metrics.emails.inc({ kind, outcome }),
    maxAttempts: ctx.config.email.maxAttempts,
    retryDelayMs: ctx.config.email.retryDelayMs,
    lockLifetimeMs: ctx.config.agenda.lockLifetimeMs,
    logger: ctx.logger,
  };
}

/**
 * Emails whose job was lost: planned at insert but never tried (a stop between storing and
 * scheduling, or a batch the sweep announced on an earlier run), or whose retry is long due (a stop
 * between recording a failure and scheduling the next attempt). Without email configured nothing
 * is planned, and the search, a scan of every notification on FerretDB (16 s at 80,000 in a soak),
 * is skipped; emails left PENDING by an earlier configuration wait for email.
 */
function lostEmails(): RecoveryTask {
  return {
    name: "emails",
    async run({ orm, notifications, scheduler }, { now, limit }) {
      if (!notifications.sendsEmail) return 0;
      const cutoff = new Date(now.getTime() - EMAIL_GRACE_MS);
      const pending = await orm.em
        .fork()
        .find(
          Notification,
          { "deliveries.status": DeliveryStatus.PENDING, createdAt: { $lt: cutoff } } as FilterQuery<Notification>,
          { fields: ["_id", "deliveries"], limit },
        );
      // FerretDB v1 has no $elemMatch on fields, so the email delivery's own state is checked here.
      const unsent = pending.filter((n) =>
        n.deliveries.some(
          (d) =>
            d.channel === NotificationChannel.EMAIL &&
            d.status === DeliveryStatus.PENDING &&
            // Tried, and with no retry due: recorded by an earlier version, which let Agenda retry it.
            (d.attempts === 0 || !d.nextAttemptAt || d.nextAttemptAt < cutoff),
        ),
      );
      for (const batch of emailBatches(unsent.map((n) => n.id))) await scheduler.now(EMAIL_JOB, batch);
      return unsent.length;
    },
  };
}
