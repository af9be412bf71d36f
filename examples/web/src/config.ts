/**
 * Herald serves this app at /app, next to its API: same origin, so relative addresses reach it
 * (and `npm run dev` proxies them to a running Herald).
 */
export const GRAPHQL_PATH = "/graphql";

export function socketUrl(): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${GRAPHQL_PATH}`;
}
