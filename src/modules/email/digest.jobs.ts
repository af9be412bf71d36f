import type { Agenda } from "agenda";
import { defineJob, type JobOutcome } from "../../infra/agenda.js";
import type { EntityManager } from "../../infra/orm.js";
import { isDuplicateKeyError } from "../../infra/orm.js";
import { Notification } from "../notification/notification.entity.js";
import { NotificationKind } from "../notification/notification.enums.js";
import { UserPreferences } from "../preferences/preferences.entity.js";
import { DIGEST_PERIOD_MS } from "../preferences/preferences.service.js";
import { User } from "../user/user.entity.js";
import { Digest, DigestItem } from "./digest.entity.js";
import { retryDelay, unsubscribeHeaders, type EmailJobDeps } from "./email.jobs.js";
import { renderDigestEmail } from "./email.templates.js";

export const DIGEST_JOB = "email.digest";

declare module "../../infra/agenda.js" {
  interface JobPayloads {
    [DIGEST_JOB]: Record<string, never>;
  }
}

/** Notifications in one digest at most; the rest wait for the next one. */
const DIGEST_LIMIT = 100;
const DUE_BATCH = 200;
/** How often the digest job runs, and so the shortest wait before a refused digest is tried again. */
export const DIGEST_RETRY_FLOOR_MS = 60_000;

export interface DigestRun {
  sent: number;
  /** Due digests with nothing new: no email, only the next due time moves on. */
  empty: number;
  /** Refused sends, and digests given up after the last attempt. */
  refused: number;
  failed: number;
}

/**
 * Sends every digest that is due at `now`. For each user: claim the waiting notifications in a
 * Digest for this period (unique per user and period), email it, mark it sent, drop the claimed
 * items, move the due time on. A run that stops anywhere is finished by the next one, with the same
 * digest and the same Message-ID; a notification is never in two digests. A refused digest is tried
 * again after a backoff, and given up after EMAIL_MAX_ATTEMPTS.
 */
export async function sendDigests(deps: EmailJobDeps, now = new Date()): Promise<DigestRun> {
  const run: DigestRun = { sent: 0, empty: 0, refused: 0, failed: 0 };
  if (!deps.mailer) return run;
  const em = deps.orm.em.fork();
  const due = await em.find(UserPreferences, { nextDigestAt: { $lte: now } }, { limit: DUE_BATCH });
  for (const prefs of due) {
    const period = DIGEST_PERIOD_MS[prefs.digest];
    if (!period || !prefs.nextDigestAt) continue;
    const unsubscribed = prefs.email[NotificationKind.DIGEST] === false;
    const digest = unsubscribed ? null : await claim(em, prefs, prefs.nextDigestAt.toISOString());
    if (digest && !digest.sentAt && !digest.failedAt) {
      // Refused before: wait out its backoff; the due time stays put meanwhile.
      if (digest.nextAttemptAt && digest.nextAttemptAt > now) continue;
      let refusal: unknown;
      try {
        refusal = await send(deps, em, digest);
      } catch (err) {
        // Not the SMTP server's answer (a database error, say): no attempt is used; the next run
        // tries again. One failed digest must not hold up everyone else's.
        deps.logger.warn({ err, digest: digest._id.toHexString() }, "digest not sent; trying again next run");
        continue;
      }
      if (refusal === undefined) run.sent += 1;
      else if (await refused(deps, em, digest, refusal, now)) run.failed += 1;
      else {
        run.refused += 1;
        continue;
      }
    } else if (!digest) run.empty += 1;
    if (digest)
      await em.nativeDelete(DigestItem, { userId: prefs._id, notificationId: { $in: digest.notificationIds } });
    await em.nativeUpdate(
      UserPreferences,
      { _id: prefs._id },
      { nextDigestAt: nextAfter(prefs.nextDigestAt, period, now) },
    );
  }
  return run;
}

/** This period's digest: the one already claimed, or a new one holding what waits; null if nothing does. */
async function claim(em: EntityManager, prefs: UserPreferences, period: string): Promise<Digest | null> {
  const existing = await em.findOne(Digest, { userId: prefs._id, period });
  if (existing) return existing;
  const items = await em.find(
    DigestItem,
    { userId: prefs._id },
    { orderBy: { createdAt: "asc" }, limit: DIGEST_LIMIT },
  );
  if (items.length === 0) return null;
  const digest = new Digest(
    prefs._id,
    period,
    items.map((i) => i.notificationId),
  );
  try {
    await em.insert(Digest, digest);
    return digest;
  } catch (err) {
    if (!isDuplicateKeyError(err)) throw err;
    return em.fork().findOne(Digest, { userId: prefs._id, period });
  }
}

/** Sends the digest and records it sent; answers the SMTP failure, when there was one, and throws on any other. */
async function send(deps: EmailJobDeps, em: EntityManager, digest: Digest): Promise<unknown> {
  const [user, notifications] = await Promise.all([
    em.findOne(User, { _id: digest.userId }),
    em.find(Notification, { _id: { $in: digest.notificationIds } }, { orderBy: { createdAt: "asc", _id: "asc" } }),
  ]);
  // An account deleted meanwhile gets nothing more, though its data is not all gone yet.
  if (user && !user.deletedAt && notifications.length > 0 && deps.mailer) {
    const token = await deps.unsubscribe.issue(user.id, NotificationKind.DIGEST);
    const unsubscribe = `${deps.publicUrl}/unsubscribe?token=${encodeURIComponent(token)}`;
    try {
      await deps.mailer.send({
        to: user.email,
        ...renderDigestEmail(notifications, { open: `${deps.publicUrl}/notifications`, unsubscribe }),
        messageId: `<${digest._id.toHexString()}.digest@herald>`,
        headers: unsubscribeHeaders(unsubscribe),
      });
      deps.counted?.("digest", "sent");
    } catch (err) {
      return err ?? new Error("the SMTP server refused the digest");
    }
  }
  await em.nativeUpdate(Digest, { _id: digest._id }, { sentAt: new Date() });
  return undefined;
}

/**
 * Records a refused send. Below EMAIL_MAX_ATTEMPTS the digest is tried again after Agenda's
 * backoff, never sooner than a minute (the digest job's rhythm) times 2^(attempt-1), so an outage
 * of a few minutes does not use every attempt; at the limit it is given up, and true is returned.
 */
async function refused(
  deps: EmailJobDeps,
  em: EntityManager,
  digest: Digest,
  err: unknown,
  now: Date,
): Promise<boolean> {
  const attempts = digest.attempts + 1;
  const lastError = err instanceof Error ? err.message : String(err);
  const delay = digestRetryDelay(deps, attempts, err);
  const id = digest._id.toHexString();
  deps.counted?.("digest", delay === null ? "failed" : "retried");
  if (delay === null) {
    await em.nativeUpdate(Digest, { _id: digest._id }, { attempts, lastError, nextAttemptAt: null, failedAt: now });
    deps.logger.warn({ digest: id, attempts, err: lastError }, "digest email failed for good");
    return true;
  }
  const nextAttemptAt = new Date(now.getTime() + delay);
  await em.nativeUpdate(Digest, { _id: digest._id }, { attempts, lastError, nextAttemptAt });
  deps.logger.warn({ digest: id, attempts, nextAttemptAt, err: lastError }, "digest email refused; retrying");
  return false;
}

/** How long a digest refused `attempts` times waits before the next attempt; null once they are all used. */
export function digestRetryDelay(deps: EmailJobDeps, attempts: number, err: unknown): number | null {
  const step = retryDelay(deps, attempts, err);
  return step === null ? null : Math.max(step, DIGEST_RETRY_FLOOR_MS * 2 ** (attempts - 1));
}

/** The first period boundary after `now`, keeping the rhythm the user started. */
export function nextAfter(previous: Date, period: number, now: Date): Date {
  const missed = Math.max(1, Math.ceil((now.getTime() - previous.getTime() + 1) / period));
  return new Date(previous.getTime() + missed * period);
}

/** Defines the digest job; answers what (re)schedules it to recur. */
export function defineDigestJobs(agenda: Agenda, deps: EmailJobDeps): () => Promise<void> {
  defineJob(agenda, deps.logger, DIGEST_JOB, async (): Promise<JobOutcome> => {
    const run = await sendDigests(deps);
    if (run.sent + run.failed > 0) deps.logger.info(run, "digests sent");
    return run.sent + run.empty + run.refused + run.failed > 0 ? "done" : "skipped";
  });
  return () => agenda.every("1 minute", DIGEST_JOB).then(() => undefined);
}
