// FerretDB v1.24.2, SQLite backend: apart from `_id`, no filter reaches SQL. `createIndexes` does
// create SQLite indexes, on `_ferretdb_sjson->"field"`, but every other query read and decoded the
// whole collection and filtered it in Go: a `find({ recipientId })`, a user's unread count, a login
// by email, a fan-out page by `followeeId` all cost time proportional to the collection (at 100,000
// notifications, 6 to 10 s for one recipient's; 11 to 17 ms with this patch).
//
// This pushes one top-level equality down to SQL: `{ field: v }` or `{ field: { $eq: v } }` where v
// is a string, an ObjectId, a boolean or a date, and the field is a plain name (letters, digits,
// `_`; no dotted path). It becomes
//
//   WHERE (_ferretdb_sjson->'field' = json(?)
//          OR (_ferretdb_sjson->'field' >= '[' AND _ferretdb_sjson->'field' < '\'))
//
// with v encoded as FerretDB stores it. `->'field'` is the expression of FerretDB's index on the
// field (SQLite reads the index's `"field"` as the same string), so SQLite searches the index: an
// equality lookup and a range that holds only the documents where the field is an array (the JSON
// text of a value starts with `[` only for an array, and `\` follows `[`). Arrays stay in because
// `{ tags: "x" }` also matches `{ tags: ["x", "y"] }`. Both sides of `=` are JSON text that SQLite
// renders from the same encoder's output (a stored field and the argument go through
// sjson's same MarshalJSON), so a stored value equal to v is always selected.
//
// When several equalities qualify, it takes the first one whose field leads an index, else the
// first one. Null (which matches a missing field), numbers (int 1, long 1 and double 1.0 are equal
// but a long and a double can be written differently), regexes, documents, arrays and every other
// operator are left to Go, as before.
//
// The SQL is a narrowing, never the answer: the backend contract says a filter may be applied
// partially and every handler that passes a filter to Query (find and getMore, count, distinct,
// update, delete, findAndModify, aggregate's leading $match) filters each row it gets again with the
// whole filter. This script checks that this still holds before it patches.
//
//   node sqlite-eq-pushdown.mjs <FerretDB module directory>
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";

const root = process.argv[2] ?? ".";
const internal = path.join(root, "internal");

function fail(message) {
  process.stderr.write(`sqlite-eq-pushdown: ${message}; was FerretDB upgraded?\n`);
  process.exit(1);
}

function read(file) {
  const full = path.join(internal, file);
  if (!existsSync(full)) fail(`${full} is not there`);
  return readFileSync(full, "utf8");
}

function expectOnce(file, source, needle) {
  const found = source.split(needle).length - 1;
  if (found !== 1) fail(`${file}: expected ${JSON.stringify(needle)} once, found it ${found} times`);
}

// The index FerretDB creates for a key `field` is on `_ferretdb_sjson->"field"`: the expression the
// pushdown must spell (as `->'field'`) for SQLite to use it.
const registry = "backends/sqlite/metadata/registry.go";
const registrySource = read(registry);
expectOnce(registry, registrySource, `fields[j] = fmt.Sprintf("%q", f)`);
expectOnce(registry, registrySource, `columns[i] = fmt.Sprintf("%s->%s", DefaultColumn, strings.Join(fields, "->"))`);

// A stored field and the argument are encoded by the same function.
const sjsonFile = "handler/sjson/sjson.go";
const sjsonSource = read(sjsonFile);
expectOnce(sjsonFile, sjsonSource, "b, err := toSJSON(values[i]).MarshalJSON()");
expectOnce(sjsonFile, sjsonSource, "b, err := toSJSON(v).MarshalJSON()");

// Every caller that gives Query a filter filters the rows again with the whole filter.
const contract = "backends/collection.go";
expectOnce(contract, read(contract), "Extra documents will be filtered out by the handler.");
const refilters = {
  "msg_find.go": "iter = common.FilterIterator(iter, closer, params.Filter)",
  "msg_count.go": "iter = common.FilterIterator(iter, closer, params.Filter)",
  "msg_distinct.go": "iter := common.FilterIterator(queryRes.Iter, closer, params.Filter)",
  "msg_update.go": "iter := common.FilterIterator(res.Iter, closer, u.Filter)",
  "msg_delete.go": "if matches, err = common.FilterDocument(doc, p.Filter); err != nil {",
  "msg_findandmodify.go": "iter := common.FilterIterator(queryRes.Iter, closer, params.Query)",
  // Its filter is the pipeline's leading $match, which then runs as a stage over the rows.
  "msg_aggregate.go": "filter, sort := aggregations.GetPushdownQuery(aggregationStages)",
  // Explain returns SQLite's plan, not documents.
  "msg_explain.go": "params.Filter, params.Sort = aggregations.GetPushdownQuery(params.StagesDocs)",
};
const handlerDir = path.join(internal, "handler");
const setting = readdirSync(handlerDir)
  .filter((name) => name.endsWith(".go") && !name.endsWith("_test.go"))
  .filter((name) => readFileSync(path.join(handlerDir, name), "utf8").includes("qp.Filter = "))
  .sort();
if (JSON.stringify(setting) !== JSON.stringify(Object.keys(refilters).sort())) {
  fail(`the handlers that pass a filter to Query are now ${setting.join(", ")}`);
}
for (const [name, needle] of Object.entries(refilters)) {
  expectOnce(`handler/${name}`, read(`handler/${name}`), needle);
}
expectOnce(
  "handler/common/aggregations/stages/match.go",
  read("handler/common/aggregations/stages/match.go"),
  "return common.FilterIterator(iter, closer, m.filter), nil",
);

const helperFile = path.join(internal, "backends/sqlite/query_eq_pushdown.go");
if (existsSync(helperFile)) fail(`${helperFile} already exists`);

const collection = "backends/sqlite/collection.go";
let source = read(collection);
// Query, after the _id pushdown: anything else only when that did not apply.
const queryAnchor = "\n\n\tq += whereClause\n";
// Explain, likewise, so that explain() shows the plan the query gets.
const explainAnchor = "\n\n\torderByClause := prepareOrderByClause(params.Sort)\n";
if (source.includes("prepareEqWhereClause")) fail(`${collection} is patched already`);
expectOnce(collection, source, queryAnchor);
expectOnce(collection, source, explainAnchor);
expectOnce(collection, source, "\t\t\tfilterPushdown = true\n");

source = source.replace(
  queryAnchor,
  `

	// Herald: one top-level equality on another field (sqlite-eq-pushdown.mjs).
	if whereClause == "" {
		whereClause, args = prepareEqWhereClause(meta, params.Filter)
	}${queryAnchor}`,
);
source = source.replace(
  explainAnchor,
  `

	// Herald: one top-level equality on another field (sqlite-eq-pushdown.mjs).
	if whereClause == "" {
		whereClause, args = prepareEqWhereClause(meta, params.Filter)
		filterPushdown = whereClause != ""
	}${explainAnchor}`,
);

const helper = `// Added by Herald's tools/ferretdb/patches/sqlite-eq-pushdown.mjs; see there for why.

package sqlite

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// eqPushdownName matches the field names that may be written into SQL as they are: for those,
// SQLite reads the label 'name' of the -> operator as the JSON path $.name, and FerretDB's index
// on the field is on the same expression.
var eqPushdownName = regexp.MustCompile(\`^[A-Za-z_][A-Za-z0-9_]*$\`)

// eqPushdownField reports whether a top-level filter key may be pushed down. Names that SQLite
// resolves to a column of the table even when double-quoted (FerretDB's index DDL quotes them so)
// are left out: their index is on a different expression.
func eqPushdownField(key string) bool {
	if !eqPushdownName.MatchString(key) || strings.HasPrefix(key, backends.ReservedPrefix) {
		return false
	}

	switch strings.ToLower(key) {
	case "rowid", "oid", "_rowid_":
		return false
	}

	return true
}

// eqPushdownValue returns the sjson encoding of v when {field: v} may be pushed down: v (or the
// operand of a lone $eq) is a string, an ObjectId, a boolean or a date. A stored value that
// equals v has the same type and the same encoding.
func eqPushdownValue(v any) (string, bool) {
	if d, ok := v.(*types.Document); ok {
		if d.Len() != 1 || d.Keys()[0] != "$eq" {
			return "", false
		}

		v = d.Values()[0]
	}

	switch v.(type) {
	case string, types.ObjectID, bool, time.Time:
		return string(must.NotFail(sjson.MarshalSingleValue(v))), true
	default:
		return "", false
	}
}

// prepareEqWhereClause returns a WHERE clause selecting every row whose document may match one
// top-level equality of filter, and its arguments; or "" and nil when none qualifies. It takes the
// first qualifying field that leads an index, else the first qualifying field.
//
// The clause selects a superset of the matching documents: the field equal to the value, or
// holding an array (which may contain it). The handler filters the rows again.
func prepareEqWhereClause(meta *metadata.Collection, filter *types.Document) (string, []any) {
	keys := filter.Keys()
	values := filter.Values()

	chosen, arg := "", ""

	for i, key := range keys {
		if !eqPushdownField(key) {
			continue
		}

		a, ok := eqPushdownValue(values[i])
		if !ok {
			continue
		}

		if chosen == "" {
			chosen, arg = key, a
		}

		if eqPushdownIndexed(meta, key) {
			chosen, arg = key, a
			break
		}
	}

	if chosen == "" {
		return "", nil
	}

	expr := fmt.Sprintf("%s->'%s'", metadata.DefaultColumn, chosen)
	// The JSON text of a value starts with '[' only for an array; '\\' is the next character.
	where := fmt.Sprintf(\` WHERE (%[1]s = json(?) OR (%[1]s >= '[' AND %[1]s < '\\'))\`, expr)

	return where, []any{arg}
}

// eqPushdownIndexed reports whether an index of the collection starts with the field.
func eqPushdownIndexed(meta *metadata.Collection, key string) bool {
	for _, index := range meta.Settings.Indexes {
		if len(index.Key) > 0 && index.Key[0].Field == key {
			return true
		}
	}

	return false
}
`;

writeFileSync(path.join(internal, collection), source);
writeFileSync(helperFile, helper);
