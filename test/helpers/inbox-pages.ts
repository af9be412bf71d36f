import { InboxWithPostsDocument, type InboxWithPostsQuery, type NotificationKind } from "../generated/graphql.js";
import { gqlOk } from "./graphql-client.js";
import type { TestUser } from "./users.js";

export type InboxEntry = InboxWithPostsQuery["notifications"]["edges"][number]["node"];

/** Every notification of `kind` in the user's inbox, read page after page as a client would. */
export async function wholeInbox(apiUrl: string, user: TestUser, kind: NotificationKind): Promise<InboxEntry[]> {
  const entries: InboxEntry[] = [];
  let after: string | undefined;
  for (;;) {
    const { notifications } = await gqlOk(
      apiUrl,
      InboxWithPostsDocument,
      { first: 100, filter: { kinds: [kind] }, ...(after ? { after } : {}) },
      user.auth,
    );
    entries.push(...notifications.edges.map((e) => e.node));
    if (!notifications.pageInfo.hasNextPage || !notifications.pageInfo.endCursor) return entries;
    after = notifications.pageInfo.endCursor;
  }
}
