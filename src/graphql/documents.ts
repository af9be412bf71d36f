import {
  GraphQLError,
  Kind,
  parse,
  specifiedRules,
  validate,
  visit,
  type DocumentNode,
  type GraphQLSchema,
} from "graphql";
import { LIMIT_RULES } from "./limits.js";

/**
 * Tokens one document may hold: GraphiQL's introspection query is about 300, the largest operation
 * of a client a few hundred. Parsing stops at the limit, so a huge document costs no more than this.
 */
export const MAX_TOKENS = 2000;
/**
 * Times one selection set may select the same field (response name) directly. graphql-js compares
 * every pair of same-named fields to check they can merge: 1,000 copies of one field cost 100 ms of
 * validation, 2,000 cost 450 ms. Clients select a field once, twice when a fragment repeats it.
 */
export const MAX_SAME_FIELD = 5;

/** What the gate answers: a document ready to execute, or the errors to send instead. */
export type GatedDocument = { document: DocumentNode } | { errors: GraphQLError[] };

/**
 * Parses and validates documents for both transports, with bounds checked before the validation
 * rules run, and keeps the documents that passed by their text: clients send the same few over and
 * over (a fleet resubscribing after a deploy), and validation depends on the document and the
 * schema alone.
 */
export class DocumentGate {
  private readonly valid = new Map<string, DocumentNode>();

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly kept = 500,
  ) {}

  check(query: string): GatedDocument {
    const known = this.valid.get(query);
    if (known) {
      // Most recently used last: the oldest goes first when the cache is full.
      this.valid.delete(query);
      this.valid.set(query, known);
      return { document: known };
    }
    const bounded = boundedDocument(query);
    if ("errors" in bounded) return bounded;
    const errors = validate(this.schema, bounded.document, [...specifiedRules, ...LIMIT_RULES]);
    if (errors.length > 0) return { errors: errors.map((e) => withCode(e, "GRAPHQL_VALIDATION_FAILED")) };
    if (this.valid.size >= this.kept) this.valid.delete(this.valid.keys().next().value ?? "");
    this.valid.set(query, bounded.document);
    return bounded;
  }
}

/**
 * Parses `query` within MAX_TOKENS and refuses what would make validation expensive or store text
 * that is not Unicode. Runs before Apollo's own parsing and validation over HTTP too.
 */
export function boundedDocument(query: string): GatedDocument {
  let document: DocumentNode;
  try {
    document = parse(query, { maxTokens: MAX_TOKENS });
  } catch (err) {
    return { errors: [withCode(err, "GRAPHQL_PARSE_FAILED")] };
  }
  const errors: GraphQLError[] = [];
  visit(document, {
    SelectionSet(node) {
      const seen = new Map<string, number>();
      for (const selection of node.selections) {
        if (selection.kind !== Kind.FIELD) continue;
        const name = selection.alias?.value ?? selection.name.value;
        const times = (seen.get(name) ?? 0) + 1;
        seen.set(name, times);
        if (times === MAX_SAME_FIELD + 1) {
          errors.push(
            withCode(
              new GraphQLError(`"${name}" is selected more than ${MAX_SAME_FIELD} times in one selection set`, {
                nodes: selection,
              }),
              "GRAPHQL_VALIDATION_FAILED",
            ),
          );
        }
      }
    },
    StringValue(node) {
      if (!node.value.isWellFormed()) {
        errors.push(
          withCode(
            new GraphQLError("A string holds a lone surrogate: text must be well-formed Unicode", { nodes: node }),
            "BAD_USER_INPUT",
          ),
        );
      }
    },
  });
  return errors.length > 0 ? { errors } : { document };
}

/**
 * The path of the first string in `value` (a request's variables) that is not well-formed Unicode:
 * a lone surrogate cannot be stored as UTF-8, and would come back as U+FFFD.
 */
export function illFormedText(value: unknown, path = "variables"): string | undefined {
  if (typeof value === "string") return value.isWellFormed() ? undefined : path;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = illFormedText(item, `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  if (value && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      const found = illFormedText(key, path) ?? illFormedText(item, `${path}.${key}`);
      if (found) return found;
    }
  }
  return undefined;
}

export function withCode(err: unknown, code: string): GraphQLError {
  const source = err instanceof GraphQLError ? err : new GraphQLError(String(err));
  return new GraphQLError(source.message, {
    nodes: source.nodes ?? null,
    source: source.source ?? null,
    positions: source.positions ?? null,
    extensions: { ...source.extensions, code },
  });
}
