import { CombinedGraphQLErrors, ServerError } from "@apollo/client/errors";

export interface ApiError {
  message: string;
  extensions?: Record<string, unknown> | undefined;
}

/** The `errors` of a GraphQL response body, whatever else it holds. */
export function graphQLErrorsIn(body: unknown): ApiError[] {
  const errors = (body as { errors?: unknown } | null | undefined)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors.filter(
    (error): error is ApiError => typeof (error as { message?: unknown } | null)?.message === "string",
  );
}

/**
 * Herald's errors, however Apollo delivered them: as GraphQL errors, or inside a ServerError when a
 * refused request answered a non-2xx status with a plain JSON body (a bad token, a rate limit).
 */
export function apiErrors(error: unknown): ApiError[] {
  if (CombinedGraphQLErrors.is(error)) return [...error.errors] as ApiError[];
  if (ServerError.is(error)) {
    try {
      return graphQLErrorsIn(JSON.parse(error.bodyText));
    } catch {
      return [];
    }
  }
  return [];
}

export function errorCode(error: unknown): string | undefined {
  const code = apiErrors(error)[0]?.extensions?.["code"];
  return typeof code === "string" ? code : undefined;
}

/** What the user reads: Herald's messages, with the wait a rate limit asks for. */
export function describeError(error: unknown): string {
  const errors = apiErrors(error);
  if (errors.length > 0) {
    return errors
      .map((e) => {
        const retryAfter = e.extensions?.["retryAfterSeconds"];
        return e.extensions?.["code"] === "RATE_LIMITED" && typeof retryAfter === "number"
          ? `${e.message.replace(/[.!]?$/, ".")} Try again in ${retryAfter} ${retryAfter === 1 ? "second" : "seconds"}.`
          : e.message;
      })
      .join(" ");
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
