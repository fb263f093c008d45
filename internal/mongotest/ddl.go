package mongotest

import (
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// createOptions are real create options this fake cannot honour.
var createOptions = []string{
	"capped", "size", "max", "validator", "validationLevel", "validationAction", "viewOn", "pipeline",
	"collation", "timeseries", "expireAfterSeconds", "clusteredIndex", "changeStreamPreAndPostImages",
	"storageEngine", "indexOptionDefaults", "idIndex", "encryptedFields",
}

var ddlCommands = map[string]command{
	"listCollections":  {run: listCollections, fields: []string{"filter", "nameOnly", "authorizedCollections", "cursor"}},
	"listDatabases":    {run: listDatabases, fields: []string{"filter", "nameOnly", "authorizedDatabases"}},
	"create":           {run: create, fields: createOptions},
	"drop":             {run: drop},
	"dropDatabase":     {run: dropDatabase},
	"renameCollection": {run: renameCollection, fields: []string{"to", "dropTarget", "stayTemp"}},
}

func (s *Server) sortedDBs() []*database {
	dbs := make([]*database, 0, len(s.dbs))
	for _, d := range s.dbs {
		dbs = append(dbs, d)
	}
	slices.SortFunc(dbs, func(a, b *database) int { return strings.Compare(a.name, b.name) })
	return dbs
}

func sortedColls(d *database) []*collection {
	cs := make([]*collection, 0, len(d.colls))
	for _, c := range d.colls {
		cs = append(cs, c)
	}
	sortByName(cs, func(c *collection) string { return c.name })
	return cs
}

func sortByName[T any](items []T, name func(T) string) {
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(name(a), name(b)) })
}

// filterArg compiles the query filter in field (none matches everything).
func (cx *cmdCtx) filterArg(field string) (*query.Filter, error) {
	filter, err := cx.docArg(field)
	if err != nil {
		return nil, err
	}
	return query.CompileFilter(filter)
}

func listCollections(cx *cmdCtx) (bson.D, error) {
	m, err := cx.filterArg("filter")
	if err != nil {
		return nil, err
	}
	nameOnly, _ := cx.boolArg("nameOnly")
	batchSize, hasBatch, err := cx.cursorBatchSize()
	if err != nil {
		return nil, err
	}
	type entry struct {
		name, kind string
		info       bsoncore.Document
	}
	var entries []entry
	if d := cx.s.dbs[cx.db]; d != nil {
		for _, c := range sortedColls(d) {
			info := bson.D{
				{Key: "name", Value: c.name},
				{Key: "type", Value: "collection"},
				{Key: "options", Value: bson.Raw(c.options(false))},
				{Key: "info", Value: bson.D{{Key: "readOnly", Value: false}, {Key: "uuid", Value: bson.Binary{Subtype: 4, Data: c.uuid}}}},
			}
			if c.clustered == nil { // a clustered collection has no _id index of its own
				info = append(info, bson.E{Key: "idIndex", Value: bson.Raw(c.idIndex().spec)})
			}
			entries = append(entries, entry{c.name, "collection", mustMarshal(info)})
		}
		for _, v := range sortedViews(d) {
			entries = append(entries, entry{v.name, "view", viewInfo(v)})
		}
	}
	sortByName(entries, func(e entry) string { return e.name })
	var docs []bsoncore.Document
	for _, e := range entries {
		if !m.Matches(e.info) {
			continue
		}
		info := e.info
		if nameOnly {
			info = mustMarshal(bson.D{{Key: "name", Value: e.name}, {Key: "type", Value: e.kind}})
		}
		docs = append(docs, info)
	}
	return cx.openCursor(cx.db+".$cmd.listCollections", docs, batchSize, hasBatch, false), nil
}

func listDatabases(cx *cmdCtx) (bson.D, error) {
	if cx.db != "admin" {
		return nil, errorf(codeUnauthorized, "listDatabases may only be run against the admin database.")
	}
	m, err := cx.filterArg("filter")
	if err != nil {
		return nil, err
	}
	nameOnly, _ := cx.boolArg("nameOnly")
	var list bson.A
	var total int64
	for _, d := range cx.s.sortedDBs() {
		var size int64
		for _, c := range d.colls {
			for _, r := range c.live() {
				size += int64(len(r.doc))
			}
		}
		info := mustMarshal(bson.D{{Key: "name", Value: d.name}, {Key: "sizeOnDisk", Value: size}, {Key: "empty", Value: size == 0}})
		if !m.Matches(info) {
			continue
		}
		total += size
		if nameOnly {
			info = mustMarshal(bson.D{{Key: "name", Value: d.name}})
		}
		list = append(list, bson.Raw(info))
	}
	res := bson.D{{Key: "databases", Value: append(bson.A{}, list...)}}
	if !nameOnly {
		res = append(res, bson.E{Key: "totalSize", Value: total}, bson.E{Key: "totalSizeMb", Value: total >> 20})
	}
	return res, nil
}

// create makes a collection, with changeStreamPreAndPostImages, document
// validation, a cap, a default collation or a clustered index (and its
// TTL), or a view (viewOn and pipeline).
func create(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err != nil {
		return nil, err
	}
	viewOn, isView := cx.field("viewOn")
	var opts collOptions
	if !isView {
		if opts, err = cx.createOptions(); err != nil {
			return nil, err
		}
	}
	for _, opt := range createOptions {
		v, ok := cx.field(opt)
		switch {
		case !ok || !isView || opt == "viewOn" || opt == "pipeline" || isSimpleCollation(opt, v):
		case opt == "collation":
			return nil, unsupported("a view's collation")
		default:
			return nil, errorf(codeInvalidOptions, "The option %s is not allowed for a view", opt)
		}
	}
	if _, ok := cx.field("pipeline"); ok && !isView {
		return nil, errorf(codeInvalidOptions, "'pipeline' requires 'viewOn' to also be specified")
	}
	if cx.s.collLocked(cx.db, name) != nil || cx.s.viewLocked(cx.db, name) != nil {
		return nil, errorf(codeNamespaceExists, "Collection %s.%s already exists.", cx.db, name)
	}
	if isView {
		return nil, cx.createView(name, viewOn, cx.body.Lookup("pipeline"))
	}
	_, err = cx.s.createCollLocked(cx, cx.db, name, opts)
	return nil, err
}

// dropCollLocked removes c, recording its drop event.
func (cx *cmdCtx) dropCollLocked(c *collection) {
	delete(cx.s.dbs[c.db].colls, c.name)
	cx.s.recordLocked(cx, &event{op: "drop", db: c.db, coll: c.name, uuid: c.uuid})
}

// drop succeeds on a missing collection, as on MongoDB 7.0+.
func drop(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err != nil {
		return nil, err
	}
	if v := cx.s.viewLocked(cx.db, name); v != nil {
		cx.dropView(v)
		return nil, nil
	}
	c := cx.s.collLocked(cx.db, name)
	if c == nil {
		return nil, nil
	}
	if err := cx.heldByTransactions(c); err != nil {
		return nil, err
	}
	cx.dropCollLocked(c)
	return bson.D{{Key: "nIndexesWas", Value: int32(len(c.indexes))}, {Key: "ns", Value: c.ns()}}, nil
}

// dropDatabase drops each collection, then the database: the events a
// real server emits in that order.
func dropDatabase(cx *cmdCtx) (bson.D, error) {
	d := cx.s.dbs[cx.db]
	if d == nil {
		return nil, nil
	}
	if err := cx.heldByTransactions(sortedColls(d)...); err != nil {
		return nil, err
	}
	for _, c := range sortedColls(d) {
		cx.dropCollLocked(c)
	}
	delete(cx.s.dbs, cx.db)
	cx.s.recordLocked(cx, &event{op: "dropDatabase", db: cx.db})
	return bson.D{{Key: "dropped", Value: cx.db}}, nil
}

func renameCollection(cx *cmdCtx) (bson.D, error) {
	if cx.db != "admin" {
		return nil, errorf(codeUnauthorized, "renameCollection may only be run against the admin database.")
	}
	from, _ := cx.arg.StringValueOK()
	to, _ := cx.body.Lookup("to").StringValueOK()
	fromDB, fromColl, ok1 := strings.Cut(from, ".")
	toDB, toColl, ok2 := strings.Cut(to, ".")
	if !ok1 || !ok2 {
		return nil, errorf(codeInvalidNamespace, "Invalid namespace specified '%s' or '%s'", from, to)
	}
	if err := firstErr(validCollName(toColl), validDBName(toDB)); err != nil {
		return nil, err
	}
	if fromDB != toDB {
		return nil, unsupported("renaming a collection across databases")
	}
	if err := cx.s.notView(fromDB, fromColl); err != nil {
		return nil, err
	}
	if cx.s.viewLocked(toDB, toColl) != nil {
		return nil, errorf(codeNamespaceExists, "a view already exists with that name: %s", to)
	}
	c := cx.s.collLocked(fromDB, fromColl)
	if c == nil {
		return nil, errorf(codeNamespaceNotFound, "Source collection %s does not exist", from)
	}
	if err := cx.heldByTransactions(c); err != nil {
		return nil, err
	}
	e := &event{op: "rename", db: fromDB, coll: fromColl, uuid: c.uuid, toDB: toDB, toColl: toColl}
	colls := cx.s.dbs[fromDB].colls
	if target := colls[toColl]; target != nil {
		if dropTarget, _ := cx.boolArg("dropTarget"); !dropTarget {
			return nil, errorf(codeNamespaceExists, "target namespace exists")
		}
		if err := cx.heldByTransactions(target); err != nil {
			return nil, err
		}
		// The target goes with the rename, in its one oplog entry: no drop
		// event of its own, the rename names it (operationDescription.dropTarget).
		e.dropTarget = target.uuid
	}
	delete(colls, fromColl)
	c.name = toColl
	colls[toColl] = c
	cx.s.recordLocked(cx, e)
	return nil, nil
}

// heldByTransactions makes DDL on collections that active transactions
// wrote wait for them to end, as it would wait for their locks on mongod.
func (cx *cmdCtx) heldByTransactions(colls ...*collection) error {
	for _, c := range colls {
		if cx.holdsAny(c) {
			return errBlocked{}
		}
	}
	return nil
}

func mustMarshal(d bson.D) bsoncore.Document {
	b, err := bson.Marshal(d)
	if err != nil {
		panic(err) // only called with documents built here
	}
	return b
}
