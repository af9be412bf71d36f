#!/bin/sh
# Types, lint, format and schema drift: what CI insists on besides the tests.
# Run it as `npm run check`, which first makes sure Node 24 and node_modules are there.
set -eu
cd "$(dirname "$0")/.."
step() { printf '\ncheck: %s\n' "$*" >&2; }

step "typed operations (graphql-codegen)"
# The tests' and benchmarks' operations are generated, not checked in: a fresh clone has none yet.
npx graphql-codegen --config codegen.yml
step "types (tsc)"
npx tsc -p tsconfig.json --noEmit
step "lint (eslint)"
npx eslint .
step "format (prettier)"
npx prettier --check .
step "schema drift (schema/schema.graphql against the code)"
npm run --silent build
node dist/src/graphql/emit-schema.js schema/schema.graphql --check
printf 'check: all passed\n' >&2
