import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { auditServer, type AuditResult } from "graphql-http";
import { baseEnv, startHerald, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";

/** The GraphQL-over-HTTP conformance suite that outside checkers run against Herald. */
describe("GraphQL over HTTP audit (graphql-http)", () => {
  let herald: HeraldProcess;
  let results: AuditResult[];

  before(async () => {
    herald = await startHerald({ ...baseEnv(uniqueDatabase("e2e_audit")), ROLES: "api" });
    results = await auditServer({ url: `${herald.url}/graphql` });
  });

  after(async () => {
    assert.equal(await herald.stop(), 0);
  });

  it("passes every MUST audit", () => {
    const failed = results.filter((r) => r.name.startsWith("MUST") && r.status !== "ok");
    assert.deepEqual(
      failed.map((r) => `${r.name}: ${r.status === "ok" ? "" : r.reason}`),
      [],
    );
    assert.ok(results.length > 50, "the suite ran");
  });

  it("departs from SHOULD audits only where Apollo answers malformed JSON requests with 400", () => {
    const warned = results.filter((r) => r.status !== "ok" && !r.name.startsWith("MUST")).map((r) => r.name);
    for (const name of warned) {
      assert.match(
        name,
        /200 .*(document parsing|document validation|variable coercion) failure when accepting application\/json/,
      );
    }
  });
});
