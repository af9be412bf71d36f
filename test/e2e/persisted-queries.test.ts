import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { ApolloClient, HttpLink, InMemoryCache } from "@apollo/client";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { MeDocument } from "../generated/graphql.js";
import { eventually } from "../helpers/graphql-client.js";
import { startCluster, type Cluster } from "../helpers/herald.js";
import { signUp, type TestUser } from "../helpers/users.js";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

interface Answer {
  status: number;
  body: { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] };
}

/** Automatic persisted queries as mobile clients use them: a hash instead of the query, on any api instance. */
describe("automatic persisted queries", () => {
  let cluster: Cluster;
  let ada: TestUser;

  before(async () => {
    cluster = await startCluster("apq", 2);
    ada = await signUp(api(0), "Ada");
  });
  after(async () => {
    await cluster?.stop();
  });

  const api = (i: number) => cluster.apis[i]?.url ?? "";
  const post = async (url: string, body: Record<string, unknown>): Promise<Answer> => {
    const res = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", ...ada.auth },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Answer["body"] };
  };
  const persisted = (query: string) => ({ persistedQuery: { version: 1, sha256Hash: sha256(query) } });
  /** Waits until `url` answers the query by its hash alone. */
  const known = (url: string, query: string, operationName?: string) =>
    eventually(
      async () => {
        const answer = await post(url, { operationName, variables: {}, extensions: persisted(query) });
        return answer.body.errors?.[0]?.extensions?.code === "PERSISTED_QUERY_NOT_FOUND" ? undefined : answer;
      },
      { timeoutMs: 5000, what: "the persisted query known by its hash" },
    );

  it("registers a query through one instance and answers its hash on another, over POST and GET", async () => {
    const query = `query Mine${Date.now()} { me { id displayName } }`;
    const unknown = await post(api(0), { extensions: persisted(query) });
    assert.equal(unknown.body.errors?.[0]?.extensions?.code, "PERSISTED_QUERY_NOT_FOUND");

    const registered = await post(api(0), { query, extensions: persisted(query) });
    assert.deepEqual(registered.body.data, { me: { id: ada.id, displayName: "Ada" } });

    // Apollo stores a query while it answers: the other instance knows it a moment later.
    await known(api(1), query);

    const params = new URLSearchParams({ extensions: JSON.stringify(persisted(query)) });
    const res = await fetch(`${api(1)}/graphql?${params}`, { headers: ada.auth });
    assert.deepEqual(((await res.json()) as Answer["body"]).data, { me: { id: ada.id, displayName: "Ada" } });
  });

  it("refuses a query whose hash does not match it, and stores nothing under that hash", async () => {
    const query = "query Other { me { id } }";
    const wrong = { persistedQuery: { version: 1, sha256Hash: sha256("something else") } };
    const refused = await post(api(0), { query, extensions: wrong });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
    assert.match(refused.body.errors?.[0]?.message ?? "", /sha/);
    const after = await post(api(1), { extensions: wrong });
    assert.equal(after.body.errors?.[0]?.extensions?.code, "PERSISTED_QUERY_NOT_FOUND");
  });

  it("runs a query longer than 8 KiB but keeps it out of the cache", async () => {
    const query = `# ${"a comment that makes the query long ".repeat(300)}\nquery Long { me { id } }`;
    const answer = await post(api(0), { query, extensions: persisted(query) });
    assert.deepEqual(answer.body.data, { me: { id: ada.id } });
    // A short query registered after it is known: had the long one been stored, it would be by now.
    const short = `query Short${Date.now()} { me { id } }`;
    await post(api(0), { query: short, extensions: persisted(short) });
    await known(api(1), short);
    const again = await post(api(1), { extensions: persisted(query) });
    assert.equal(again.body.errors?.[0]?.extensions?.code, "PERSISTED_QUERY_NOT_FOUND");
  });

  it("checks a persisted query's variables and refuses its subscriptions, as for a query sent in full", async () => {
    const query = `query Page${Date.now()}($first: Int) { notifications(first: $first) { edges { cursor } } }
      subscription Live${Date.now()} { inboxEvents { type } }`;
    const pageName = /query (\w+)/.exec(query)?.[1] ?? "";
    const liveName = /subscription (\w+)/.exec(query)?.[1] ?? "";
    const first = await post(api(0), {
      query,
      operationName: pageName,
      variables: { first: 1 },
      extensions: persisted(query),
    });
    assert.equal(first.body.errors, undefined);
    await known(api(1), query, pageName);
    const loneSurrogate = await post(api(1), {
      operationName: pageName,
      variables: { first: 1, note: "\ud800" },
      extensions: persisted(query),
    });
    assert.equal(loneSurrogate.status, 400);
    assert.equal(loneSurrogate.body.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
    const live = await post(api(1), { operationName: liveName, extensions: persisted(query) });
    assert.equal(live.status, 400);
    assert.equal(live.body.errors?.[0]?.extensions?.code, "BAD_REQUEST");
  });

  it("works with Apollo Client's persisted-query link", async () => {
    const calls: { url: string; body: string }[] = [];
    const fetchSpy: typeof fetch = (input, init) => {
      calls.push({
        url: input instanceof Request ? input.url : input.toString(),
        body: typeof init?.body === "string" ? init.body : "",
      });
      return fetch(input, init);
    };
    const client = (url: string) =>
      new ApolloClient({
        cache: new InMemoryCache(),
        link: createPersistedQueryLink({ sha256 }).concat(
          new HttpLink({ uri: `${url}/graphql`, headers: ada.auth, fetch: fetchSpy }),
        ),
      });
    const first = await client(api(0)).query({ query: MeDocument, fetchPolicy: "network-only" });
    assert.equal(first.data?.me?.id, ada.id);
    // The text Apollo Client registered (its cache adds __typename), as the second instance will be asked for it.
    const sentInFull = calls.map((c) => JSON.parse(c.body) as { query?: string }).find((b) => b.query)?.query;
    assert.ok(sentInFull, "the first instance was sent the query once, in full");
    await known(api(1), sentInFull, "Me");
    const second = await client(api(1)).query({ query: MeDocument, fetchPolicy: "network-only" });
    assert.equal(second.data?.me?.id, ada.id);
    const last = calls.at(-1);
    assert.ok(last && !last.body.includes('"query"'), "the second instance got the hash alone");
  });
});
