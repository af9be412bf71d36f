import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { GraphQLError } from "graphql";
import { pino } from "pino";
import { ArgumentValidationError } from "type-graphql";
import { ValidationError } from "class-validator";
import { badInput, formatError, notFound } from "../../src/graphql/errors.js";

function capturingLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: pino({ level: "info" }, stream), lines };
}

/** How graphql-js hands a resolver's throw to formatError: wrapped, with the original inside. */
function thrownInResolver(original: Error): GraphQLError {
  return new GraphQLError(original.message, { path: ["me"], originalError: original });
}

describe("error masking", () => {
  it("passes Herald's own errors through with their code and field", () => {
    const { logger } = capturingLogger();
    const error = thrownInResolver(badInput("title", "must not be empty"));
    const out = formatError(error.toJSON(), error, { requestId: "r1", logger });
    assert.equal(out.message, "title: must not be empty");
    assert.deepEqual(out.extensions, { code: "BAD_USER_INPUT", field: "title" });
    const missing = thrownInResolver(notFound("Notification"));
    assert.equal(formatError(missing.toJSON(), missing, { requestId: "r1", logger }).extensions?.["code"], "NOT_FOUND");
  });

  it("masks anything unexpected, keeping driver text out and logging it with the request id", () => {
    const { logger, lines } = capturingLogger();
    const error = thrownInResolver(new Error("connect ECONNREFUSED mongodb://admin:hunter2@10.0.0.5"));
    const out = formatError(error.toJSON(), error, { requestId: "req-42", logger });
    assert.equal(out.message, "Internal server error");
    assert.deepEqual(out.extensions, { code: "INTERNAL_SERVER_ERROR", requestId: "req-42" });
    assert.deepEqual(out.path, ["me"]);
    assert.doesNotMatch(JSON.stringify(out), /hunter2|ECONNREFUSED|stack/);
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? "", /req-42/);
  });

  it("turns class-validator failures into BAD_USER_INPUT naming each field, never the value", () => {
    const { logger } = capturingLogger();
    const problem = Object.assign(new ValidationError(), {
      property: "password",
      value: "s3cr3t",
      constraints: { isLength: "must be between 8 and 128 characters" },
      children: [],
    });
    const error = thrownInResolver(new ArgumentValidationError([problem]));
    const out = formatError(error.toJSON(), error, { requestId: "r", logger });
    assert.equal(out.extensions?.["code"], "BAD_USER_INPUT");
    assert.equal(out.extensions?.["field"], "password");
    assert.doesNotMatch(JSON.stringify(out), /s3cr3t/);
  });

  it("keeps the standard codes of malformed requests", () => {
    const { logger } = capturingLogger();
    const error = new GraphQLError("Syntax Error", { extensions: { code: "GRAPHQL_PARSE_FAILED" } });
    assert.equal(
      formatError(error.toJSON(), error, { requestId: "r", logger }).extensions?.["code"],
      "GRAPHQL_PARSE_FAILED",
    );
  });
});
