import { costLimitRule } from "@escape.tech/graphql-armor-cost-limit";
import { maxAliasesRule } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthRule } from "@escape.tech/graphql-armor-max-depth";
import type { ValidationRule } from "graphql";

/** Deep enough for every operation a client needs (inbox with actor, post and comment author). */
export const MAX_DEPTH = 8;
/** graphql-armor's static cost: objects weigh more the deeper they sit. */
export const MAX_COST = 5000;
export const MAX_ALIASES = 15;

/**
 * Limits that stop a single document from costing the server too much. They are validation rules,
 * so HTTP (Apollo's validationRules) and WebSocket (onSubscribe) apply the very same ones, and a
 * refusal is a GRAPHQL_VALIDATION_FAILED error on both.
 */
export const LIMIT_RULES: readonly ValidationRule[] = [
  maxDepthRule({ n: MAX_DEPTH, exposeLimits: true }),
  costLimitRule({ maxCost: MAX_COST, exposeLimits: true }),
  maxAliasesRule({ n: MAX_ALIASES, exposeLimits: true }),
];
