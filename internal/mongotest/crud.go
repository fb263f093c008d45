package mongotest

import (
	"fmt"
	"time"

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
	"count": {run: count, fields: []string{"query", "limit", "skip", "hint", "collation"}},
}

// writeError is a per-statement failure of insert/update/delete, reported
// in writeErrors with the command still ok:1.
type writeError struct {
	code  int32
	msg   string
	extra bson.D // e.g. keyPattern and keyValue of a duplicate key
}

func (e *writeError) Error() string { return e.msg }

// writeErrors collects statement errors; ordered writes stop at the first.
type writeErrors struct {
	list    bson.A
	indexes []int // of the statements that failed
}

// add records err for statement i; it returns false when err is not a
// statement error and must fail the whole command.
func (w *writeErrors) add(i int, err error) bool {
	var code int32
	var msg string
	var extra bson.D
	if we, ok := err.(*writeError); ok {
		code, msg, extra = we.code, we.msg, we.extra
	} else if ce, ok := asCmdError(err); ok {
		code, msg = ce.code, ce.msg
	} else {
		return false
	}
	doc := bson.D{{Key: "index", Value: int32(i)}, {Key: "code", Value: code}, {Key: "errmsg", Value: msg}}
	w.list = append(w.list, append(doc, extra...))
	w.indexes = append(w.indexes, i)
	return true
}

// failedIn reports whether a statement in [from, to) failed.
func (w *writeErrors) failedIn(from, to int) bool {
	for _, i := range w.indexes {
		if i >= from && i < to {
			return true
		}
	}
	return false
}

func (w *writeErrors) appendTo(res bson.D) bson.D {
	if len(w.list) > 0 {
		res = append(res, bson.E{Key: "writeErrors", Value: w.list})
	}
	return res
}

// stmtResult is what one statement of a batch write did.
type stmtResult struct {
	n, modified int32
	upserted    bsoncore.Value // the _id of a document an update inserted
}

// batchResult is what a batch write did, statement by statement.
type batchResult struct {
	n, modified int32
	upserted    bson.A
	werrs       writeErrors
}

// runBatch runs fn on each statement of a batch write (insert's documents,
// update's updates, delete's deletes). Statement errors are collected for
// writeErrors, and an ordered batch, or a transaction's, stops at the
// first; any other error fails the whole command. A statement of a
// retryable write that already ran under this txnNumber does not run again:
// what it did counts.
func (cx *cmdCtx) runBatch(stmts []bsoncore.Value, ordered bool, fn func(i int, s bsoncore.Value) (stmtResult, error)) (*batchResult, error) {
	var out batchResult
	for i, s := range stmts {
		res, done := cx.sess.executedStmt(cx.retryable, i)
		if !done {
			var err error
			res, err = untilUnblocked(cx, func() (stmtResult, error) { return fn(i, s) })
			if err != nil {
				if ce, ok := asCmdError(err); ok && cx.txn != nil && transientTxnError(ce.code, false) {
					return nil, err
				}
				if !out.werrs.add(i, err) {
					return nil, err
				}
				if cx.txn != nil {
					cx.s.abortLocked(cx.txn) // a failed statement ends its transaction
					break
				}
				if ordered {
					break
				}
				continue
			}
			if cx.retryable {
				cx.sess.executed[i] = res
			}
		}
		out.n += res.n
		out.modified += res.modified
		if res.upserted.Type != 0 {
			out.upserted = append(out.upserted, bson.D{{Key: "index", Value: int32(i)}, {Key: "_id", Value: query.RawValue(res.upserted)}})
		}
	}
	return &out, nil
}

// executedStmt returns what statement i of the retryable write did if it
// already ran.
func (sess *session) executedStmt(retryable bool, i int) (stmtResult, bool) {
	if !retryable {
		return stmtResult{}, false
	}
	res, ok := sess.executed[i]
	return res, ok
}

// untilUnblocked runs a statement, and runs it again each time a
// transaction ends while one blocks it, until maxTimeMS runs out.
func untilUnblocked[T any](cx *cmdCtx, run func() (T, error)) (T, error) {
	for {
		res, err := run()
		if _, blocked := err.(errBlocked); !blocked {
			return res, err
		}
		if err := cx.awaitChange(); err != nil {
			return res, err
		}
	}
}

// awaitChange waits, without the data lock, for the next change; maxTimeMS
// running out or the client leaving ends the wait with an error.
func (cx *cmdCtx) awaitChange() error {
	for {
		deadline := cx.deadline
		if deadline.IsZero() {
			deadline = time.Now().Add(time.Minute)
		}
		if cx.waitForChange(deadline) {
			return nil
		}
		select {
		case <-cx.c.done:
			return errorf(codeInterrupted, "operation was interrupted: the client closed the connection")
		default:
		}
		if !cx.deadline.IsZero() && !time.Now().Before(cx.deadline) {
			return maxTimeExpired()
		}
	}
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

func insertCmd(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err != nil {
		return nil, err
	}
	docs, err := cx.arrayArg("documents")
	if err != nil {
		return nil, err
	}
	ordered := true
	if _, ok := cx.field("ordered"); ok {
		if ordered, err = cx.boolArg("ordered"); err != nil {
			return nil, err
		}
	}
	if len(docs) == 0 {
		return nil, errorf(codeInvalidLength, "Write batch sizes must be between 1 and 100000. Got 0 operations.")
	}
	// MongoDB 8.0 writes the documents of an insert in batches, each one
	// applyOps oplog entry: their events wait here to share a cluster time.
	var held map[int]heldInsert
	if cx.s.release.batchedInserts && cx.txn == nil && len(docs) > 1 {
		held = map[int]heldInsert{}
	}
	res, err := cx.runBatch(docs, ordered, func(i int, v bsoncore.Value) (stmtResult, error) {
		c, err := cx.s.writableCollLocked(cx, cx.db, name)
		if err != nil {
			return stmtResult{}, err
		}
		if held == nil {
			return stmtResult{n: 1}, cx.insertOne(c, v)
		}
		r, e, err := cx.storeOne(c, v)
		if err == nil {
			held[i] = heldInsert{c, r, e}
		}
		return stmtResult{n: 1}, err
	})
	if err != nil {
		return nil, err
	}
	if held != nil {
		cx.recordInsertBatches(docs, held, &res.werrs)
	}
	return res.werrs.appendTo(bson.D{{Key: "n", Value: res.n}}), nil
}

// heldInsert is an inserted document whose event waits for its batch.
type heldInsert struct {
	c *collection
	r *record
	e *event
}

// Batches of MongoDB 8.0's vectored inserts: up to internalInsertMaxBatchSize
// documents (500) or until insertVectorMaxBytes (256 KiB) is reached
// (mongo src/mongo/db/query/query_knobs and write_ops_exec.cpp).
const (
	insertBatchDocs  = 500
	insertBatchBytes = 256 << 10
)

// recordInsertBatches records the held events batch by batch: a batch
// that inserted every document is one oplog entry (one cluster time, and
// the session of a retryable write, as the applyOps of a retryable write
// carries it); one where a document failed was inserted document by
// document, as mongod falls back to then.
func (cx *cmdCtx) recordInsertBatches(docs []bsoncore.Value, held map[int]heldInsert, werrs *writeErrors) {
	flush := func(from, to int) {
		var batch []heldInsert
		for i := from; i < to; i++ {
			if h, ok := held[i]; ok {
				batch = append(batch, h)
			}
		}
		events := make([]*event, len(batch))
		for i, h := range batch {
			events[i] = h.e
		}
		if werrs.failedIn(from, to) || len(events) < 2 {
			for _, e := range events {
				cx.s.recordLocked(cx, e)
			}
		} else {
			if cx.retryable {
				for _, e := range events {
					e.lsid, e.txnNumber = cx.sess.eventLsid, cx.txnNumber
				}
			}
			cx.s.recordBatchLocked(cx, events)
		}
		for _, h := range batch {
			h.r.lastWrite = h.e.ts
		}
	}
	from, bytes := 0, 0
	for i, d := range docs {
		bytes += len(d.Data)
		if i+1-from == insertBatchDocs || bytes >= insertBatchBytes || i == len(docs)-1 {
			flush(from, i+1)
			from, bytes = i+1, 0
		}
	}
}

const codeInvalidLength = 16

// insertOne validates, stores and records one document.
func (cx *cmdCtx) insertOne(c *collection, v bsoncore.Value) error {
	r, e, err := cx.storeOne(c, v)
	if err != nil {
		return err
	}
	cx.s.recordLocked(cx, e)
	if cx.txn == nil {
		r.lastWrite = e.ts
	}
	return nil
}

// storeOne validates and stores one document, giving it an ObjectId _id
// (first, as the server stores it) when it has none, and returns its event
// to record.
func (cx *cmdCtx) storeOne(c *collection, v bsoncore.Value) (*record, *event, error) {
	d, ok := v.DocumentOK()
	if !ok {
		return nil, nil, typeError("insert.documents", v, "object")
	}
	id, err := d.LookupErr("_id")
	if err != nil {
		id = query.MarshalValue(bson.NewObjectID())
	}
	switch id.Type {
	case bsoncore.TypeArray, bsoncore.TypeRegex, bsoncore.TypeUndefined:
		return nil, nil, &writeError{code: codeInvalidIDField, msg: "The '_id' value cannot be of type " + query.TypeName(id.Type)}
	}
	doc := query.WithID(d, id)
	if len(doc) > maxBSONObjectSize {
		return nil, nil, &writeError{code: codeBadValue, msg: fmt.Sprintf("object to insert too large. size in bytes: %d, max size: %d", len(doc), maxBSONObjectSize)}
	}
	r, err := c.insert(doc, cx.txn)
	if err != nil {
		return nil, nil, err
	}
	if cx.txn != nil {
		cx.txn.touched = append(cx.txn.touched, heldRecord{c, r})
	}
	return r, &event{op: "insert", db: c.db, coll: c.name, uuid: c.uuid, docKey: idKey(doc), fullDoc: doc}, nil
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
	return scan{filter: m, sort: keys}, nil
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
	var out []*record
	for _, r := range c.visible(tx) {
		if q.filter.Matches(r.doc) {
			out = append(out, r)
		}
	}
	query.SortBy(out, func(r *record) bsoncore.Document { return r.doc }, q.sort)
	if q.skip >= int64(len(out)) {
		return nil
	}
	out = out[q.skip:]
	if q.limit > 0 && q.limit < int64(len(out)) {
		out = out[:q.limit]
	}
	return out
}

// hintedColl returns the collection name (nil if it does not exist) after
// checking the command's hint against its indexes.
func (cx *cmdCtx) hintedColl(name string) (*collection, error) {
	c := cx.s.collLocked(cx.db, name)
	if err := cx.checkHint(c); err != nil {
		return nil, err
	}
	return c, nil
}

func (cx *cmdCtx) checkHint(c *collection) error {
	h, ok := cx.field("hint")
	if !ok || c == nil {
		return nil
	}
	for _, ix := range c.indexes {
		if (h.Type == bsoncore.TypeString && h.StringValue() == ix.name) ||
			(h.Type == bsoncore.TypeEmbeddedDocument && query.Equal(h, ix.spec.Lookup("key"))) {
			return nil
		}
	}
	if d, ok := h.DocumentOK(); ok && len(query.Fields(d)) == 0 {
		return nil
	}
	return errorf(codeBadValue, "hint provided does not correspond to an existing index")
}

func find(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err != nil {
		return nil, err
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
	recs := q.run(c, cx.txn)
	docs := make([]bsoncore.Document, len(recs))
	for i, r := range recs {
		docs[i] = r.doc
		if proj != nil {
			if docs[i], err = proj.Apply(r.doc); err != nil {
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

func count(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err != nil {
		return nil, err
	}
	if err := cx.rejectOptions("collation"); err != nil {
		return nil, err
	}
	q, _, err := cx.queryArg("query", "")
	if err != nil {
		return nil, err
	}
	if q.skip, _, err = cx.intArg("skip"); err != nil {
		return nil, err
	}
	if q.limit, _, err = cx.intArg("limit"); err != nil {
		return nil, err
	}
	if q.limit < 0 {
		q.limit = -q.limit
	}
	c, err := cx.hintedColl(name)
	if err != nil {
		return nil, err
	}
	return bson.D{{Key: "n", Value: int32(len(q.run(c, cx.txn)))}}, nil
}
