package mongotest

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

func insertCmd(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err == nil {
		err = notSystemViews(name)
	}
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
	if c := cx.s.collLocked(cx.db, name); cx.s.release.batchedInserts && cx.txn == nil && len(docs) > 1 && (c == nil || !c.capped) {
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
	cx.s.evictCapped(cx, c)
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
	if c.capped && int64(len(doc)) > c.cappedSize {
		return nil, nil, &writeError{code: codeBadValue, msg: fmt.Sprintf("object to insert exceeds cappedMaxSize of %d bytes: %d", c.cappedSize, len(doc))}
	}
	if err := c.validation.check(doc, nil, cx); err != nil {
		return nil, nil, err
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
