package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

var crudCommands = map[string]command{
	"insert": {run: insertCmd, write: true, fields: []string{"documents", "ordered", "bypassDocumentValidation"}},
	"update": {run: updateCmd, write: true, fields: []string{"updates", "ordered", "bypassDocumentValidation", "let"}},
	"delete": {run: deleteCmd, write: true, fields: []string{"deletes", "ordered", "let"}},
	"findAndModify": {run: findAndModify, write: true, fields: []string{
		"query", "sort", "remove", "update", "new", "fields", "upsert", "bypassDocumentValidation",
		"arrayFilters", "collation", "hint", "let"}},
	"find": {run: find, fields: []string{
		"filter", "sort", "projection", "skip", "limit", "batchSize", "singleBatch", "hint",
		"allowDiskUse", "noCursorTimeout", "allowPartialResults", "collation", "let", "tailable",
		"awaitData", "returnKey", "showRecordId", "min", "max", "oplogReplay", "readOnce"}},
}

// rejectOptions refuses options that would change results if ignored.
func (cx *cmdCtx) rejectOptions(names ...string) error {
	for _, n := range names {
		if v, ok := cx.field(n); ok && !isSimpleCollation(n, v) {
			return unsupported("the %s option of %s", n, cx.name)
		}
	}
	return nil
}

func isSimpleCollation(name string, v bsoncore.Value) bool {
	return name == "collation" && v.Type == bsoncore.TypeEmbeddedDocument && v.Document().Lookup("locale").StringValue() == "simple"
}

func idKey(doc bsoncore.Document) bsoncore.Document {
	return query.BuildDoc([]query.Field{{Key: "_id", Val: doc.Lookup("_id")}})
}

// scan is a parsed filter + sort + skip + limit over one collection.
type scan struct {
	filter *query.Filter
	sort   []query.SortKey
	skip   int64
	limit  int64 // 0: none
	// id is the _id the filter asks for when it is {_id: <value>} alone: then the
	// _id index finds the document, as mongod's IDHACK plan does, not a scan.
	id bsoncore.Value
}

func parseQuery(filter, sort bsoncore.Document) (scan, error) {
	m, err := query.CompileFilter(filter)
	if err != nil {
		return scan{}, err
	}
	keys, err := query.CompileSort(sort)
	if err != nil {
		return scan{}, err
	}
	return scan{filter: m, sort: keys, id: idEquality(filter)}, nil
}

// idEquality is v of a filter {_id: v} where v is compared for equality (not an
// operator document, an array or a regular expression), else a zero Value.
func idEquality(filter bsoncore.Document) bsoncore.Value {
	fields := query.Fields(filter)
	if len(fields) != 1 || fields[0].Key != "_id" {
		return bsoncore.Value{}
	}
	switch v := fields[0].Val; v.Type {
	case bsoncore.TypeEmbeddedDocument, bsoncore.TypeArray, bsoncore.TypeRegex:
		return bsoncore.Value{}
	default:
		return v
	}
}

// queryArg compiles the command's filter (in filterField) and, unless
// sortField is empty, its sort into a query; it also returns the filter.
func (cx *cmdCtx) queryArg(filterField, sortField string) (scan, bsoncore.Document, error) {
	filter, err := cx.docArg(filterField)
	if err != nil {
		return scan{}, nil, err
	}
	var sort bsoncore.Document
	if sortField != "" {
		if sort, err = cx.docArg(sortField); err != nil {
			return scan{}, nil, err
		}
	}
	q, err := parseQuery(filter, sort)
	return q, filter, err
}

// run returns the matching records as the transaction tx (nil: none) sees
// them, in order (natural order without a sort).
func (q scan) run(c *collection, tx *transaction) []*record {
	if c == nil {
		return nil
	}
	records := func() []*record {
		if q.id.Type == 0 {
			return c.visible(tx)
		}
		// A record a transaction holds has versions the scan sorts out.
		switch r := c.ids[idIndexKey(q.id)]; {
		case r == nil:
			return nil
		case r.txn == nil:
			return []*record{r}
		}
		return c.visible(tx)
	}()
	return scanItems(q, records, func(r *record) bsoncore.Document { return r.doc })
}

// scanItems filters, sorts, skips and limits items by their documents.
func scanItems[T any](q scan, items []T, doc func(T) bsoncore.Document) []T {
	var out []T
	for _, it := range items {
		if q.filter.Matches(doc(it)) {
			out = append(out, it)
		}
	}
	query.SortBy(out, doc, q.sort)
	if q.skip >= int64(len(out)) {
		return nil
	}
	out = out[q.skip:]
	if q.limit > 0 && q.limit < int64(len(out)) {
		out = out[:q.limit]
	}
	return out
}

// hintedColl returns the collection name (nil if it does not exist); a
// hint, which only chooses an index, is refused (115) rather than ignored.
func (cx *cmdCtx) hintedColl(name string) (*collection, error) {
	if err := cx.rejectOptions("hint"); err != nil {
		return nil, err
	}
	return cx.s.collLocked(cx.db, name), nil
}

func find(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err != nil {
		return nil, err
	}
	if cx.isOplog() {
		return cx.findOplog()
	}
	if err := cx.rejectOptions("collation", "let", "tailable", "awaitData", "returnKey", "showRecordId", "min", "max"); err != nil {
		return nil, err
	}
	q, _, err := cx.queryArg("filter", "sort")
	if err != nil {
		return nil, err
	}
	skip, _, err := cx.intArg("skip")
	if err != nil || skip < 0 {
		return nil, firstErr(err, errorf(51024, "BSON field 'skip' value must be >= 0, actual value '%d'", skip))
	}
	limit, _, err := cx.intArg("limit")
	if err != nil {
		return nil, err
	}
	single, err := cx.boolArg("singleBatch")
	if err != nil {
		return nil, err
	}
	if limit < 0 { // legacy negative limit: one batch of |limit|
		limit, single = -limit, true
	}
	q.skip, q.limit = skip, limit
	batchSize, hasBatch, err := batchSizeOf("find.batchSize", cx.body.Lookup("batchSize"))
	if err != nil {
		return nil, err
	}
	proj, err := cx.projectionArg("projection")
	if err != nil {
		return nil, err
	}
	c, err := cx.hintedColl(name)
	if err != nil {
		return nil, err
	}
	var docs []bsoncore.Document
	if cx.s.viewLocked(cx.db, name) != nil {
		// A find on a view is its pipeline, then the find's filter, sort,
		// skip, limit and projection, as mongod rewrites it.
		all, _, err := cx.readDocs(name)
		if err != nil {
			return nil, err
		}
		docs = scanItems(q, all, func(d bsoncore.Document) bsoncore.Document { return d })
	} else {
		for _, r := range q.run(c, cx.txn) {
			docs = append(docs, r.doc)
		}
	}
	if proj != nil {
		for i, doc := range docs {
			if docs[i], err = proj.Apply(doc); err != nil {
				return nil, err
			}
		}
	}
	if limit > 0 && (!hasBatch || batchSize > int(limit)) {
		batchSize, hasBatch = int(limit), true
	}
	return cx.openCursor(cx.db+"."+name, docs, batchSize, hasBatch, single), nil
}

// projectionArg compiles the find-style projection in field; nil when there
// is none or it is empty.
func (cx *cmdCtx) projectionArg(field string) (*query.Projection, error) {
	p, err := cx.docArg(field)
	if err != nil || len(query.Fields(p)) == 0 {
		return nil, err
	}
	return query.CompileProjection(p, true)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
