import type { ObjectId } from "@mikro-orm/mongodb";
import type { EntityManager } from "../../infra/orm.js";
import { isDuplicateKeyError } from "../../infra/orm.js";
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
}
