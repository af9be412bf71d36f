import { renderGraphiQL } from "@graphql-yoga/render-graphiql";
import { Asset, contentHash } from "../roles/assets.js";

/**
 * GraphiQL in one page: scripts, styles and editor workers are inlined, so it works with no
 * internet. Subscriptions go over graphql-ws on the same path, and the headers typed into the
 * headers editor are also sent as the WebSocket's connectionParams (see WITH_HEADERS_AS_CONNECTION_PARAMS).
 */
export function renderPlayground(endpoint: string): string {
  const html = renderGraphiQL({
    endpoint,
    title: "Herald GraphiQL",
    subscriptionsProtocol: "WS",
    defaultQuery: DEFAULT_QUERY,
  });
  // The page ends with `YogaGraphiQL.renderYogaGraphiQL(root, <options as JSON>)`. JSON cannot carry
  // the two callbacks this needs, so that call goes through a wrapper that adds them.
  const call = "YogaGraphiQL.renderYogaGraphiQL(";
  const at = html.indexOf(call);
  if (at < 0 || html.indexOf(call, at + 1) >= 0) {
    throw new Error("@graphql-yoga/render-graphiql changed its page: cannot add WebSocket connectionParams");
  }
  return `${html.slice(0, at)}(${WITH_HEADERS_AS_CONNECTION_PARAMS})(${html.slice(at + call.length)}`;
}

/**
 * The page, and its 8 MB script and 800 KB of styles as files of their own, named by their content:
 * a browser fetches them once, compressed, and keeps them (immutable); the page itself is small and
 * revalidated (ETag), so a new release's GraphiQL is picked up on the next load.
 */
export function playgroundAssets(endpoint: string, assetPath: string): { page: Asset; files: Map<string, Asset> } {
  const files = new Map<string, Asset>();
  const extract = (tag: "script" | "style", type: string, ext: string, link: (href: string) => string) => {
    const pattern = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g");
    return (html: string) =>
      html.replace(pattern, (_all, body: string) => {
        const name = `graphiql.${contentHash(body)}.${ext}`;
        files.set(name, Asset.of(body, type, true));
        return link(`${assetPath}/${name}`);
      });
  };
  const scripts = extract(
    "script",
    "application/javascript; charset=utf-8",
    "js",
    (href) => `<script src="${href}"></script>`,
  );
  const styles = extract(
    "style",
    "text/css; charset=utf-8",
    "css",
    (href) => `<link rel="stylesheet" href="${href}" />`,
  );
  const page = styles(scripts(renderPlayground(endpoint)));
  if (files.size === 0)
    throw new Error("@graphql-yoga/render-graphiql changed its page: found no script to serve apart");
  return { page: Asset.of(page, "text/html; charset=utf-8", false), files };
}

/**
 * Browser code, wrapping YogaGraphiQL.renderYogaGraphiQL(root, options). A browser WebSocket cannot
 * carry headers and Herald authenticates sockets at connection_init, so the headers editor's
 * content becomes connectionParams, header names lower-cased ({ authorization: "Bearer …" }).
 * - Yoga hands its options, these included, to the graphql-tools url-loader, whose graphql-ws
 *   executor calls a `connectionParams` function each time a socket opens; Yoga opens a new
 *   socket for each subscription run, so the current headers are read then.
 * - Yoga passes the other options on to GraphiQL, whose `onEditHeaders` reports every change of
 *   the headers editor: typing, pasting, switching tabs. Until the first change, the headers
 *   GraphiQL saved at the last visit ("graphiql:headers" in localStorage) are what it shows.
 * Malformed JSON gives no params; GraphiQL itself refuses to run with such headers anyway.
 */
const WITH_HEADERS_AS_CONNECTION_PARAMS = `function (root, options) {
  var headersText = null;
  function currentHeaders() {
    if (headersText !== null) return headersText;
    try { return window.localStorage.getItem("graphiql:headers"); } catch (e) { return null; }
  }
  return YogaGraphiQL.renderYogaGraphiQL(root, Object.assign({}, options, {
    onEditHeaders: function (text) { headersText = text; },
    connectionParams: function () {
      var params = {};
      var headers;
      try { headers = JSON.parse(currentHeaders() || "{}"); } catch (e) { return params; }
      if (headers && typeof headers === "object" && !Array.isArray(headers)) {
        Object.keys(headers).forEach(function (name) { params[name.toLowerCase()] = headers[name]; });
      }
      return params;
    },
  }));
}`;

const DEFAULT_QUERY = `# Welcome to Herald.
# 1. Run "register" (or "login") and copy the token.
# 2. Open "Headers" below and enter {"Authorization": "Bearer <token>"}: it is sent over HTTP
#    and, for subscriptions, as the WebSocket connectionParams ({"authorization": ...}).
# 3. Run "inbox", or "live" to watch notifications arrive (a spinner until the first one).
#    With no token, "live" fails at once with {"isTrusted": true}: the socket was refused. With
#    a bad or expired one it retries for about 40 s first; fix the header and it picks the new
#    one up at the next retry, or press stop and run it again.

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
