import { useRef, useState } from "react";
import { useMutation, useQuery } from "@apollo/client/react";
import { InboxDocument, MarkAllNotificationsReadDocument } from "../generated/graphql";
import { ErrorAlert } from "../ui";
import { DEFAULT_FILTER, markAllRead, PAGE_SIZE, toVariables, type InboxFilter } from "./cache";
import { Filters } from "./Filters";
import { LoadMore } from "./LoadMore";
import { NotificationItem } from "./NotificationItem";

export function InboxView() {
  const [filter, setFilter] = useState<InboxFilter>(DEFAULT_FILTER);
  const [actionError, setActionError] = useState<unknown>();
  const [loadingMore, setLoadingMore] = useState(false);
  // The observer may report again before the re-render that disables it: one page at a time.
  const fetching = useRef(false);
  const { data, error, loading, fetchMore } = useQuery(InboxDocument, {
    variables: { first: PAGE_SIZE, filter: toVariables(filter) },
  });
  const [markAll, markingAll] = useMutation(MarkAllNotificationsReadDocument, {
    update: (cache, { data: result }) => {
      if (result?.markAllNotificationsRead) markAllRead(cache, new Date().toISOString());
    },
  });

  const page = data?.notifications;
  const loadMore = () => {
    if (fetching.current || !page?.pageInfo.hasNextPage) return;
    fetching.current = true;
    setLoadingMore(true);
    setActionError(undefined);
    fetchMore({ variables: { after: page.pageInfo.endCursor } })
      .catch(setActionError)
      .finally(() => {
        fetching.current = false;
        setLoadingMore(false);
      });
  };

  return (
    <section id="inbox" aria-labelledby="inbox-heading" className="inbox">
      <div className="section-head">
        <h2 id="inbox-heading" tabIndex={-1}>
          Inbox
        </h2>
        <button
          type="button"
          disabled={markingAll.loading}
          onClick={() => {
            setActionError(undefined);
            markAll().catch(setActionError);
          }}
        >
          Mark all read
        </button>
      </div>
      <Filters value={filter} onChange={setFilter} />
      <ErrorAlert error={error ?? actionError} />
      <ul aria-label="Inbox" className="notifications">
        {page?.edges.map(({ node }) => (
          <NotificationItem key={node.id} notification={node} onError={setActionError} />
        ))}
      </ul>
      {page && page.edges.length === 0 && <p className="empty">Nothing here.</p>}
      {!page && loading && <p className="empty">Loading…</p>}
      {page?.pageInfo.hasNextPage && (
        <LoadMore onLoad={loadMore} busy={loadingMore} cursor={page.pageInfo.endCursor ?? null} />
      )}
    </section>
  );
}
