import { ObjectId } from "@mikro-orm/mongodb";
import type { EntityManager } from "../../infra/orm.js";
import { badInput, notFound } from "../../graphql/errors.js";
import { isDuplicateKeyError } from "../../infra/orm.js";
import { Reminder, ReminderDecision, ReminderOutcome, ReminderStatus } from "./reminder.entity.js";
import type { ScheduleReminderInput } from "./reminder.types.js";

const MAX_AHEAD_MS = 366 * 24 * 3600 * 1000;

export class ReminderService {
  async schedule(em: EntityManager, userId: string, input: ScheduleReminderInput): Promise<Reminder> {
    const sendAt = input.sendAt;
    if (!(sendAt instanceof Date) || Number.isNaN(sendAt.getTime())) throw badInput("sendAt", "is not a date");
    if (sendAt.getTime() <= Date.now()) throw badInput("sendAt", "must be in the future");
    if (sendAt.getTime() > Date.now() + MAX_AHEAD_MS) throw badInput("sendAt", "must be at most a year ahead");
    const reminder = new Reminder({
      userId: new ObjectId(userId),
      title: input.title.trim(),
      body: input.body,
      sendAt,
    });
    // The reminder signal schedules its Agenda job for sendAt once this write is committed.
    await em.persist(reminder).flush();
    return reminder;
  }

  /** The caller's reminders still to come, soonest first. */
  pending(em: EntityManager, userId: string): Promise<Reminder[]> {
    return em.find(
      Reminder,
      { userId: new ObjectId(userId), status: ReminderStatus.PENDING },
      { orderBy: { sendAt: "asc", _id: "asc" }, limit: 500 },
    );
  }

  /** True when it was pending and is now cancelled; false when it had already fired or been cancelled. */
  async cancel(em: EntityManager, userId: string, id: string): Promise<boolean> {
    if (!ObjectId.isValid(id)) throw badInput("id", "is not a reminder id");
    const reminder = await em.findOne(Reminder, { _id: new ObjectId(id), userId: new ObjectId(userId) });
    if (!reminder) throw notFound("Reminder");
    if (reminder.status !== ReminderStatus.PENDING) return false;
    const { decision, mine } = await decide(em, reminder._id, ReminderDecision.CANCEL);
    if (decision !== ReminderDecision.CANCEL) return false;
    await em.nativeUpdate(
      Reminder,
      { _id: reminder._id, status: ReminderStatus.PENDING },
      { status: ReminderStatus.CANCELLED },
    );
    return mine;
  }
}

/**
 * Settles whether a reminder fires or is cancelled: the first to record its decision wins. Answers
 * the decision that stands, and whether it is this call's.
 */
export async function decide(
  em: EntityManager,
  reminderId: ObjectId,
  decision: ReminderDecision,
): Promise<{ decision: ReminderDecision; mine: boolean }> {
  try {
    await em.insert(ReminderOutcome, new ReminderOutcome(reminderId, decision));
    return { decision, mine: true };
  } catch (err) {
    if (!isDuplicateKeyError(err)) throw err;
  }
  const standing = await em.fork().findOneOrFail(ReminderOutcome, { _id: reminderId });
  return { decision: standing.decision, mine: false };
}
