import { MikroORM, ObjectId, type EntityManager, type EntityName, type FilterQuery } from "@mikro-orm/mongodb";
import { ReflectMetadataProvider } from "@mikro-orm/decorators/legacy";
import type { Collection, Db, Document } from "mongodb";
import { DEFAULT_MONGO_TIMEOUT_MS } from "../config/config.js";
import { GroupCommit } from "./group-commit.js";
import type { Logger } from "./logger.js";

export type { EntityManager, MikroORM };

export interface Orm {
  readonly orm: MikroORM;
  /** The driver's database handle, shared with Agenda so both use one connection pool. */
  readonly db: Db;
  /** FerretDB v1 speaks the wire protocol but has no transactions (docs/decisions/0004-no-multi-document-transactions.md). */
  readonly isFerretDb: boolean;
  readonly close: () => Promise<void>;
}

export async function createOrm(options: {
  mongoUrl: string;
  entities: Function[];
  logger: Logger;
  ensureIndexes: boolean;
  /**
   * How long one operation may take, everything included: finding a server, opening a connection,
   * every reply (the driver's timeoutMS). With the driver's defaults a request waited 30 s for a
   * server it could not reach, and for ever for the reply of one that hung or was cut off by the
   * network; its separate timeouts for those steps add up to several times their value. Past it the
   * operation fails, and with it the request (INTERNAL_SERVER_ERROR) or the job run (retried).
   */
  timeoutMs?: number;
}): Promise<Orm> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_MONGO_TIMEOUT_MS;
  const orm = await MikroORM.init({
    clientUrl: options.mongoUrl,
    driverOptions: {
      // The driver's client-side operation timeout (marked experimental in mongodb 7.6.0, pinned).
      // FerretDB accepts the maxTimeMS it adds to each command.
      timeoutMS: timeoutMs,
      // Also bounds the monitor's checks, so that a hung server is noticed within that time.
      connectTimeoutMS: timeoutMs,
      // Under timeoutMS, the driver's own retry of an operation whose connection broke waits for a
      // server with no bound (in 7.6.0): a read in flight when MongoDB went down hung until it came
      // back. Without it the operation fails within timeoutMS: a request reports the failure, and a
      // job run is retried with backoff.
      retryReads: false,
      retryWrites: false,
    },
    entities: options.entities,
    metadataProvider: ReflectMetadataProvider,
    discovery: { warnWhenNoEntities: true },
    // Herald never needs a multi-document transaction: every write is one document or an
    // idempotent batch. Real MongoDB (standalone) would refuse them too.
    implicitTransactions: false,
    debug: false,
    allowGlobalContext: false,
  });
  const db = orm.em.getConnection().getDb();
  const isFerretDb = await detectFerretDb(db);
  if (isFerretDb) orm.config.set("disableTransactions", true);
  if (options.ensureIndexes) await orm.schema.ensureIndexes();
  options.logger.info({ isFerretDb, database: db.databaseName }, "connected to MongoDB");
  return { orm, db, isFerretDb, close: () => orm.close(true) };
}

async function detectFerretDb(db: Db): Promise<boolean> {
  const info = await db.admin().command({ buildInfo: 1 });
  return "ferretdbVersion" in info || "ferretdbFeatures" in info;
}

export async function pingMongo(db: Db): Promise<void> {
  await db.command({ ping: 1 });
}

/**
 * Duplicate-key errors, from the driver (code 11000) or MikroORM's translation of them. FerretDB v1
 * answers an insert that breaks a unique index with 11000, but an update that does with SQLite's
 * own error ("UNIQUE constraint failed", under another code): it is the same refusal.
 */
export function isDuplicateKeyError(err: unknown): boolean {
  if (err === null || typeof err !== "object") return false;
  if ("code" in err && (err.code === 11000 || err.code === 11001)) return true;
  if (err instanceof Error && err.message.includes("UNIQUE constraint failed")) return true;
  if (err.constructor.name === "UniqueConstraintViolationException") return true;
  return "cause" in err && isDuplicateKeyError(err.cause);
}

export interface BulkDuplicates {
  /** Index in the batch to id, for the documents that did go in. */
  insertedIds: Record<string, unknown>;
}

/** An unordered insertMany whose every failure is a duplicate key: the rest went in. */
export function isBulkOfDuplicates(err: unknown): err is BulkDuplicates {
  if (err === null || typeof err !== "object" || !("writeErrors" in err) || !("insertedIds" in err)) return false;
  const writeErrors = (err as { writeErrors: unknown }).writeErrors;
  const list = Array.isArray(writeErrors) ? writeErrors : [writeErrors];
  return list.every((e: { code?: number }) => e?.code === 11000);
}

/**
 * Inserts the documents unordered, so that a duplicate key (another run got there first) does not
 * stop the rest; returns the indexes, in `docs`, of those that went in.
 */
export async function insertNew(collection: Collection<Document>, docs: Document[]): Promise<number[]> {
  try {
    await collection.insertMany(docs, { ordered: false });
    return docs.map((_, i) => i);
  } catch (err) {
    if (!isBulkOfDuplicates(err)) throw err;
    return Object.keys(err.insertedIds).map(Number);
  }
}

/**
 * Deletes the documents of `entity` that `where` finds, `batch` a write, calling `between` after
 * each: a large deletion never runs as one long write, and one that stops part-way resumes where it
 * stopped when run again (what it deleted is gone). Answers how many went.
 */
export async function deleteInBatches(
  em: EntityManager,
  entity: EntityName<object>,
  where: Document,
  between?: () => Promise<void>,
  batch = DELETE_BATCH,
): Promise<number> {
  const collection = em.getCollection(entity) as unknown as Collection<Document>;
  let deleted = 0;
  for (;;) {
    const ids = (
      await collection.find(where, { projection: { _id: 1 }, limit: batch, batchSize: batch }).toArray()
    ).map((d) => d["_id"]);
    if (ids.length === 0) return deleted;
    deleted += (await collection.deleteMany({ _id: { $in: ids } })).deletedCount;
    await between?.();
    if (ids.length < batch) return deleted;
  }
}

/** Documents per write of deleteInBatches. */
const DELETE_BATCH = 5000;

/**
 * The document whose `_id` is the given hex string: null when there is none, and for a malformed id,
 * which comes from a client or from stored job data and names nothing.
 */
export async function findById<Entity extends { _id: ObjectId }>(
  em: EntityManager,
  entity: EntityName<Entity>,
  id: string,
): Promise<Entity | null> {
  if (!ObjectId.isValid(id)) return null;
  return em.findOne(entity, { _id: new ObjectId(id) } as FilterQuery<Entity>);
}

/** A fresh unit of work: one per GraphQL operation, subscription event and job. */
export function fork(orm: MikroORM): EntityManager {
  return orm.em.fork();
}

type Identified = { _id: ObjectId };

/** Per ORM (its configuration, which every fork shares), by what they serve: a GroupCommit each. */
type Batchers = WeakMap<object, Map<unknown, GroupCommit<never, unknown>>>;
const finders: Batchers = new WeakMap();
const markers: Batchers = new WeakMap();
const creators: Batchers = new WeakMap();

/** The GroupCommit this ORM keeps in `registry` under `key`, made by `make` the first time. */
function batcherFor<Item, Result>(
  registry: Batchers,
  em: EntityManager,
  key: unknown,
  make: () => GroupCommit<Item, Result>,
): GroupCommit<Item, Result> {
  let byKey = registry.get(em.config);
  if (!byKey) {
    byKey = new Map();
    registry.set(em.config, byKey);
  }
  let batcher = byKey.get(key) as GroupCommit<Item, Result> | undefined;
  if (!batcher) {
    batcher = make();
    byKey.set(key, batcher as unknown as GroupCommit<never, unknown>);
  }
  return batcher;
}

/**
 * Persists a new entity and flushes, batched (see GroupCommit): the new entities of its class that
 * requests of this process create meanwhile go in with one flush, one insertMany, and the
 * subscribers see them in one afterFlush. The entity is written by a unit of work of its own, not
 * `em`'s. When the flush fails, every entity of the batch fails with it.
 */
export function createBatched<Entity extends object>(em: EntityManager, created: Entity): Promise<void> {
  const creator = batcherFor(
    creators,
    em,
    created.constructor,
    () =>
      new GroupCommit<object, void>(
        async (entities) => {
          await em.fork().persist(entities).flush();
          return entities.map(() => undefined);
        },
        { maxItems: 200, parallel: 1 },
      ),
  );
  return creator.submit(created);
}

/**
 * findById, batched (see GroupCommit): the finds of one entity asked for meanwhile, by requests or
 * jobs of this process, become one query, and an id asked by many (twenty comments on one post, a
 * post's author pushed to a thousand subscribers) is read once. The entity comes from a unit of
 * work of its own, not `em`'s: read it, don't change it through an EntityManager. A malformed id
 * finds nothing.
 */
export function findBatched<Entity extends Identified>(
  em: EntityManager,
  entity: new (...args: never[]) => Entity,
  id: string,
): Promise<Entity | null> {
  const finder = batcherFor(
    finders,
    em,
    entity,
    () =>
      new GroupCommit<string, Entity | null>(
        async (ids) => {
          const batch = em.fork();
          const wanted = [...new Set(ids)].filter((i) => ObjectId.isValid(i));
          const [only] = wanted;
          let found: Entity[];
          if (wanted.length === 1 && only) {
            const one: Entity | null = await findById<Entity>(batch, entity, only);
            found = one ? [one] : [];
          } else {
            const inList = { _id: { $in: wanted.map((i) => new ObjectId(i)) } } as unknown as FilterQuery<Entity>;
            found = (await batch.find(entity, inList)) as Entity[];
          }
          const byId = new Map(found.map((e) => [e._id.toHexString(), e]));
          return ids.map((i) => byId.get(i) ?? null);
        },
        { maxItems: 500, parallel: 1 },
      ),
  );
  return finder.submit(id);
}

/**
 * Sets `field` to now on the document, unless it is set already: the "done" marker a job leaves
 * for the recovery sweep, batched with the other jobs' markers of that field meanwhile. Answers
 * whether the document is still there, and, given `deleted` (the field a deletion sets), not
 * deleted: the write that marks it is also the check, and only a batch that did not mark every
 * document reads them to tell which (a deleted one, or one marked already).
 */
export function markBatched<Entity extends Identified>(
  em: EntityManager,
  entity: new (...args: never[]) => Entity,
  field: string,
  id: ObjectId,
  deleted?: string,
): Promise<boolean> {
  const key = `${entity.name}.${field}.${deleted ?? ""}`;
  const marker = batcherFor(
    markers,
    em,
    key,
    () =>
      new GroupCommit<string, boolean>(
        async (ids) => {
          const wanted = [...new Set(ids)].map((i) => new ObjectId(i));
          const collection = em.fork().getCollection(entity) as unknown as Collection<Document>;
          const filter = wanted.length === 1 ? { _id: wanted[0] } : { _id: { $in: wanted } };
          const alive = deleted ? { [deleted]: null } : {};
          const { matchedCount } = await collection.updateMany(
            { ...filter, ...alive, [field]: null },
            { $set: { [field]: new Date() } },
          );
          if (matchedCount === wanted.length) return ids.map(() => true);
          const present = new Set(
            (await collection.find({ ...filter, ...alive }, { projection: { _id: 1 } }).toArray()).map((d) =>
              String(d["_id"]),
            ),
          );
          return ids.map((i) => present.has(i));
        },
        { maxItems: 500, parallel: 1 },
      ),
  );
  return marker.submit(id.toHexString());
}
