import "reflect-metadata";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ObjectId } from "@mikro-orm/mongodb";
import { reviveDates } from "../../src/infra/pubsub.js";
import { ActivityEntry } from "../../src/modules/activity/activity.entity.js";
import { toActivityView } from "../../src/modules/activity/activity.types.js";
import { Delivery, Notification } from "../../src/modules/notification/notification.entity.js";
import {
  DeliveryStatus,
  NotificationChannel,
  NotificationKind,
} from "../../src/modules/notification/notification.enums.js";
import {
  docToView,
  toDocuments,
  type DeliveryPlan,
  type NotificationDraft,
} from "../../src/modules/notification/notification.service.js";
import { toDeliveryView, toNotificationView } from "../../src/modules/notification/notification.types.js";
import { Comment, Post } from "../../src/modules/post/post.entity.js";
import { toCommentView, toPostView } from "../../src/modules/post/post.types.js";
import { offlineEntityManager } from "../helpers/offline-orm.js";

const em = offlineEntityManager([Notification, Delivery, Post, Comment, ActivityEntry]);

const PLANS: readonly DeliveryPlan[] = [
  { inApp: true, email: "now" },
  { inApp: true, email: "digest" },
  { inApp: true, email: "none" },
  { inApp: false, email: "now" },
  { inApp: false, email: "digest" },
];

function draft(dedupeKey: string, refs: Partial<NotificationDraft> = {}): NotificationDraft {
  return {
    recipientId: new ObjectId(),
    dedupeKey,
    kind: NotificationKind.NEW_COMMENT,
    title: `title of ${dedupeKey}`,
    body: `body of ${dedupeKey}`,
    ...refs,
  };
}

/** One draft written under one plan, as `write` does: its id drawn beforehand. */
function documentFor(d: NotificationDraft, plan: DeliveryPlan | undefined) {
  const id = new ObjectId();
  const plans = new Map(plan ? [[d.dedupeKey, plan]] : []);
  const [doc] = toDocuments([d], plans, new Map([[d.dedupeKey, id]]));
  assert.ok(doc);
  return { id, doc };
}

/** The document as a query would load it: a copy, so that hydrating it cannot touch the original. */
function loaded(doc: ReturnType<typeof toDocuments>[number]): Notification {
  return em.map(Notification, { ...doc, deliveries: doc.deliveries.map((d) => ({ ...d })) });
}

function some<T>(value: T | undefined): T {
  assert.ok(value !== undefined);
  return value;
}

describe("notifications written in bulk (toDocuments, docToView)", () => {
  it("in the inbox and emailed at once: unread, delivered in-app, its email pending", () => {
    const refs = { actorId: new ObjectId(), postId: new ObjectId(), commentId: new ObjectId() };
    const d = draft("comment:1", refs);
    const { id, doc } = documentFor(d, { inApp: true, email: "now" });
    assert.ok(doc._id.equals(id), "the id drawn for the dedupe key");
    assert.ok(doc.recipientId.equals(d.recipientId));
    assert.equal(doc.dedupeKey, "comment:1");

    const view = docToView(doc);
    assert.equal(view.id, id.toHexString());
    assert.equal(view.recipientId, d.recipientId.toHexString());
    assert.equal(view.actorId, refs.actorId.toHexString());
    assert.equal(view.postId, refs.postId.toHexString());
    assert.equal(view.commentId, refs.commentId.toHexString());
    assert.equal(view.kind, NotificationKind.NEW_COMMENT);
    assert.equal(view.title, "title of comment:1");
    assert.equal(view.body, "body of comment:1");
    assert.ok(view.createdAt instanceof Date);
    assert.equal(view.readAt, null);
    assert.equal(view.archivedAt, null);
    assert.equal(view.inApp, true);
    assert.deepEqual(view.deliveries, [
      {
        channel: NotificationChannel.IN_APP,
        status: DeliveryStatus.SENT,
        attempts: 1,
        lastError: null,
        deliveredAt: view.createdAt,
        nextAttemptAt: null,
      },
      {
        channel: NotificationChannel.EMAIL,
        status: DeliveryStatus.PENDING,
        attempts: 0,
        lastError: null,
        deliveredAt: null,
        nextAttemptAt: null,
      },
    ]);
  });

  it("kept out of the inbox: stored already read, its in-app delivery SKIPPED, its email still pending", () => {
    const view = docToView(documentFor(draft("k"), { inApp: false, email: "now" }).doc);
    assert.equal(view.inApp, false);
    assert.ok(view.readAt instanceof Date, "read, so that no unread count includes it");
    assert.equal(view.readAt.getTime(), view.createdAt.getTime());
    assert.deepEqual(
      view.deliveries.map((d) => [d.channel, d.status, d.attempts, d.deliveredAt]),
      [
        [NotificationChannel.IN_APP, DeliveryStatus.SKIPPED, 0, null],
        [NotificationChannel.EMAIL, DeliveryStatus.PENDING, 0, null],
      ],
    );
  });

  it("gathered for the digest or not emailed: no email delivery of its own", () => {
    const plans: DeliveryPlan[] = [...PLANS.filter((p) => p.email !== "now"), { inApp: false, email: "none" }];
    for (const plan of plans) {
      const view = docToView(documentFor(draft("k"), plan).doc);
      assert.deepEqual(
        view.deliveries.map((d) => d.channel),
        [NotificationChannel.IN_APP],
        JSON.stringify(plan),
      );
      assert.equal(view.inApp, plan.inApp);
    }
  });

  it("without a plan for its dedupe key: in the inbox, not emailed", () => {
    const view = docToView(documentFor(draft("unplanned"), undefined).doc);
    assert.equal(view.inApp, true);
    assert.equal(view.readAt, null);
    assert.deepEqual(
      view.deliveries.map((d) => [d.channel, d.status]),
      [[NotificationChannel.IN_APP, DeliveryStatus.SENT]],
    );
  });

  it("stores a missing actor, post or comment as null, never leaves the field out", () => {
    for (const refs of [{}, { actorId: null, postId: null, commentId: null }]) {
      const { doc } = documentFor(draft("k", refs), { inApp: true, email: "none" });
      for (const field of ["actorId", "postId", "commentId"] as const) {
        assert.ok(Object.hasOwn(doc, field), `${field} is written`);
        assert.equal(doc[field], null);
      }
      const view = docToView(doc);
      assert.deepEqual([view.actorId, view.postId, view.commentId], [null, null, null]);
    }
  });

  it("a batch: drafts in order, each with the id drawn for it, all created at one time", () => {
    const drafts = Array.from({ length: 1000 }, (_, i) => draft(`post:p:${i}`));
    const ids = new Map(drafts.map((d) => [d.dedupeKey, new ObjectId()]));
    const plans = new Map(drafts.map((d, i): [string, DeliveryPlan] => [d.dedupeKey, some(PLANS[i % PLANS.length])]));
    const docs = toDocuments(drafts, plans, ids);
    assert.equal(docs.length, drafts.length);
    assert.deepEqual(
      docs.map((doc) => doc.dedupeKey),
      drafts.map((d) => d.dedupeKey),
    );
    assert.deepEqual(
      docs.map((doc) => doc._id.toHexString()),
      drafts.map((d) => some(ids.get(d.dedupeKey)).toHexString()),
    );
    assert.equal(new Set(docs.map((doc) => doc.createdAt.getTime())).size, 1);
    docs.forEach((doc, i) => {
      const plan = some(PLANS[i % PLANS.length]);
      assert.equal(doc.inApp, plan.inApp);
      assert.equal(
        doc.deliveries.some((dl) => dl.channel === NotificationChannel.EMAIL),
        plan.email === "now",
      );
    });
  });

  it("a draft whose dedupe key has no id drawn still gets an id of its own", () => {
    const known = draft("known");
    const id = new ObjectId();
    const docs = toDocuments([known, draft("a"), draft("b")], new Map(), new Map([["known", id]]));
    const hex = docs.map((doc) => doc._id.toHexString());
    assert.equal(hex[0], id.toHexString());
    assert.equal(new Set(hex).size, 3);
  });

  it("nothing to write: no documents", () => {
    assert.deepEqual(toDocuments([], new Map(), new Map()), []);
  });
});

describe("a notification pushed when written is the one a query reads back", () => {
  it("docToView of the document equals toNotificationView of the entity loaded from it, for every plan", () => {
    const refs = { actorId: new ObjectId(), postId: new ObjectId(), commentId: new ObjectId() };
    for (const plan of PLANS) {
      for (const d of [draft("bare"), draft("full", refs)]) {
        const { doc } = documentFor(d, plan);
        assert.deepEqual(toNotificationView(loaded(doc)), docToView(doc), `${d.dedupeKey} ${JSON.stringify(plan)}`);
      }
    }
  });

  it("and stays the same view after its trip through Redis to a subscription", () => {
    const { doc } = documentFor(draft("k", { actorId: new ObjectId() }), { inApp: false, email: "now" });
    const pushed: unknown = JSON.parse(JSON.stringify(docToView(doc)), reviveDates);
    assert.deepEqual(pushed, toNotificationView(loaded(doc)));
  });
});

describe("notifications read from the database (toNotificationView, toDeliveryView)", () => {
  it("a document stored before the in-app flag, and with optional fields left out, shows nulls and is in the inbox", () => {
    const _id = new ObjectId();
    const recipientId = new ObjectId();
    const createdAt = new Date("2026-03-04T05:06:07.089Z");
    const old = em.map(Notification, {
      _id,
      recipientId,
      dedupeKey: "welcome:1",
      kind: NotificationKind.WELCOME,
      title: "Welcome",
      body: "Hello",
      createdAt,
      deliveries: [{ channel: NotificationChannel.IN_APP, status: DeliveryStatus.SENT, attempts: 1 }],
    });
    assert.deepEqual(toNotificationView(old), {
      id: _id.toHexString(),
      recipientId: recipientId.toHexString(),
      kind: NotificationKind.WELCOME,
      title: "Welcome",
      body: "Hello",
      actorId: null,
      postId: null,
      commentId: null,
      createdAt,
      readAt: null,
      archivedAt: null,
      deliveries: [
        {
          channel: NotificationChannel.IN_APP,
          status: DeliveryStatus.SENT,
          attempts: 1,
          lastError: null,
          deliveredAt: null,
          nextAttemptAt: null,
        },
      ],
      inApp: true,
    });
  });

  it("read, archived, kept out of the inbox: as stored", () => {
    const readAt = new Date("2026-03-05T00:00:00.000Z");
    const archivedAt = new Date("2026-03-06T00:00:00.000Z");
    const n = em.map(Notification, {
      _id: new ObjectId(),
      recipientId: new ObjectId(),
      dedupeKey: "k",
      kind: NotificationKind.SYSTEM,
      title: "t",
      body: "b",
      createdAt: new Date("2026-03-04T00:00:00.000Z"),
      readAt,
      archivedAt,
      inApp: false,
      deliveries: [],
    });
    const view = toNotificationView(n);
    assert.equal(view.readAt?.getTime(), readAt.getTime());
    assert.equal(view.archivedAt?.getTime(), archivedAt.getTime());
    assert.equal(view.inApp, false);
    assert.deepEqual(view.deliveries, []);
  });

  it("a delivery shows its status, attempts and, while a retry waits, when the next one is due", () => {
    assert.deepEqual(toDeliveryView(new Delivery(NotificationChannel.EMAIL, DeliveryStatus.PENDING)), {
      channel: NotificationChannel.EMAIL,
      status: DeliveryStatus.PENDING,
      attempts: 0,
      lastError: null,
      deliveredAt: null,
      nextAttemptAt: null,
    });
    const retrying = new Delivery(NotificationChannel.EMAIL, DeliveryStatus.PENDING);
    retrying.attempts = 2;
    retrying.lastError = "421 try again later";
    retrying.nextAttemptAt = new Date("2026-03-04T00:01:00.000Z");
    const view = toDeliveryView(retrying);
    assert.equal(view.attempts, 2);
    assert.equal(view.lastError, "421 try again later");
    assert.equal(view.nextAttemptAt?.toISOString(), "2026-03-04T00:01:00.000Z");
    assert.equal(view.deliveredAt, null);
    assert.equal(Object.getPrototypeOf(view), Object.prototype, "plain data, written back as it is");
  });
});

describe("posts, comments and activity as clients see them", () => {
  it("a post: its id and author's id as strings, and nothing of the fan-out's progress", () => {
    const _id = new ObjectId();
    const authorId = new ObjectId();
    const createdAt = new Date("2026-03-04T05:06:07.089Z");
    const post = em.map(Post, {
      _id,
      authorId,
      title: "Hello",
      body: "World",
      createdAt,
      fanoutCursor: new ObjectId(),
      fanoutCompletedAt: new Date(),
    });
    assert.deepEqual(toPostView(post), {
      id: _id.toHexString(),
      authorId: authorId.toHexString(),
      title: "Hello",
      body: "World",
      createdAt,
    });
  });

  it("a post just written, before anything loads it, has the id it is stored under", () => {
    const post = new Post(new ObjectId(), "t", "b");
    em.persist(post);
    assert.equal(toPostView(post).id, post._id.toHexString());
  });

  it("a comment: its post and author by id, and nothing of its notice or notification mark", () => {
    const _id = new ObjectId();
    const postId = new ObjectId();
    const authorId = new ObjectId();
    const createdAt = new Date("2026-03-04T05:06:07.089Z");
    const comment = em.map(Comment, { _id, postId, authorId, body: "Nice", createdAt, notifiedAt: new Date() });
    assert.deepEqual(toCommentView(comment), {
      id: _id.toHexString(),
      postId: postId.toHexString(),
      authorId: authorId.toHexString(),
      body: "Nice",
      createdAt,
    });
  });

  it("an activity entry: actor and target by id; without them (stored null or left out) null", () => {
    const actorId = new ObjectId();
    const targetId = new ObjectId();
    const createdAt = new Date("2026-03-04T05:06:07.089Z");
    const _id = new ObjectId();
    const full = em.map(ActivityEntry, {
      _id,
      dedupeKey: "post.created:1",
      verb: "post.created",
      actorId,
      targetType: "Post",
      targetId,
      createdAt,
    });
    assert.deepEqual(toActivityView(full), {
      id: _id.toHexString(),
      actorId: actorId.toHexString(),
      verb: "post.created",
      targetType: "Post",
      targetId: targetId.toHexString(),
      fields: null,
      createdAt,
    });
    const edit = em.map(ActivityEntry, {
      _id: new ObjectId(),
      dedupeKey: "post.edited:1",
      verb: "post.edited",
      actorId,
      targetType: "post",
      targetId,
      fields: ["title", "body"],
      createdAt,
    });
    assert.deepEqual(toActivityView(edit).fields, ["title", "body"]);
    const nulls = em.map(ActivityEntry, {
      _id: new ObjectId(),
      dedupeKey: "a",
      verb: "user.registered",
      actorId: null,
      targetType: null,
      targetId: null,
      createdAt,
    });
    const missing = em.map(ActivityEntry, { _id: new ObjectId(), dedupeKey: "b", verb: "user.registered", createdAt });
    for (const entry of [nulls, missing]) {
      const view = toActivityView(entry);
      assert.deepEqual([view.actorId, view.targetType, view.targetId, view.fields], [null, null, null, null]);
      assert.equal(view.id, entry._id.toHexString());
    }
  });
});
