import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { unwrapResolverError } from "@apollo/server/errors";
import { ArgumentValidationError } from "type-graphql";
import type { ValidationError } from "class-validator";
import type { Logger } from "../infra/logger.js";

/** The closed set of codes Herald's own rules use (docs/api.md lists them). */
export enum ErrorCode {
  UNAUTHENTICATED = "UNAUTHENTICATED",
  FORBIDDEN = "FORBIDDEN",
  NOT_FOUND = "NOT_FOUND",
  BAD_USER_INPUT = "BAD_USER_INPUT",
  CONFLICT = "CONFLICT",
  RATE_LIMITED = "RATE_LIMITED",
  INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR",
}

/** Codes graphql-js and Apollo assign to malformed requests; they describe the request, not us. */
const REQUEST_ERROR_CODES = new Set([
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_REQUEST",
  "BAD_USER_INPUT",
  "PERSISTED_QUERY_NOT_FOUND",
  "PERSISTED_QUERY_NOT_SUPPORTED",
  "OPERATION_RESOLUTION_FAILURE",
]);

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.RATE_LIMITED]: 429,
};

/** An expected failure: its message and code reach the client as they are. */
export class HeraldError extends GraphQLError {
  constructor(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}) {
    const status = HTTP_STATUS[code];
    super(message, { extensions: { code, ...extensions, ...(status ? { http: { status } } : {}) } });
    this.name = "HeraldError";
  }
}

export const unauthenticated = (message = "Sign in first: send a valid bearer token") =>
  new HeraldError(ErrorCode.UNAUTHENTICATED, message);
export const forbidden = (message: string) => new HeraldError(ErrorCode.FORBIDDEN, message);
export const notFound = (what: string) => new HeraldError(ErrorCode.NOT_FOUND, `${what} not found`);
export const conflict = (message: string, field?: string) =>
  new HeraldError(ErrorCode.CONFLICT, message, field ? { field } : {});
export const badInput = (field: string, message: string) =>
  new HeraldError(ErrorCode.BAD_USER_INPUT, `${field}: ${message}`, { field });

/** A refusal by a limit: when to try again, also as HTTP 429 with Retry-After for a refused request. */
export class RateLimitedError extends HeraldError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(ErrorCode.RATE_LIMITED, message, { retryAfterSeconds });
    // Apollo reads the status and headers of a refused request here (its headers must be a Map).
    (this.extensions as Record<string, unknown>)["http"] = {
      status: 429,
      headers: new Map([["retry-after", String(retryAfterSeconds)]]),
    };
  }
}
export const rateLimited = (message: string, retryAfterSeconds: number) =>
  new RateLimitedError(message, Math.max(1, Math.ceil(retryAfterSeconds)));

const MASKED_MESSAGE = "Internal server error";

/**
 * Shapes every error a client sees, over HTTP and WebSocket alike: Herald's own errors and request
 * errors pass; class-validator failures become BAD_USER_INPUT naming the field (never echoing the
 * value: it may be a password); anything else is masked and logged with the request id.
 */
export function formatError(
  formatted: GraphQLFormattedError,
  error: unknown,
  scope: { requestId: string; logger: Logger },
): GraphQLFormattedError {
  const original = unwrapResolverError(error);
  if (original instanceof ArgumentValidationError) return validationFailure(formatted, original);
  if (original instanceof HeraldError) return withoutHttp(formatted);
  const code = formatted.extensions?.["code"];
  if (original instanceof GraphQLError && typeof code === "string" && REQUEST_ERROR_CODES.has(code)) {
    return withoutHttp(formatted);
  }
  // An error of the request itself, raised before any resolver ran (so with no path): variables
  // that do not coerce, too many of those, an operation name that names nothing. Apollo codes some
  // of these over HTTP; graphql-ws passes graphql-js's errors through as they are.
  // (Apollo codes an uncoded one INTERNAL_SERVER_ERROR; one wrapping an exception stays masked.)
  if (original instanceof GraphQLError && !original.path && (code === undefined || !original.originalError)) {
    return { ...formatted, extensions: { code: ErrorCode.BAD_USER_INPUT } };
  }
  scope.logger.error({ err: original, requestId: scope.requestId, path: formatted.path }, "unexpected error");
  return {
    message: MASKED_MESSAGE,
    ...(formatted.locations ? { locations: formatted.locations } : {}),
    ...(formatted.path ? { path: formatted.path } : {}),
    extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR, requestId: scope.requestId },
  };
}

function validationFailure(formatted: GraphQLFormattedError, error: ArgumentValidationError): GraphQLFormattedError {
  const problems = flatten(error.extensions["validationErrors"]);
  const first = problems[0];
  return {
    message: first ? `${first.field}: ${first.message}` : "Invalid input",
    ...(formatted.locations ? { locations: formatted.locations } : {}),
    ...(formatted.path ? { path: formatted.path } : {}),
    extensions: {
      code: ErrorCode.BAD_USER_INPUT,
      field: first?.field,
      fields: problems,
    },
  };
}

function flatten(errors: ValidationError[] = [], prefix = ""): { field: string; message: string }[] {
  return errors.flatMap((e) => {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {}).map((message) => ({ field, message }));
    return [...own, ...flatten(e.children, field)];
  });
}

/** `extensions.http` only sets Apollo's status code; it is not part of the contract. */
function withoutHttp(formatted: GraphQLFormattedError): GraphQLFormattedError {
  if (!formatted.extensions || !("http" in formatted.extensions)) return formatted;
  const { http: _http, ...extensions } = formatted.extensions;
  return { ...formatted, extensions };
}
