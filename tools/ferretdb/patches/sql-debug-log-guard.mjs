// FerretDB v1.24.2 logs every SQL statement at debug level, and builds the record before the level
// is checked: `l.With(args...)` formats the statement's arguments (whole JSON documents, quoted)
// and fmt.Sprintf the query, twice per statement, for a record the default log level drops. Under
// Herald's throughput benchmark that was about 10 % of FerretDB's CPU. This builds the record only
// when debug logging is on.
//
//   node sql-debug-log-guard.mjs <FerretDB module directory>
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";

const dir = path.join(process.argv[2] ?? ".", "internal/util/fsql");
// `\ttx.l.With(fields...).DebugContext(ctx, fmt.Sprintf(">>> %s", query))` and the like.
const line = /^\t(\w+)\.l\.With\(fields\.\.\.\)\.DebugContext\(ctx, (fmt\.Sprintf\("(?:>>>|<<<) %s", query\))\)$/gm;
for (const [name, expected] of [
  ["tx.go", 6],
  ["db.go", 6],
]) {
  const file = path.join(dir, name);
  const source = readFileSync(file, "utf8");
  const found = source.match(line)?.length ?? 0;
  if (found !== expected) {
    process.stderr.write(`${file}: ${found} debug log lines where ${expected} were expected; was FerretDB upgraded?\n`);
    process.exit(1);
  }
  writeFileSync(
    file,
    source.replace(
      line,
      "\tif $1.l.Enabled(ctx, slog.LevelDebug) {\n\t\t$1.l.With(fields...).DebugContext(ctx, $2)\n\t}",
    ),
  );
}
