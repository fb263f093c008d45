package pitr

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/bulkinsert"
	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// Document events go to the target in batches, one collection at a time, in stream
// order: a run of inserts in one unordered insert command (insertAll), other writes in
// one ordered bulk write (writeOrdered, with coalesce). A write the target refuses is
// applied again alone, the careful way (writeAlone), and the batch goes on after it.

// Limits of one bulk write: the server takes 100,000 operations and 48 MB a message;
// smaller batches keep memory low and a failure's retry short.
const (
	maxBatchOps   = 1000
	maxBatchBytes = 8 << 20
)

// batch is the writes being gathered for one collection.
type batch struct {
	coll   *collection
	events []pendingWrite
	bytes  int
	// inserts: every event is an insert, planned as one (insertAll).
	inserts bool
}

type pendingWrite struct {
	event oplogstore.Event // a copy: the caller's may be reused
	plan  writePlan        // none for an insert planned as one (insertAll)
}

// minInsertRun is how many inserts a batch holds for them to go on their own, unordered,
// when another kind of write comes: fewer go with it, in order.
const minInsertRun = 64

// overlapSpan is how many events after a duplicate _id go as upserts before inserts are
// tried again: a duplicate means the target is ahead of the events (a replay again, or
// from before the base backup), and stays so for a while.
const overlapSpan = 10000

// write applies a document event to c, through the batch. An insert goes as an insert
// of the whole document (insertAll), unless the target was found ahead (upsertsLeft).
func (a *applier) write(ctx context.Context, c *collection, e *oplogstore.Event) error {
	if id := docID(e); a.park.has(c, id) {
		if err := a.flush(ctx); err != nil {
			return err
		}
		if err := a.unpark(ctx, c, e, id); err != nil {
			return err
		}
	}
	insert := e.OpType == "insert" && a.upsertsLeft == 0 && startsWithID(e.FullDocument)
	var p writePlan
	if !insert {
		var err error
		if p, err = planWrite(e, a.upsertsLeft == 0); err != nil {
			return err
		}
		if p.lookedUp {
			a.stats.LookedUpUpdates++
		}
	}
	if a.upsertsLeft > 0 {
		a.upsertsLeft--
	}
	if p.clientSide {
		if err := a.flush(ctx); err != nil {
			return err
		}
		return a.writeAlone(ctx, c, e, p.ud, true)
	}
	b := &a.batch
	switch {
	case b.coll != c || len(b.events) >= maxBatchOps || b.bytes+e.Bytes > maxBatchBytes,
		b.inserts && !insert && len(b.events) >= minInsertRun:
		if err := a.flush(ctx); err != nil {
			return err
		}
		b.coll, b.inserts = c, insert
	case !insert:
		b.inserts = false
	}
	b.events = append(b.events, pendingWrite{event: *e, plan: p})
	b.bytes += e.Bytes
	return nil
}

// flush writes the batch.
func (a *applier) flush(ctx context.Context) error {
	b := a.batch
	a.batch = batch{events: b.events[:0]}
	defer clear(b.events) // the events' documents are the store's: let them go
	switch {
	case len(b.events) == 0:
		return nil
	case b.inserts:
		return a.insertAll(ctx, b.coll, b.events)
	}
	return a.writeOrdered(ctx, b.coll, b.events)
}

// insertFields are those of replay's insert commands: unordered, past the validator (see
// writeOptions).
var insertFields, _ = bson.Marshal(bson.D{{Key: "ordered", Value: false}, {Key: "bypassDocumentValidation", Value: true}})

// insertAll inserts the documents of events, insert events of c, unordered: the target
// takes them in any order, as distinct documents the source held together (a run of
// inserts has nothing else between them). A document the target refuses (its _id held:
// the target is ahead of the events; a unique key held by another document) is applied
// again alone, the careful way, after the others.
func (a *applier) insertAll(ctx context.Context, c *collection, events []pendingWrite) error {
	db := a.client.Database(c.db)
	docs := make([]bson.Raw, len(events))
	for i := range events {
		docs[i] = events[i].event.FullDocument
	}
	var refused []int
	idTaken := false
	for done := 0; done < len(docs); {
		n := bulkinsert.Chunk(docs[done:])
		a.command = bulkinsert.AppendCommand(a.command[:0], c.name, docs[done:done+n], insertFields)
		err := db.RunCommand(ctx, bson.Raw(a.command)).Err()
		var we mongo.WriteException
		switch {
		case err == nil:
		case !errors.As(err, &we) || we.WriteConcernError != nil || len(we.WriteErrors) == 0:
			return fmt.Errorf("inserting %d documents into %s: %w", n, c.ns(), err)
		default:
			for _, w := range we.WriteErrors {
				refused = append(refused, done+w.Index)
				idTaken = idTaken || w.Code == mongoerr.DuplicateKey && isIDKey(w.Raw)
			}
		}
		done += n
	}
	slices.Sort(refused)
	for _, i := range refused {
		if err := a.writeAlone(ctx, c, &events[i].event, nil, false); err != nil {
			return err
		}
	}
	if idTaken {
		a.upsertsLeft = overlapSpan // the target is ahead: the next events upsert
	}
	return nil
}

// isIDKey tells whether a duplicate key error is over the _id.
func isIDKey(writeError bson.Raw) bool {
	pattern, _ := writeError.Lookup("keyPattern").DocumentOK()
	fields, _ := pattern.Elements()
	return len(fields) == 1 && fields[0].Key() == "_id"
}

// writeOrdered writes events, in one ordered bulk write. A write the target refuses is
// applied alone, the careful way (writeAlone), and the batch goes on after it.
func (a *applier) writeOrdered(ctx context.Context, c *collection, events []pendingWrite) error {
	kept := events[:0]
	for i := range events {
		pw := &events[i]
		if pw.plan.models == nil && pw.event.OpType == "insert" {
			pw.plan.models = []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(pw.event.FullDocument)}
		}
		if len(pw.plan.models) > 0 { // not an update that changed nothing
			kept = append(kept, *pw)
		}
	}
	events = kept
	if independent, err := a.independent(ctx, c); err != nil {
		return err
	} else if independent {
		events = coalesce(events)
	}
	var models []mongo.WriteModel
	var owners []int // for each model, its event's index in events
	for i := range events {
		pw := &events[i]
		for _, m := range pw.plan.models {
			models = append(models, m)
			owners = append(owners, i)
		}
	}
	handle := a.client.Database(c.db).Collection(c.name)
	for len(models) > 0 {
		_, err := handle.BulkWrite(ctx, models, writeOptions())
		if err == nil {
			return nil
		}
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
			return fmt.Errorf("writing %d operations to %s: %w", len(models), c.ns(), err)
		}
		// Ordered: what comes before the failed write is done. Its event is applied
		// again whole (each of its steps is idempotent), alone.
		refused := bwe.WriteErrors[0]
		failed := owners[refused.Index]
		pw := events[failed]
		parkedBefore := a.stats.Parked
		if err := a.writeAlone(ctx, c, &pw.event, pw.plan.ud, false); err != nil {
			return err
		}
		_, isInsert := refused.Request.(*mongo.InsertOneModel)
		if isInsert && refused.Code == mongoerr.DuplicateKey {
			a.upsertsLeft = overlapSpan // the target is ahead: the next events upsert
		}
		if a.stats.Parked != parkedBefore || a.upsertsLeft > 0 {
			// The rest was planned before documents were set aside, or as inserts: each
			// of its events goes alone, seeing what is set aside now.
			return a.writeEach(ctx, c, events[failed+1:])
		}
		next := refused.Index
		for next < len(owners) && owners[next] == failed {
			next++
		}
		models, owners = models[next:], owners[next:]
	}
	return nil
}

// writeEach applies events one by one, the careful way: a document set aside is brought
// back or released first, and a refused write resolved.
func (a *applier) writeEach(ctx context.Context, c *collection, events []pendingWrite) error {
	for i := range events {
		e := &events[i].event
		if id := docID(e); a.park.has(c, id) {
			if err := a.unpark(ctx, c, e, id); err != nil {
				return err
			}
		}
		if err := a.writeAlone(ctx, c, e, events[i].plan.ud, false); err != nil {
			return err
		}
		if a.upsertsLeft > 0 {
			a.upsertsLeft--
		}
	}
	return nil
}
