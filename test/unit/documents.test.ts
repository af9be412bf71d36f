import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildSchema } from "graphql";
import { readFileSync } from "node:fs";
import {
  DocumentGate,
  MAX_NESTING,
  MAX_SAME_FIELD,
  MAX_TOKENS,
  badVariables,
  boundedDocument,
} from "../../src/graphql/documents.js";

const schema = buildSchema(readFileSync(new URL("../../../schema/schema.graphql", import.meta.url), "utf8"));
const codes = (gated: ReturnType<typeof boundedDocument>) =>
  "errors" in gated ? gated.errors.map((e) => e.extensions["code"]) : [];

describe("the document gate", () => {
  it("takes a document as clients write it, fragments and repeats through them included", () => {
    const gated = new DocumentGate(schema).check(
      `query Inbox { notifications { edges { node { id ...Item } } } }
       fragment Item on Notification { id title actor { id displayName } }`,
    );
    assert.ok("document" in gated);
  });

  it(`refuses a field selected more than ${MAX_SAME_FIELD} times in one selection set, and allows ${MAX_SAME_FIELD}`, () => {
    assert.ok("document" in boundedDocument(`{ me { ${"id ".repeat(MAX_SAME_FIELD)} } }`));
    const refused = boundedDocument(`{ me { ${"id ".repeat(MAX_SAME_FIELD + 1)} } }`);
    assert.deepEqual(codes(refused), ["GRAPHQL_VALIDATION_FAILED"]);
    // An alias is the response name that counts.
    assert.deepEqual(codes(boundedDocument(`{ me { ${"x: id ".repeat(MAX_SAME_FIELD + 1)} } }`)), [
      "GRAPHQL_VALIDATION_FAILED",
    ]);
  });

  it(`stops parsing past ${MAX_TOKENS} tokens`, () => {
    const fields = (n: number) => `{ me { ${Array.from({ length: n }, (_, i) => `f${i}`).join(" ")} } }`;
    // `{ me { … } }` is five tokens around the fields.
    assert.ok("document" in boundedDocument(fields(MAX_TOKENS - 5)));
    assert.deepEqual(codes(boundedDocument(fields(MAX_TOKENS - 4))), ["GRAPHQL_PARSE_FAILED"]);
  });

  it("answers validation errors with their code, and remembers only what passed", () => {
    const gate = new DocumentGate(schema, 2);
    const wrong = gate.check("{ nope }");
    assert.ok("errors" in wrong && wrong.errors[0]?.extensions["code"] === "GRAPHQL_VALIDATION_FAILED");
    const first = gate.check("{ me { id } }");
    assert.ok("document" in first);
    const again = gate.check("{ me { id } }");
    assert.ok("document" in again && again.document === first.document, "the same document, not parsed again");
  });
});

describe("variables that would hurt", () => {
  it("names the first string holding a lone surrogate, in keys too", () => {
    assert.equal(
      badVariables({ input: { email: "ok@example.com", tags: ["fine", "bad\uD800"] } }),
      "variables.input.tags[1]: text must be well-formed Unicode",
    );
    assert.equal(badVariables({ ["k\uDC00"]: 1 }), "variables: text must be well-formed Unicode");
    assert.equal(badVariables({ text: "emoji 😀, RTL שלום, NUL \u0000" }), undefined);
    assert.equal(badVariables(undefined), undefined);
  });

  it(`refuses nesting past ${MAX_NESTING} levels, however deep, without recursion`, () => {
    const nested = (depth: number) => {
      let value: unknown = "leaf";
      for (let i = 0; i < depth; i += 1) value = [value];
      return { deep: value };
    };
    assert.equal(badVariables(nested(MAX_NESTING - 1)), undefined);
    assert.match(badVariables(nested(MAX_NESTING)) ?? "", /nested more than/);
    assert.match(badVariables(nested(100_000)) ?? "", /nested more than/);
  });
});

describe("documents nested deep", () => {
  it("are refused before the parser recurses, with a parse error that names no stack", () => {
    const query = `{ me(x: ${"[".repeat(20_000)}1${"]".repeat(20_000)}) { id } }`;
    const gated = boundedDocument(query);
    assert.ok("errors" in gated);
    assert.equal(gated.errors[0]?.extensions["code"], "GRAPHQL_PARSE_FAILED");
    assert.doesNotMatch(gated.errors[0]?.message ?? "", /stack|RangeError/i);
  });
});
