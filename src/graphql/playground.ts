import { renderGraphiQL } from "@graphql-yoga/render-graphiql";

/**
 * GraphiQL in one page: scripts, styles and editor workers are inlined, so it works with no
 * internet. Subscriptions go over graphql-ws on the same path.
 */
export function renderPlayground(endpoint: string): string {
  return renderGraphiQL({
    endpoint,
    title: "Herald GraphiQL",
    subscriptionsProtocol: "WS",
    defaultQuery: DEFAULT_QUERY,
  });
}

const DEFAULT_QUERY = `# Welcome to Herald.
# 1. Run "register" (or "login") and copy the token.
# 2. Add a header {"Authorization": "Bearer <token>"} below: it is sent over HTTP and, for
#    subscriptions, as the WebSocket connectionParams.
# 3. Run "inbox", or "live" to watch notifications arrive.

mutation register {
  register(input: { email: "ada@example.com", password: "correct horse", displayName: "Ada" }) {
    token
    user { id displayName }
  }
}

query inbox {
  unreadCount
  notifications(first: 10) {
    edges { node { id kind title body createdAt readAt } }
    pageInfo { hasNextPage endCursor }
  }
}

subscription live {
  notificationAdded { id kind title body createdAt }
}
`;
