#!/bin/sh
# Builds tools/ferretdb into the path given as $1, with the fixes in patches/ applied to FerretDB's
# own source: the module is vendored into a scratch directory, patched there, and built from it.
set -eu

out=$1
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

cp "$here/go.mod" "$here/go.sum" "$here/main.go" "$work/"
cd "$work"
go mod vendor
for fix in "$here"/patches/*.mjs; do
  node "$fix" vendor/github.com/FerretDB/FerretDB
done
go build -mod=vendor -o "$out" .
