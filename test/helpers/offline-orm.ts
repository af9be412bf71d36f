import { ReflectMetadataProvider } from "@mikro-orm/decorators/legacy";
import { MikroORM, type EntityManager } from "@mikro-orm/mongodb";

/**
 * An entity manager that knows the entities and never connects. `em.map` builds an entity from a
 * stored document exactly as a query loads it (fields the document lacks stay unset), and
 * `em.persist` with `getUnitOfWork().computeChangeSets()` gives what a flush would write, so
 * mapping and scheduling rules can be checked without a database. Nothing here may flush.
 *
 * The test file must import "reflect-metadata" before any entity, as the app does, so that the
 * entities' property types are recorded when their classes are defined.
 */
export function offlineEntityManager(entities: Function[]): EntityManager {
  const orm = new MikroORM({
    // Never dialled: the synchronous constructor discovers the entities and does not connect.
    clientUrl: "mongodb://127.0.0.1:1/offline",
    entities,
    metadataProvider: ReflectMetadataProvider,
    debug: false,
    allowGlobalContext: false,
  });
  return orm.em.fork();
}
