// FerretDB v1.24.2, SQLite backend: a filter is pushed down to SQL only when it is exactly
// `{ _id: <string or ObjectId> }`. A filter naming `_id` and anything else (`{ _id, recipientId }`,
// Agenda's `{ _id, name }` on every job it saves) scanned the whole table. Every handler filters
// the rows it gets again with the whole filter (find, count, update, delete, findAndModify,
// distinct, aggregate's $match), so narrowing the rows by `_id` alone is safe; this pushes `_id`
// equality down whatever else the filter says.
//
//   node sqlite-id-pushdown.mjs <FerretDB module directory>
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";

const file = path.join(process.argv[2] ?? ".", "internal/backends/sqlite/collection.go");
const before = "if params.Filter.Len() == 1 {";
// Get is only asked of a filter that has keys: a nil filter answers Len() but not Get().
const after = "if params.Filter.Len() >= 1 {";
const source = readFileSync(file, "utf8");
const found = source.split(before).length - 1;
// Query and Explain each decide the pushdown.
if (found !== 2) {
  process.stderr.write(
    `${file}: expected the pushdown test twice (${before}), found it ${found} times; was FerretDB upgraded?\n`,
  );
  process.exit(1);
}
writeFileSync(file, source.replaceAll(before, after));
