import { costLimitRule } from "@escape.tech/graphql-armor-cost-limit";
import { maxAliasesRule } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthRule } from "@escape.tech/graphql-armor-max-depth";
import type { GraphQLError, ValidationContext, ValidationRule } from "graphql";

/** Deep enough for every operation a client needs (inbox with actor, post and comment author). */
export const MAX_DEPTH = 8;
/**
 * graphql-armor's static cost: objects weigh more the deeper they sit, and a list argument written
 * inline (`first: 100`) multiplies what is below it. The usual inbox page with `first: 100` written
 * inline costs about 8,700; with `first` passed as a variable it costs under 100.
 */
export const MAX_COST = 10_000;
export const MAX_ALIASES = 15;

/**
 * A refusal is reported as a validation error (GRAPHQL_VALIDATION_FAILED). graphql-armor's default
 * throws instead, which Apollo answers with a 500 and graphql-ws with closing the whole socket.
 */
const reportInstead = {
  propagateOnRejection: false,
  onReject: [(ctx: ValidationContext | null, error: GraphQLError) => ctx?.reportError(error)],
};

/**
 * Limits that stop a single document from costing the server too much. They are validation rules,
 * so HTTP (Apollo's validationRules) and WebSocket (onSubscribe) apply the very same ones. Fragments
 * count as the fields they stand for, as clients such as Apollo's write most selections with them.
 */
export const LIMIT_RULES: readonly ValidationRule[] = [
  maxDepthRule({ n: MAX_DEPTH, flattenFragments: true, exposeLimits: true, ...reportInstead }),
  costLimitRule({ maxCost: MAX_COST, flattenFragments: true, exposeLimits: true, ...reportInstead }),
  maxAliasesRule({ n: MAX_ALIASES, exposeLimits: true, ...reportInstead }),
];

/** Items one page of a list (notifications, activity) holds at most; larger asks are BAD_USER_INPUT. */
export const MAX_PAGE_SIZE = 100;
