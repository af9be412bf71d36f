// FerretDB v1.24.2, SQLite backend: every collection has a unique index on the expression
// `_ferretdb_sjson->"_id"`, but queries, updates and deletes by _id filter on
// `_ferretdb_sjson->'$._id'`. SQLite uses an expression index only for the same expression, so each
// of them scanned the whole table (85 ms per lookup at 10,000 documents, growing with the
// collection). Both spellings select the same value; this makes the queries use the index's.
//
//   node sqlite-id-index.mjs <FerretDB module directory>
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";

const file = path.join(process.argv[2] ?? ".", "internal/backends/sqlite/metadata/metadata.go");
const before = `IDColumn = DefaultColumn + "->'$._id'"`;
const after = `IDColumn = DefaultColumn + "->'_id'"`;
const source = readFileSync(file, "utf8");
if (!source.includes(before)) {
  process.stderr.write(`${file}: the line to fix is not there (${before}); was FerretDB upgraded?\n`);
  process.exit(1);
}
writeFileSync(file, source.replace(before, after));
