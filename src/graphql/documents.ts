import {
  GraphQLError,
  Kind,
  Lexer,
  Source,
  TokenKind,
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
/**
 * How deep brackets, braces and parentheses may nest. graphql-js parses by recursion: about 2,000
 * levels of `[` exhaust the stack before MAX_TOKENS is reached.
 */
export const MAX_NESTING = 64;

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
    checkNesting(query);
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

/** Walks the tokens (the lexer loops, it does not recurse) and refuses nesting past MAX_NESTING. */
function checkNesting(query: string): void {
  const lexer = new Lexer(new Source(query));
  let depth = 0;
  for (let count = 0; count <= MAX_TOKENS; count += 1) {
    const token = lexer.advance();
    if (token.kind === TokenKind.EOF) return;
    if (OPENING.has(token.kind)) {
      depth += 1;
      if (depth > MAX_NESTING) {
        throw new GraphQLError(`Syntax Error: nested more than ${MAX_NESTING} levels deep`, {
          source: lexer.source,
          positions: [token.start],
        });
      }
    } else if (CLOSING.has(token.kind)) depth -= 1;
  }
  // Past MAX_TOKENS: parse() says so.
}

const OPENING = new Set<TokenKind>([TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L]);
const CLOSING = new Set<TokenKind>([TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R]);

/**
 * What is wrong with a request's variables, if anything: nesting deeper than MAX_NESTING (graphql-js
 * coerces them by recursion), or a string that is not well-formed Unicode (a lone surrogate cannot
 * be stored as UTF-8, and would come back as U+FFFD). Walked with a stack of its own, not recursion.
 */
export function badVariables(value: unknown): string | undefined {
  const pending: [unknown, string, number][] = [[value, "variables", 0]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [item, path, depth] = next;
    if (typeof item === "string") {
      if (!item.isWellFormed()) return `${path}: text must be well-formed Unicode`;
      continue;
    }
    if (!item || typeof item !== "object") continue;
    if (depth >= MAX_NESTING) return `${path}: nested more than ${MAX_NESTING} levels deep`;
    const entries = Array.isArray(item)
      ? item.map((v, i): [string, unknown] => [`[${i}]`, v])
      : Object.entries(item).map(([k, v]): [string, unknown] => [`.${k}`, v]);
    for (const [key, child] of entries.reverse()) {
      if (!key.isWellFormed()) return `${path}: text must be well-formed Unicode`;
      pending.push([child, `${path}${key}`, depth + 1]);
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
