import { ObjectId } from "@mikro-orm/mongodb";
import type { EntityManager } from "../../infra/orm.js";
import { insertNew } from "../../infra/orm.js";
import { GroupCommit } from "../../infra/group-commit.js";
import type { Collection, Document } from "mongodb";
import { badInput } from "../../graphql/errors.js";
import { afterCursor } from "../../graphql/cursor.js";
import { MAX_PAGE_SIZE } from "../../graphql/limits.js";
import { ActivityEntry } from "./activity.entity.js";

export interface ActivityDraft {
  dedupeKey: string;
  verb: string;
  actorId?: ObjectId | null;
  targetType?: string | null;
  targetId?: ObjectId | null;
  fields?: string[] | null;
}

export class ActivityService {
  /**
   * Writes the entry once (true), or finds its dedupe key taken by an earlier run (false). Entries
   * recorded while another write is in flight go in together, in one unordered insert.
   */
  record(em: EntityManager, draft: ActivityDraft): Promise<boolean> {
    return this.entries.submit({ em, draft });
  }

  private readonly entries = new GroupCommit<{ em: EntityManager; draft: ActivityDraft }, boolean>(
    async (items) => {
      const first = items[0];
      if (!first) return [];
      const docs = items.map(({ draft }) => {
        const entry = new ActivityEntry(draft);
        const { _id, dedupeKey, verb, actorId, targetType, targetId, createdAt, fields } = entry;
        return { _id, dedupeKey, verb, actorId, targetType, targetId, createdAt, ...(fields ? { fields } : {}) };
      });
      const collection = first.em.getCollection(ActivityEntry) as unknown as Collection<Document>;
      const inserted = new Set(await insertNew(collection, docs));
      return items.map((_, i) => inserted.has(i));
    },
    { maxItems: 100, parallel: 1 },
  );

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
