import { useMutation } from "@apollo/client/react";
import {
  ArchiveNotificationDocument,
  DeleteNotificationDocument,
  MarkNotificationReadDocument,
  MarkNotificationUnreadDocument,
  type NotificationItemFragment,
} from "../generated/graphql";
import { formatTime, KIND_LABELS } from "../labels";
import { placeNotification, removeNotification } from "./cache";

/**
 * One notification with its actions. Each mutation also moves the item between the cached lists
 * at once, as its stream event will again a moment later (which then changes nothing).
 */
export function NotificationItem({
  notification: n,
  onError,
}: {
  notification: NotificationItemFragment;
  onError: (error: unknown) => void;
}) {
  const [markRead, reading] = useMutation(MarkNotificationReadDocument, {
    update: (cache, { data }) => data && placeNotification(cache, data.markNotificationRead),
  });
  const [markUnread, unreading] = useMutation(MarkNotificationUnreadDocument, {
    update: (cache, { data }) => data && placeNotification(cache, data.markNotificationUnread),
  });
  const [archive, archiving] = useMutation(ArchiveNotificationDocument, {
    update: (cache, { data }) => data && placeNotification(cache, data.archiveNotification),
  });
  const [remove, removing] = useMutation(DeleteNotificationDocument, {
    update: (cache, { data }) => data?.deleteNotification && removeNotification(cache, n.id),
  });
  const busy = reading.loading || unreading.loading || archiving.loading || removing.loading;
  const unread = n.readAt === null;
  const variables = { id: n.id };

  const run = (action: () => Promise<unknown>) => {
    onError(undefined);
    action().catch(onError);
  };

  return (
    <li className={unread ? "notification unread" : "notification"} aria-busy={busy}>
      <div className="notification-text">
        <h3>
          {unread && <span className="visually-hidden">Unread: </span>}
          {n.title}
        </h3>
        <p className="notification-body">{n.body}</p>
        <p className="meta">
          <span className="kind">{KIND_LABELS[n.kind]}</span>
          <time dateTime={n.createdAt}>{formatTime(n.createdAt)}</time>
          {n.actor && <span>from {n.actor.displayName}</span>}
          {n.archivedAt && <span>archived</span>}
        </p>
      </div>
      <div className="actions">
        {unread ? (
          <button
            type="button"
            aria-label={`Mark "${n.title}" read`}
            disabled={busy}
            onClick={() => run(() => markRead({ variables }))}
          >
            Mark read
          </button>
        ) : (
          <button
            type="button"
            aria-label={`Mark "${n.title}" unread`}
            disabled={busy}
            onClick={() => run(() => markUnread({ variables }))}
          >
            Mark unread
          </button>
        )}
        {!n.archivedAt && (
          <button
            type="button"
            aria-label={`Archive "${n.title}"`}
            disabled={busy}
            onClick={() => run(() => archive({ variables }))}
          >
            Archive
          </button>
        )}
        <button
          type="button"
          className="danger"
          aria-label={`Delete "${n.title}"`}
          disabled={busy}
          onClick={() => run(() => remove({ variables }))}
        >
          Delete
        </button>
      </div>
    </li>
  );
}
