import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, describeConfig, loadConfig } from "../../src/config/config.js";

const valid = {
  MONGO_URL: "mongodb://user:hunter2@db:27017/herald",
  REDIS_URL: "redis://redis:6379",
  JWT_SECRET: "j".repeat(32),
  SERVICE_API_KEY: "s".repeat(16),
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  assert.fail("expected a ConfigError");
}

describe("configuration", () => {
  it("applies defaults and runs both roles unless told otherwise", () => {
    const config = loadConfig(valid);
    assert.equal(config.port, 4000);
    assert.deepEqual(config.roles, ["api", "worker"]);
    assert.equal(config.agenda.notifications, true);
    assert.equal(config.mongoTimeoutMs, 30_000, "a MongoDB operation never waits unbounded");
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.jwt));
  });

  it("names every missing variable", () => {
    const problems = problemsOf({});
    for (const name of ["MONGO_URL", "REDIS_URL", "JWT_SECRET", "SERVICE_API_KEY"]) {
      assert.ok(
        problems.some((p) => p.startsWith(`${name}: is required`)),
        `${name} in ${problems.join("; ")}`,
      );
    }
  });

  it("names invalid values without echoing them", () => {
    const problems = problemsOf({ ...valid, JWT_SECRET: "tooshort-secret", ROLES: "api,cron", PORT: "http" });
    const text = problems.join("\n");
    assert.match(text, /JWT_SECRET: must be at least 32 characters/);
    assert.match(text, /ROLES/);
    assert.match(text, /PORT/);
    assert.doesNotMatch(text, /tooshort-secret/);
  });

  it("parses ROLES as a list and treats empty values as unset", () => {
    assert.deepEqual(loadConfig({ ...valid, ROLES: " worker " }).roles, ["worker"]);
    assert.deepEqual(loadConfig({ ...valid, ROLES: "" }).roles, ["api", "worker"]);
  });

  it("describes itself for logs without secrets or URL passwords", () => {
    const text = JSON.stringify(describeConfig(loadConfig(valid)));
    assert.doesNotMatch(text, /hunter2/);
    assert.doesNotMatch(text, /jjjj|ssss/);
    assert.match(text, /mongodb:\/\/user:\*\*\*@db:27017\/herald/);
  });
});
