// Server URLs for tests. test/run.ts (npm test) starts the servers and passes their URLs in
// TEST_MONGO_URL and TEST_REDIS_URL; running a compiled test file directly needs both set by hand.

// MongoDB forbids these in database names; a bad name would fail later with a vaguer error.
const INVALID_DB_NAME = /[/\\. "$*<>:|?]/;

/** TEST_MONGO_URL with its database replaced by `dbName` (options after '?' are kept). */
export function testMongoUrl(dbName: string): string {
  if (dbName === "" || INVALID_DB_NAME.test(dbName)) {
    throw new Error(`invalid MongoDB database name ${JSON.stringify(dbName)}`);
  }
  const base = requiredEnv("TEST_MONGO_URL");
  // Not new URL(): a replica-set URL lists several host:port pairs, which WHATWG URLs reject.
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]+)(?:\/[^?]*)?(\?.*)?$/.exec(base);
  if (!match) throw new Error(`TEST_MONGO_URL is not a mongodb:// URL: ${base}`);
  const [, serverPart, query = ""] = match;
  return `${serverPart}/${dbName}${query}`;
}

export function testRedisUrl(): string {
  return requiredEnv("TEST_REDIS_URL");
}

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: run the tests with \`npm test\`, which starts FerretDB and Redis for them ` +
        "(or set TEST_MONGO_URL and TEST_REDIS_URL yourself)",
    );
  }
  return value;
}
