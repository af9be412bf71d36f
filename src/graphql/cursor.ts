import { ObjectId } from "@mikro-orm/mongodb";

/** A position in a newest-first list: (createdAt, _id), both descending. Opaque to clients. */
export interface Cursor {
  createdAt: Date;
  id: ObjectId;
}

export function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(JSON.stringify([createdAt.getTime(), id])).toString("base64url");
}

/** The cursor, or null when the string is not one of ours. */
export function decodeCursor(value: string): Cursor | null {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, "base64url").toString("utf8"));
    if (!Array.isArray(parsed) || parsed.length !== 2) return null;
    const [ms, id] = parsed as unknown[];
    if (typeof ms !== "number" || typeof id !== "string" || !ObjectId.isValid(id)) return null;
    const createdAt = new Date(ms);
    // Outside the ±100,000,000 days a Date holds, it is no time at all, and no driver stores it.
    if (Number.isNaN(createdAt.getTime())) return null;
    return { createdAt, id: new ObjectId(id) };
  } catch {
    return null;
  }
}

/** Items strictly after the cursor in (createdAt desc, _id desc) order. */
export function afterCursor(cursor: Cursor): Record<string, unknown> {
  return {
    $or: [{ createdAt: { $lt: cursor.createdAt } }, { createdAt: cursor.createdAt, _id: { $lt: cursor.id } }],
  };
}
