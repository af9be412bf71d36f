import { useQuery } from "@apollo/client/react";
import { UnreadCountDocument } from "../generated/graphql";

export function bellLabel(count: number | undefined): string {
  if (count === undefined) return "Notifications";
  return count === 0 ? "Notifications: no unread" : `Notifications: ${count} unread`;
}

/**
 * The unread count: read once the inbox's first read has put it in the cache (`ready`), then set by
 * every inbox event (see live.ts).
 */
export function Bell({ onClick, ready }: { onClick: () => void; ready: boolean }) {
  const { data } = useQuery(UnreadCountDocument, { skip: !ready });
  const count = data?.unreadCount;
  return (
    <button type="button" className="bell" aria-label={bellLabel(count)} onClick={onClick}>
      <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false">
        <path
          fill="currentColor"
          d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6v-5a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z"
        />
      </svg>
      {count ? (
        <span className="badge" aria-hidden="true">
          {count > 99 ? "99+" : count}
        </span>
      ) : null}
    </button>
  );
}
