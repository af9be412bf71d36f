import { activityModule } from "./activity/activity.module.js";
import { emailModule } from "./email/email.module.js";
import { followModule } from "./follow/follow.module.js";
import type { HeraldModule } from "./module.js";
import { notificationModule } from "./notification/notification.module.js";
import { postModule } from "./post/post.module.js";
import { preferencesModule } from "./preferences/preferences.module.js";
import { recoveryModule } from "./recovery/recovery.module.js";
import { reminderModule } from "./reminder/reminder.module.js";
import { securityModule } from "./security/security.module.js";
import { userModule } from "./user/user.module.js";

/**
 * Every feature of Herald. The ORM, the schema, the api and worker roles and the recovery sweep
 * all read this list: a new feature is a folder with a manifest, added here.
 */
export const MODULES: readonly HeraldModule[] = [
  userModule,
  notificationModule,
  postModule,
  followModule,
  activityModule,
  preferencesModule,
  reminderModule,
  emailModule,
  securityModule,
  recoveryModule,
];

/** Every persisted class of `modules`, listed explicitly: MikroORM does no folder discovery here. */
export function entitiesOf(modules: readonly HeraldModule[]) {
  return modules.flatMap((m) => m.entities ?? []);
}

/** Every resolver class of `modules`: the schema. */
export function resolversOf(modules: readonly HeraldModule[]): Function[] {
  return modules.flatMap((m) => m.resolvers ?? []);
}
