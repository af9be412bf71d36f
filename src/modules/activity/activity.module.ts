import { keepGoing } from "../../infra/agenda.js";
import { deleteInBatches } from "../../infra/orm.js";
import type { HeraldModule } from "../module.js";
import { ActivityEntry } from "./activity.entity.js";
import { ActivityResolver } from "./activity.resolver.js";

/** Each user's own log of what they did; jobs of other modules write it through ActivityService. */
export const activityModule: HeraldModule = {
  name: "activity",
  entities: [ActivityEntry],
  resolvers: [ActivityResolver],
  api: ({ activity, users }) => ({ resolvers: [new ActivityResolver(activity, users)] }),
  erase: (ctx, userId, run) =>
    deleteInBatches(ctx.orm.em.fork(), ActivityEntry, { actorId: userId }, () => keepGoing(run)).then(() => undefined),
};
