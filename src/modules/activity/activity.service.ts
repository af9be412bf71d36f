import { ObjectId } from "@mikro-orm/mongodb";
import type { EntityManager } from "../../infra/orm.js";
import { isDuplicateKeyError } from "../../infra/orm.js";
import { badInput } from "../../graphql/errors.js";
import { afterCursor } from "../notification/cursor.js";
import { MAX_PAGE_SIZE } from "../notification/inbox.service.js";
import { ActivityEntry } from "./activity.entity.js";

export interface ActivityDraft {
  dedupeKey: string;
  verb: string;
  actorId?: ObjectId | null;
  targetType?: string | null;
  targetId?: ObjectId | null;
}

export class ActivityService {
  /** Writes the entry once; a re-run of the job that records it finds the dedupe key taken. */
  async record(em: EntityManager, draft: ActivityDraft): Promise<boolean> {
    try {
      await em.insert(ActivityEntry, new ActivityEntry(draft));
      return true;
    } catch (err) {
      if (isDuplicateKeyError(err)) return false;
      throw err;
    }
  }

  /**
   * The caller's own activity, newest first. `after` is the id of the last entry of the previous
   * page; entries after it in (createdAt, id) order follow, so new entries never shift a page.
   */
  async list(
    em: EntityManager,
    userId: string,
    args: { first: number; after?: string | null },
  ): Promise<ActivityEntry[]> {
    if (!Number.isInteger(args.first) || args.first < 0 || args.first > MAX_PAGE_SIZE) {
      throw badInput("first", `must be between 0 and ${MAX_PAGE_SIZE}`);
    }
    const actorId = new ObjectId(userId);
    const conditions: Record<string, unknown>[] = [{ actorId }];
    if (args.after) {
      const previous = ObjectId.isValid(args.after)
        ? await em.findOne(ActivityEntry, { _id: new ObjectId(args.after), actorId })
        : null;
      if (!previous) throw badInput("after", "is not one of your activity entries");
      conditions.push(afterCursor({ createdAt: previous.createdAt, id: previous._id }));
    }
    return em.find(
      ActivityEntry,
      { $and: conditions },
      { orderBy: { createdAt: "desc", _id: "desc" }, limit: args.first },
    );
  }
}
