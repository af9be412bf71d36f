import { ActivityEntry } from "./activity/activity.entity.js";
import { Delivery, Notification } from "./notification/notification.entity.js";
import { NotificationRequest } from "./notification/notification-request.entity.js";
import { PendingAnnouncement } from "./notification/announcement.entity.js";
import { UserPreferences } from "./preferences/preferences.entity.js";
import { Reminder, ReminderOutcome } from "./reminder/reminder.entity.js";
import { Digest, DigestItem } from "./email/digest.entity.js";
import { EmailAttempt } from "./email/email-attempt.entity.js";
import { User } from "./user/user.entity.js";
import { Follow } from "./follow/follow.entity.js";
import { Comment, Post } from "./post/post.entity.js";

/** Every persisted class, listed explicitly: MikroORM does no folder discovery here. */
export const ENTITIES = [
  User,
  Notification,
  Delivery,
  NotificationRequest,
  ActivityEntry,
  Post,
  Comment,
  Follow,
  PendingAnnouncement,
  UserPreferences,
  Reminder,
  ReminderOutcome,
  DigestItem,
  Digest,
  EmailAttempt,
];
