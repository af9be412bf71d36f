// FerretDB v1.24.2, SQLite backend: apart from `_id`, no filter reaches SQL. `createIndexes` does
// create SQLite indexes, on `_ferretdb_sjson->"field"`, but every other query read and decoded the
// whole collection and filtered it in Go: a `find({ recipientId })`, a user's unread count, a login
// by email, a fan-out page by `followeeId` all cost time proportional to the collection (at 100,000
// notifications, 6 to 10 s for one recipient's; 11 to 17 ms with this patch). So did every `$in`,
// `_id: { $in }` included: batched lookups by id, the unread counts of many users at once.
//
// This pushes one top-level condition down to SQL, on a plain field name (letters, digits, `_`; no
// dotted path):
//
// - an equality, `{ field: v }` or `{ field: { $eq: v } }`, where v is a string, an ObjectId, a
//   boolean or a date, becomes
//
//     WHERE (_ferretdb_sjson->'field' = json(?)
//            OR (_ferretdb_sjson->'field' >= '[' AND _ferretdb_sjson->'field' < '\'))
//
// - a lone `{ field: { $in: [v1, v2, …] } }` whose values are all of those types, at most MAX_IN
//   (10,000) distinct ones, becomes
//
//     WHERE (_ferretdb_sjson->'field' IN (json(?), json(?), …)
//            OR (_ferretdb_sjson->'field' >= '[' AND _ferretdb_sjson->'field' < '\'))
//
//   and for `_id`, which is never an array (FerretDB refuses to store one, as MongoDB does),
//
//     WHERE _ferretdb_sjson->'_id' IN (json(?), json(?), …)
//
// - a null equality, `{ field: null }` or `{ field: { $eq: null } }`, which matches the field
//   missing, holding null, or an array holding null (FerretDB's Go filter takes a missing field as
//   null, and compares an array to null element by element), becomes
//
//     WHERE (_ferretdb_sjson->'field' IS NULL OR _ferretdb_sjson->'field' = 'null'
//            OR (_ferretdb_sjson->'field' >= '[' AND _ferretdb_sjson->'field' < '\'))
//
//   `->` gives SQL NULL for a missing key and the JSON text `null` for a null value. SQLite
//   answers it from the index as a MULTI-INDEX OR of three searches (`<expr>=?` twice, for IS NULL
//   and for = 'null', and the range). Herald's recovery sweeps (`{ notifiedAt: null, createdAt:
//   { $lt } }` and the like, on indexes that start with the null-tested field) find the few
//   documents not yet done this way instead of decoding the whole collection.
//
// with each value encoded as FerretDB stores it (duplicates, and values that encode alike, such as
// an ObjectId and its hex string, passed once). `->'field'` is the expression of FerretDB's index
// on the field (SQLite reads the index's `"field"` as the same string), `_id`'s unique index
// included, so SQLite searches the index (explain shows `SEARCH … USING INDEX … (<expr>=?)`): a
// lookup per value, and a range that holds only the documents where the field is an array (the
// JSON text of a value starts with `[` only for an array, and `\` follows `[`). Arrays stay in
// because `{ tags: "x" }` and `{ tags: { $in: ["x"] } }` also match `{ tags: ["x", "y"] }`. Both
// sides of `=` and `IN` are JSON text that SQLite renders from the same encoder's output (a stored
// field and the argument go through sjson's same MarshalJSON), so a stored value equal to one of
// the values is always selected.
//
// One condition is pushed, the first of the best kind the filter has: `_id: { $in }` (FerretDB's
// own pushdown of `_id` equality comes before all of these), then an equality, a `$in` and a null
// equality on a field that leads an index, then an equality, a `$in` and a null equality on any
// other field (a null equality comes after the others: where most documents hold no value, it
// selects many). Null inside a `$in` list, numbers (int 1, long 1 and double 1.0 are equal but a
// long and a double can be written differently), regexes, documents, arrays, an empty or longer
// `$in` list, `$in` or `$eq` beside other operators on the field, and every other operator are left
// to Go, as before.
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
// The longest `$in` pushed down, in distinct values: one SQL variable each.
const MAX_IN = 10000;

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

// `$in` matches a value equal to one of the list's (an array, when one of its elements is): a
// document that matches has the field equal to one of the values, or an array.
const filterFile = "handler/common/filter.go";
const filterSource = read(filterFile);
expectOnce(filterFile, filterSource, `case "$in":`);
expectOnce(filterFile, filterSource, "// {field: {$in: [value1, value2, ...]}}");
// `{field: null}` matches a missing field, and a value that compares equal to null (null, or an
// array holding null: Compare takes an array element by element); `{field: {$eq: null}}` compares
// a missing field as null.
expectOnce(filterFile, filterSource, "// comparing non-existent field with null returns true");
expectOnce(filterFile, filterSource, "\t\t\t\tfieldValue = types.Null\n");
const compareFile = "types/compare.go";
const compareSource = read(compareFile);
expectOnce(compareFile, compareSource, "\tcase *Array:\n\t\treturn compareArray(docValue, filterValue)\n");
// `_id` is never an array: every document written (insert, update, upsert) is validated so.
const validation = "types/document_validation.go";
expectOnce(validation, read(validation), `"The '_id' value cannot be of type array"`);
const update = "handler/common/update.go";
expectOnce(update, read(update), "if err = doc.ValidateData(); err != nil {");
expectOnce("handler/msg_insert.go", read("handler/msg_insert.go"), "if err = doc.ValidateData(); err == nil {");
// The driver's SQLite takes this many variables in one statement; a pushed `$in` uses one a value,
// and a limit one more.
const driverLib = path.join(root, "../../../modernc.org/sqlite/lib");
if (!existsSync(driverLib)) fail(`${driverLib} is not there (is the module vendored?)`);
const limits = readdirSync(driverLib)
  .filter((name) => /^sqlite_.*\.go$/.test(name))
  .map((name) => /const SQLITE_MAX_VARIABLE_NUMBER = (\d+)/.exec(readFileSync(path.join(driverLib, name), "utf8")))
  .filter((match) => match !== null)
  .map((match) => Number(match[1]));
if (limits.length === 0 || Math.min(...limits) <= MAX_IN + 1) {
  fail(`${driverLib}: SQLITE_MAX_VARIABLE_NUMBER is ${limits.join(", ") || "not found"}, not above ${MAX_IN + 1}`);
}

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

	// Herald: one top-level equality, $in or null equality (sqlite-eq-pushdown.mjs).
	if whereClause == "" {
		whereClause, args = prepareEqWhereClause(meta, params.Filter)
	}${queryAnchor}`,
);
source = source.replace(
  explainAnchor,
  `

	// Herald: one top-level equality, $in or null equality (sqlite-eq-pushdown.mjs).
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

// eqPushdownMaxIn is the longest $in list pushed down, in distinct values: each is one SQL variable,
// and SQLite takes at most SQLITE_MAX_VARIABLE_NUMBER (32766) in a statement.
const eqPushdownMaxIn = ${MAX_IN}

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

// eqPushdownScalar returns the sjson encoding of v when v is a string, an ObjectId, a boolean or a
// date. A stored value that equals v has the same type and the same encoding.
func eqPushdownScalar(v any) (string, bool) {
	switch v.(type) {
	case string, types.ObjectID, bool, time.Time:
		return string(must.NotFail(sjson.MarshalSingleValue(v))), true
	default:
		return "", false
	}
}

// The kinds of condition pushed down.
const (
	eqPushdownEq   = iota // {field: v}, {field: {$eq: v}}
	eqPushdownIn          // {field: {$in: [v1, v2, ...]}}
	eqPushdownNull        // {field: null}, {field: {$eq: null}}
)

// eqPushdownValue returns the kind of an equality to v, and the sjson encoding of v when it is not
// null.
func eqPushdownValue(v any) (args []any, kind int, ok bool) {
	if _, isNull := v.(types.NullType); isNull {
		return nil, eqPushdownNull, true
	}

	a, ok := eqPushdownScalar(v)

	return []any{a}, eqPushdownEq, ok
}

// eqPushdownCondition returns the kind of {field: cond} and the distinct sjson encodings of the
// values that it needs the field to equal, or to hold as an array element: v for a value v or a
// lone {$eq: v}, the values of a lone {$in: [...]}, none for null. ok is false for any other
// condition, when one of the values is not a string, an ObjectId, a boolean or a date (or null,
// outside a $in), and for an empty or too long list.
func eqPushdownCondition(cond any) (args []any, kind int, ok bool) {
	d, isDoc := cond.(*types.Document)
	if !isDoc {
		return eqPushdownValue(cond)
	}

	if d.Len() != 1 {
		return nil, 0, false
	}

	switch d.Keys()[0] {
	case "$eq":
		return eqPushdownValue(d.Values()[0])

	case "$in":
		list, isArray := d.Values()[0].(*types.Array)
		if !isArray || list.Len() == 0 {
			return nil, eqPushdownIn, false
		}

		seen := make(map[string]struct{}, min(list.Len(), eqPushdownMaxIn))

		for i := 0; i < list.Len(); i++ {
			a, ok := eqPushdownScalar(must.NotFail(list.Get(i)))
			if !ok {
				return nil, eqPushdownIn, false
			}

			if _, dup := seen[a]; dup {
				continue
			}

			if len(seen) == eqPushdownMaxIn {
				return nil, eqPushdownIn, false
			}

			seen[a] = struct{}{}
			args = append(args, a)
		}

		return args, eqPushdownIn, true

	default:
		return nil, 0, false
	}
}

// prepareEqWhereClause returns a WHERE clause selecting every row whose document may match one
// top-level equality or $in of filter, and its arguments; or "" and nil when none qualifies.
//
// It takes the first condition of the best kind: _id $in; an equality, a $in, then a null equality
// on a field that leads an index; an equality, a $in, then a null equality on another field.
//
// The clause selects a superset of the matching documents: the field equal to one of the values
// (for null: missing, or null), or holding an array (which may contain one), except for _id, which
// is never an array. The handler filters the rows again.
func prepareEqWhereClause(meta *metadata.Collection, filter *types.Document) (string, []any) {
	keys := filter.Keys()
	values := filter.Values()

	const none = 7

	chosen, rank, kind, args := "", none, 0, []any(nil)

	for i, key := range keys {
		if !eqPushdownField(key) {
			continue
		}

		a, k, ok := eqPushdownCondition(values[i])
		if !ok {
			continue
		}

		// _id $in first; then by kind (equality, $in, null), on an index-leading field before another.
		r := 1 + k

		switch {
		case key == "_id" && k == eqPushdownIn:
			r = 0
		case !eqPushdownIndexed(meta, key):
			r += 3
		}

		if r < rank {
			chosen, rank, kind, args = key, r, k, a
		}

		if rank == 0 {
			break
		}
	}

	if rank == none {
		return "", nil
	}

	expr := fmt.Sprintf("%s->'%s'", metadata.DefaultColumn, chosen)

	// The JSON text of a value starts with '[' only for an array; '\\' is the next character.
	arrays := fmt.Sprintf(\`(%[1]s >= '[' AND %[1]s < '\\')\`, expr)

	switch kind {
	case eqPushdownEq:
		return fmt.Sprintf(\` WHERE (%s = json(?) OR %s)\`, expr, arrays), args
	case eqPushdownNull:
		// Missing (SQL NULL), null (the JSON text null), or an array.
		return fmt.Sprintf(\` WHERE (%[1]s IS NULL OR %[1]s = 'null' OR %[2]s)\`, expr, arrays), nil
	}

	list := strings.Repeat(", json(?)", len(args))[2:]

	if chosen == "_id" {
		return fmt.Sprintf(\` WHERE %s IN (%s)\`, expr, list), args
	}

	return fmt.Sprintf(\` WHERE (%s IN (%s) OR %s)\`, expr, list, arrays), args
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
