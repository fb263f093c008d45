package mongotest

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// claimAll claims every record a statement will write before it writes
// any, so that a statement blocked by a transaction has changed nothing
// when it runs again.
func (cx *cmdCtx) claimAll(c *collection, recs []*record) error {
	for _, r := range recs {
		if err := cx.claim(c, r); err != nil {
			return err
		}
	}
	return nil
}

// updateRecords applies up to recs, claimed, one after the other as
// mongod's multi-update does (what one wrote counts for the unique keys of
// the next, and a failure leaves those before it written), and records each
// change event: "replace" with the full document, or "update" with the
// update description. It returns how many documents changed.
//
// filter is the statement's query: its match in an array is where the
// positional operator ($) applies.
func (cx *cmdCtx) updateRecords(c *collection, recs []*record, up *query.Update, filter *query.Filter) (modified int32, err error) {
	type change struct {
		r    *record
		doc  bsoncore.Document
		desc *query.Description
	}
	var changes []change
	var failed error // the update cannot apply to the document after the changes
	now := time.Now()
	for _, r := range recs {
		opts := query.ApplyOptions{Now: now}
		if up.Positional() {
			opts.Matched = filter.MatchedIndex(r.doc)
		}
		doc, desc, err := up.Apply(r.doc, opts)
		if err != nil {
			failed = err
			break
		}
		if string(doc) == string(r.doc) {
			continue // a no-op write changes nothing and records no event
		}
		if err := c.validation.check(doc, r.doc, cx); err != nil {
			failed = err
			break
		}
		// A statement that waits for a transaction runs again whole, so it
		// must find out before it writes anything; whether a key is held by
		// a transaction does not depend on this statement's own writes.
		if err := c.checkKeys(doc, r, cx.txn); isBlocked(err) {
			return 0, err
		}
		changes = append(changes, change{r, doc, desc})
	}
	for _, ch := range changes {
		if err := c.checkKeys(ch.doc, ch.r, cx.txn); err != nil {
			return modified, err
		}
		old := ch.r.doc
		ch.r.doc = ch.doc // the _id cannot change: the _id index stays as it is
		e := &event{op: "update", db: c.db, coll: c.name, uuid: c.uuid, docKey: idKey(ch.doc)}
		if ch.desc == nil {
			e.op, e.fullDoc = "replace", ch.doc
		} else {
			e.updateDesc = ch.desc
		}
		if c.images {
			e.preImage = old
			if ch.desc != nil {
				e.postImage = ch.doc
			}
		}
		cx.s.recordLocked(cx, e)
		if cx.txn == nil {
			ch.r.lastWrite = e.ts
		}
		modified++
	}
	return modified, failed
}

// upsert inserts into collection name (created if need be) the document an
// update with upsert:true creates when nothing matched: the query's
// equality fields, then the update
// (https://www.mongodb.com/docs/manual/reference/method/db.collection.update/#upsert-behavior).
func (cx *cmdCtx) upsert(name string, filter bsoncore.Document, up *query.Update) (bsoncore.Document, error) {
	c, err := cx.s.writableCollLocked(cx, cx.db, name)
	if err != nil {
		return nil, err
	}
	base := query.UpsertBase(filter, up.IsReplacement())
	doc, _, err := up.Apply(base, query.ApplyOptions{Inserting: true, Now: time.Now()})
	if err != nil {
		return nil, err
	}
	if err := cx.insertOne(c, query.DocValue(doc)); err != nil {
		return nil, err
	}
	inserted := c.records[len(c.records)-1].doc
	return inserted, nil
}

// deleteBatchDocs is how many documents mongod 6.1+ deletes in one batch,
// one applyOps oplog entry whose events share a cluster time
// (batchedDeletesTargetBatchDocs, 10 by default:
// https://jira.mongodb.org/browse/SERVER-63044, https://jira.mongodb.org/browse/SERVER-76177).
const deleteBatchDocs = 10

// deleteLocked removes recs, claimed, from c and records their delete
// events; cx is nil for the TTL monitor's deletions. A multi-document
// delete outside a transaction is batched as mongod batches it. In a
// transaction, the records stay, held, until the commit.
func (s *Server) deleteLocked(cx *cmdCtx, c *collection, recs []*record, multi bool) {
	var events []*event
	for _, r := range recs {
		if cx != nil && cx.txn != nil {
			r.pendingDelete = true
		} else {
			c.remove(r)
		}
		e := &event{op: "delete", db: c.db, coll: c.name, uuid: c.uuid, docKey: idKey(r.doc)}
		if c.images {
			e.preImage = r.doc
		}
		events = append(events, e)
	}
	if !multi {
		for _, e := range events {
			s.recordLocked(cx, e)
		}
		return
	}
	for len(events) > 0 {
		n := min(deleteBatchDocs, len(events))
		s.recordBatchLocked(cx, events[:n])
		events = events[n:]
	}
}

// statements reads what update and delete share: the target collection,
// the statements in field, and whether the batch is ordered (the default).
func (cx *cmdCtx) statements(field string) (name string, stmts []bsoncore.Value, ordered bool, err error) {
	if name, err = cx.collName(); err != nil {
		return "", nil, false, err
	}
	if err = cx.s.notView(cx.db, name); err != nil {
		return "", nil, false, err
	}
	if err = notSystemViews(name); err != nil {
		return "", nil, false, err
	}
	if err = cx.rejectOptions("let"); err != nil {
		return "", nil, false, err
	}
	if stmts, err = cx.arrayArg(field); err != nil {
		return "", nil, false, err
	}
	ordered = cx.body.Lookup("ordered").Type == 0 || query.Truthy(cx.body.Lookup("ordered"))
	return name, stmts, ordered, nil
}

func updateCmd(cx *cmdCtx) (bson.D, error) {
	name, stmts, ordered, err := cx.statements("updates")
	if err != nil {
		return nil, err
	}
	res, err := cx.runBatch(stmts, ordered, func(_ int, s bsoncore.Value) (stmtResult, error) { return cx.updateStatement(name, s) })
	if err != nil {
		return nil, err
	}
	out := bson.D{{Key: "n", Value: res.n}, {Key: "nModified", Value: res.modified}}
	if len(res.upserted) > 0 {
		out = append(out, bson.E{Key: "upserted", Value: res.upserted})
	}
	return res.werrs.appendTo(out), nil
}

func (cx *cmdCtx) updateStatement(name string, s bsoncore.Value) (stmtResult, error) {
	var res stmtResult
	d, ok := s.DocumentOK()
	if !ok {
		return res, typeError("update.updates", s, "object")
	}
	for _, f := range query.Fields(d) {
		switch f.Key {
		case "q", "u", "upsert", "multi", "arrayFilters":
		case "collation":
			if !isSimpleCollation(f.Key, f.Val) {
				return res, unsupported("the collation option of update")
			}
		case "c", "sort", "hint":
			return res, unsupported("the %s option of update", f.Key)
		default:
			return res, errorf(codeIDLUnknownField, "BSON field 'update.updates.%s' is an unknown field.", f.Key)
		}
	}
	filter, _ := d.Lookup("q").DocumentOK()
	up, err := query.CompileUpdate(d.Lookup("u"), d.Lookup("arrayFilters"))
	if err != nil {
		return res, err
	}
	multi, upsert := query.Truthy(d.Lookup("multi")), query.Truthy(d.Lookup("upsert"))
	if multi && up.IsReplacement() {
		return res, errorf(codeFailedToParse, "multi update is not supported for replacement-style update")
	}
	q, err := parseQuery(filter, nil)
	if err != nil {
		return res, err
	}
	c := cx.s.collLocked(cx.db, name)
	if !multi {
		q.limit = 1
	}
	recs := q.run(c, cx.txn)
	if len(recs) == 0 && upsert {
		doc, err := cx.upsert(name, filter, up)
		if err != nil {
			return res, err
		}
		return stmtResult{n: 1, upserted: doc.Lookup("_id")}, nil
	}
	if err := cx.claimAll(c, recs); err != nil {
		return res, err
	}
	modified, err := cx.updateRecords(c, recs, up, q.filter)
	return stmtResult{n: int32(len(recs)), modified: modified}, err
}

func deleteCmd(cx *cmdCtx) (bson.D, error) {
	name, stmts, ordered, err := cx.statements("deletes")
	if err != nil {
		return nil, err
	}
	res, err := cx.runBatch(stmts, ordered, func(_ int, s bsoncore.Value) (stmtResult, error) { return cx.deleteStatement(name, s) })
	if err != nil {
		return nil, err
	}
	return res.werrs.appendTo(bson.D{{Key: "n", Value: res.n}}), nil
}

func (cx *cmdCtx) deleteStatement(name string, s bsoncore.Value) (stmtResult, error) {
	d, ok := s.DocumentOK()
	if !ok {
		return stmtResult{}, typeError("delete.deletes", s, "object")
	}
	for _, f := range query.Fields(d) {
		switch f.Key {
		case "q", "limit":
		case "hint":
			return stmtResult{}, unsupported("the hint option of delete")
		case "collation":
			if !isSimpleCollation(f.Key, f.Val) {
				return stmtResult{}, unsupported("the collation option of delete")
			}
		default:
			return stmtResult{}, errorf(codeIDLUnknownField, "BSON field 'delete.deletes.%s' is an unknown field.", f.Key)
		}
	}
	filter, _ := d.Lookup("q").DocumentOK()
	q, err := parseQuery(filter, nil)
	if err != nil {
		return stmtResult{}, err
	}
	limit := d.Lookup("limit")
	if limit.IsNumber() && limit.AsFloat64() != 0 && limit.AsFloat64() != 1 {
		return stmtResult{}, errorf(codeFailedToParse, "The limit field in delete objects must be 0 or 1. Got %s", limit)
	}
	multi := !query.Truthy(limit)
	if !multi {
		q.limit = 1
	}
	c := cx.s.collLocked(cx.db, name)
	recs := q.run(c, cx.txn)
	if err := cx.claimAll(c, recs); err != nil {
		return stmtResult{}, err
	}
	cx.s.deleteLocked(cx, c, recs, multi)
	return stmtResult{n: int32(len(recs))}, nil
}

func findAndModify(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err != nil {
		return nil, err
	}
	if err := cx.s.notView(cx.db, name); err != nil {
		return nil, err
	}
	if err := notSystemViews(name); err != nil {
		return nil, err
	}
	if err := cx.rejectOptions("collation", "let"); err != nil {
		return nil, err
	}
	q, filter, err := cx.queryArg("query", "sort")
	if err != nil {
		return nil, err
	}
	q.limit = 1
	remove, _ := cx.boolArg("remove")
	returnNew, _ := cx.boolArg("new")
	upsert, _ := cx.boolArg("upsert")
	updateArg, hasUpdate := cx.field("update")
	if remove == hasUpdate {
		return nil, errorf(codeFailedToParse, "Either an update or remove=true must be specified")
	}
	proj, err := cx.projectionArg("fields")
	if err != nil {
		return nil, err
	}
	if cx.retryable && cx.sess.reply != nil {
		return cx.sess.reply, nil // a retry of what already ran
	}
	c, err := cx.hintedColl(name)
	if err != nil {
		return nil, err
	}
	recs := q.run(c, cx.txn)
	if err := cx.claimAll(c, recs); err != nil {
		return nil, err
	}
	lastError := bson.D{{Key: "n", Value: int32(len(recs))}}
	var value bsoncore.Document
	switch {
	case remove:
		if len(recs) == 1 {
			value = recs[0].doc
			cx.s.deleteLocked(cx, c, recs, false)
		}
	case len(recs) == 1:
		up, err := query.CompileUpdate(updateArg, cx.body.Lookup("arrayFilters"))
		if err != nil {
			return nil, err
		}
		value = recs[0].doc
		if _, err := cx.updateRecords(c, recs, up, q.filter); err != nil {
			return nil, findAndModifyError(err)
		}
		if returnNew {
			value = recs[0].doc
		}
		lastError = append(lastError, bson.E{Key: "updatedExisting", Value: true})
	default:
		lastError = append(lastError, bson.E{Key: "updatedExisting", Value: false})
		up, err := query.CompileUpdate(updateArg, cx.body.Lookup("arrayFilters"))
		if err != nil || !upsert {
			return bson.D{{Key: "lastErrorObject", Value: lastError}, {Key: "value", Value: nil}}, err
		}
		doc, err := cx.upsert(name, filter, up)
		if err != nil {
			return nil, findAndModifyError(err)
		}
		lastError = bson.D{{Key: "n", Value: int32(1)}, {Key: "updatedExisting", Value: false}, {Key: "upserted", Value: query.RawValue(doc.Lookup("_id"))}}
		if returnNew {
			value = doc
		}
	}
	var out any
	if value != nil {
		if proj != nil {
			if value, err = proj.Apply(value); err != nil {
				return nil, err
			}
		}
		out = bson.Raw(value)
	}
	reply := bson.D{{Key: "lastErrorObject", Value: lastError}, {Key: "value", Value: out}}
	if cx.retryable {
		cx.sess.reply = reply
	}
	return reply, nil
}

// findAndModifyError is a write's failure as findAndModify reports it:
// mongod's plan executor wraps it ("Plan executor error during findAndModify
// :: caused by :: E11000 duplicate key error ..."), keeping its code and
// extra information.
func findAndModifyError(err error) error {
	we, ok := err.(*writeError)
	if !ok {
		return err
	}
	wrapped := *we
	wrapped.msg = "Plan executor error during findAndModify :: caused by :: " + we.msg
	return &wrapped
}
