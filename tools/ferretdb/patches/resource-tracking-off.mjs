// FerretDB v1.24.2 tracks every iterator, cursor and transaction it opens (resource.Track): each
// goes into a runtime/pprof profile, which records the caller's stack, and gets a finalizer that
// panics the whole server if the object is collected without being closed. It is a leak detector
// for FerretDB's own tests, and in release builds it was 8 % of FerretDB's CPU under Herald's
// throughput benchmark (the stack walks). This keeps the argument checks and drops the tracking;
// Untrack, which would panic on an object never tracked, matches.
//
//   node resource-tracking-off.mjs <FerretDB module directory>
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";

const file = path.join(process.argv[2] ?? ".", "internal/util/resource/resource.go");
const fixes = [
  [
    "func Track(obj any, token *Token) {\n\tcheckArgs(obj, token)\n",
    "func Track(obj any, token *Token) {\n\tcheckArgs(obj, token)\n\tif !debugbuild.Enabled {\n\t\treturn\n\t}\n",
  ],
  [
    "func Untrack(obj any, token *Token) {\n\tcheckArgs(obj, token)\n",
    "func Untrack(obj any, token *Token) {\n\tcheckArgs(obj, token)\n\tif !debugbuild.Enabled {\n\t\treturn\n\t}\n",
  ],
];
let source = readFileSync(file, "utf8");
for (const [before, after] of fixes) {
  if (!source.includes(before)) {
    process.stderr.write(
      `${file}: the code to change is not there (${before.split("\n")[0]}); was FerretDB upgraded?\n`,
    );
    process.exit(1);
  }
  source = source.replace(before, after);
}
writeFileSync(file, source);
