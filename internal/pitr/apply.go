package pitr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/bulkinsert"
	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// Limits of one bulk write: the server takes 100,000 operations and 48 MB a message;
// smaller batches keep memory low and a failure's retry short.
const (
	maxBatchOps   = 1000
	maxBatchBytes = 8 << 20
)

// applier applies events to the target. Document events go in batches, one collection
// at a time, in stream order: a run of inserts in one unordered insert command, others
// in ordered bulk writes; everything else goes alone, after the batch before it.
type applier struct {
	client *mongo.Client
	reg    *registry
	park   *parking
	stats  *Summary
	batch  batch
	// command is the insert command being built, reused from batch to batch.
	command []byte
	// deferred are index builds the target refused during the replay, built again at the end.
	deferred []deferredIndex
	// transactions: the target runs them (a replica set or a sharded cluster).
	transactions bool
	// upsertsLeft counts down the events that apply inserts as upserts (overlapSpan).
	upsertsLeft int
	// selected are the namespaces of --namespace: a dropDatabase drops no other.
	selected selection
	// hist is what the range's collection events say (history).
	hist *history
	// capped are the range's deletes of capped collections (capped.go).
	capped cappedDeletes
}

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
	plan  writePlan        // none for an insert planned as one (insertRun)
}

// minInsertRun is how many inserts a batch holds for them to go on their own, unordered,
// when another kind of write comes: fewer go with it, in order.
const minInsertRun = 64

// writePlan is how a document event is applied: its write models, or, for an update
// that update operators cannot express, a read-modify-replace.
type writePlan struct {
	models     []mongo.WriteModel
	ud         *updateDescription
	clientSide bool
	// lookedUp: an update applied as its event's full document (dotsUncertain).
	lookedUp bool
}

// errAmbiguousPath is an update whose paths replay cannot read for certain.
var errAmbiguousPath = errors.New("ambiguous update path")

// overlapSpan is how many events after a duplicate _id go as upserts before inserts are
// tried again: a duplicate means the target is ahead of the events (a replay again, or
// from before the base backup), and stays so for a while.
const overlapSpan = 10000

// planWrite turns a document event into writes. Inserts and replaces are upserts of the
// full document (so that applying one again, or onto a later state, yields that
// document), except that an insert can go as an insert (asInsert), cheaper for the
// server, when a duplicate _id is then applied as an upsert; deletes go by document
// key; updates go by their updateDescription, never by full_document, which
// updateLookup reads later than the event.
func planWrite(e *oplogstore.Event, asInsert bool) (writePlan, error) {
	filter := e.DocKey
	switch e.OpType {
	case "insert", "replace":
		if e.FullDocument == nil {
			return writePlan{}, fmt.Errorf("%s event at %s on %s has no full_document", e.OpType, oplogstore.FormatTS(e.TS), e.Namespace())
		}
		if filter == nil {
			id, err := e.FullDocument.LookupErr("_id")
			if err != nil {
				return writePlan{}, fmt.Errorf("%s event at %s on %s has neither doc_key nor an _id in full_document", e.OpType, oplogstore.FormatTS(e.TS), e.Namespace())
			}
			filter, _ = bson.Marshal(bson.D{{Key: "_id", Value: id}})
		}
		if asInsert && e.OpType == "insert" {
			return writePlan{models: []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(e.FullDocument)}}, nil
		}
		return writePlan{models: []mongo.WriteModel{replaceModel(filter, e.FullDocument, true)}}, nil
	case "delete":
		if filter == nil {
			return writePlan{}, fmt.Errorf("delete event at %s on %s has no doc_key", oplogstore.FormatTS(e.TS), e.Namespace())
		}
		return writePlan{models: []mongo.WriteModel{mongo.NewDeleteOneModel().SetFilter(filter)}}, nil
	case "update":
		if filter == nil {
			return writePlan{}, fmt.Errorf("update event at %s on %s has no doc_key", oplogstore.FormatTS(e.TS), e.Namespace())
		}
		ud, err := parseUpdateDescription(e.UpdateDescription)
		if err != nil {
			return writePlan{}, fmt.Errorf("update event at %s on %s: %w", oplogstore.FormatTS(e.TS), e.Namespace(), err)
		}
		if ud.dotsUncertain() {
			// The event cannot say which of its dots are inside field names. Where the
			// document has none, they all separate names; else the document updateLookup
			// read (a little after the event) replaces it, or, without one, the target's
			// document is read to tell (docs/pitr.md).
			switch {
			case e.FullDocument == nil:
				return writePlan{ud: ud, clientSide: true}, nil
			case hasFieldNameWithDot(e.FullDocument):
				return writePlan{models: []mongo.WriteModel{replaceModel(filter, e.FullDocument, false)}, lookedUp: true}, nil
			}
		}
		if !ud.operatorsExpress() {
			return writePlan{ud: ud, clientSide: true}, nil
		}
		p := writePlan{ud: ud}
		for _, u := range ud.operatorUpdates() {
			p.models = append(p.models, mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(u))
		}
		return p, nil
	}
	return writePlan{}, fmt.Errorf("not a document event: %q", e.OpType)
}

// writeOptions are those of every document write of a replay: in order, and past the
// target's validator. The source's server validated each write against the validator it
// had then; a replay started before the base's time writes earlier documents under
// later validators, which need not accept them.
func writeOptions() *options.BulkWriteOptionsBuilder {
	return options.BulkWrite().SetOrdered(true).SetBypassDocumentValidation(true)
}

// replaceModel makes the document that filter selects be doc (upsert: or inserts it). A
// replacement document cannot hold a top-level field whose name starts with $, which
// MongoDB 5.0 and later store (inserts and pipeline updates write them); the server's
// answer for those is a pipeline update that replaces the document by the literal one
// ($replaceWith of $literal: nothing in it is read as an expression), as
// https://www.mongodb.com/docs/manual/core/dot-dollar-considerations/dollar-prefix/
// describes. Other documents go as a plain replacement, which servers take faster.
func replaceModel(filter any, doc bson.Raw, upsert bool) mongo.WriteModel {
	if !hasTopLevelDollarField(doc) {
		return mongo.NewReplaceOneModel().SetFilter(filter).SetReplacement(doc).SetUpsert(upsert)
	}
	literal := mongo.Pipeline{{{Key: "$replaceWith", Value: bson.D{{Key: "$literal", Value: doc}}}}}
	return mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(literal).SetUpsert(upsert)
}

func hasTopLevelDollarField(doc bson.Raw) bool {
	elements, _ := doc.Elements()
	for _, el := range elements {
		if strings.HasPrefix(el.Key(), "$") {
			return true
		}
	}
	return false
}

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

// startsWithID tells whether doc's first field is its _id, as in every document a
// server stores.
func startsWithID(doc bson.Raw) bool {
	first, err := bsoncore.Document(doc).IndexErr(0)
	return err == nil && string(first.KeyBytes()) == "_id"
}

func docID(e *oplogstore.Event) bson.RawValue {
	if e.DocKey != nil {
		return e.DocKey.Lookup("_id")
	}
	return e.FullDocument.Lookup("_id")
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

// writeAlone applies one document event by itself. An update that update operators
// cannot express, or that the target's document refuses (its shape is not the source's
// at the event: the target is ahead, see docs/pitr.md), is applied by reading the
// document, changing it as the source's server did, and replacing it. A unique key
// held by another document is resolved by setting that document aside (parking).
func (a *applier) writeAlone(ctx context.Context, c *collection, e *oplogstore.Event, ud *updateDescription, clientSide bool) error {
	handle := a.client.Database(c.db).Collection(c.name)
	for attempt := 0; ; attempt++ {
		err := a.writeOnce(ctx, handle, e, ud, clientSide)
		we, isWriteErr := writeErrorOf(err)
		switch {
		case err == nil:
			return nil
		case isWriteErr && we.Code == mongoerr.DuplicateKey && attempt < 16:
			set, perr := a.setAside(ctx, c, handle, we, docID(e))
			if perr != nil {
				return perr
			}
			if !set {
				return fmt.Errorf("%s event at %s on %s: %w", e.OpType, oplogstore.FormatTS(e.TS), c.ns(), err)
			}
		case isWriteErr && e.OpType == "update" && !clientSide:
			clientSide = true
		default:
			return fmt.Errorf("%s event at %s on %s: %w", e.OpType, oplogstore.FormatTS(e.TS), c.ns(), err)
		}
	}
}

func (a *applier) writeOnce(ctx context.Context, handle *mongo.Collection, e *oplogstore.Event, ud *updateDescription, clientSide bool) error {
	if e.OpType != "update" || !clientSide {
		p, err := planWrite(e, false)
		if err != nil || len(p.models) == 0 { // an update that changed nothing
			return err
		}
		_, err = handle.BulkWrite(ctx, p.models, writeOptions())
		return err
	}
	raw, err := handle.FindOne(ctx, e.DocKey).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil // nothing to update: the target is ahead, past the document's delete
	} else if err != nil {
		return err
	}
	if ud.dotsUncertain() && hasFieldNameWithDot(raw) {
		return fmt.Errorf("%w: a path of the event has a dot, the document has field names with dots, and the event says neither which dots are inside names (its source, MongoDB before 6.1, gives no disambiguatedPaths) nor what the document became (it holds no document read by updateLookup). Replay to a --to before this event, or from a base backup taken after it",
			errAmbiguousPath)
	}
	var current bson.D
	if err := bson.Unmarshal(raw, &current); err != nil {
		return err
	}
	updated, err := bson.Marshal(ud.applyTo(current))
	if err != nil {
		return err
	}
	if _, err := handle.BulkWrite(ctx, []mongo.WriteModel{replaceModel(e.DocKey, updated, false)}, writeOptions()); err != nil {
		return err
	}
	a.stats.ClientSideUpdates++
	return nil
}

// writeErrorOf finds the first write error in err.
func writeErrorOf(err error) (mongo.WriteError, bool) {
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 && bwe.WriteConcernError == nil {
		return bwe.WriteErrors[0].WriteError, true
	}
	var we mongo.WriteException
	if errors.As(err, &we) && len(we.WriteErrors) > 0 && we.WriteConcernError == nil {
		return we.WriteErrors[0], true
	}
	return mongo.WriteError{}, false
}

// setAside parks the documents of c, other than self, that hold the unique key a write
// was refused over. It reports false when the conflict is not over a secondary unique
// index's key, or nothing holds it.
func (a *applier) setAside(ctx context.Context, c *collection, handle *mongo.Collection, we mongo.WriteError, self bson.RawValue) (bool, error) {
	pattern, ok1 := we.Raw.Lookup("keyPattern").DocumentOK()
	value, ok2 := we.Raw.Lookup("keyValue").DocumentOK()
	if !ok1 || !ok2 {
		return false, nil
	}
	if fields, _ := pattern.Elements(); len(fields) == 1 && fields[0].Key() == "_id" {
		return false, nil
	}
	values, err := value.Elements()
	if err != nil {
		return false, nil
	}
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$ne", Value: self}}}}
	for _, v := range values {
		filter = append(filter, bson.E{Key: v.Key(), Value: v.Value()})
	}
	cursor, err := handle.Find(ctx, filter)
	if err != nil {
		return false, fmt.Errorf("finding what holds a unique key in %s: %w", c.ns(), err)
	}
	var holders []bson.Raw
	if err := cursor.All(ctx, &holders); err != nil {
		return false, fmt.Errorf("finding what holds a unique key in %s: %w", c.ns(), err)
	}
	for _, h := range holders {
		if err := a.park.park(ctx, a.client, c, h); err != nil {
			return false, err
		}
		a.stats.Parked++
	}
	return len(holders) > 0, nil
}

// unpark handles an event for a document set aside: an update needs the document back
// first; an insert, replace or delete replaces or removes it anyway.
func (a *applier) unpark(ctx context.Context, c *collection, e *oplogstore.Event, id bson.RawValue) error {
	if e.OpType == "update" {
		return a.restore(ctx, c, id, true)
	}
	a.stats.Superseded++
	return a.park.release(ctx, c, id)
}

// restore puts a parked document back into c. With resolve, a document holding its
// unique key is set aside in turn (the replay is still in the overlap); without, the
// conflict is an error.
func (a *applier) restore(ctx context.Context, c *collection, id bson.RawValue, resolve bool) error {
	doc, err := a.park.parked(ctx, c, id)
	if err != nil {
		return err
	}
	filter := bson.D{{Key: "_id", Value: id}}
	if resolve {
		key, _ := bson.Marshal(filter)
		e := &oplogstore.Event{OpType: "replace", DocKey: key, FullDocument: doc, DB: c.db, Coll: c.name}
		err = a.writeAlone(ctx, c, e, nil, false)
	} else {
		_, err = a.client.Database(c.db).Collection(c.name).BulkWrite(ctx, []mongo.WriteModel{replaceModel(filter, doc, true)}, writeOptions())
	}
	if err != nil {
		return fmt.Errorf("bringing back a document of %s set aside: %w", c.ns(), err)
	}
	a.stats.Restored++
	return a.park.release(ctx, c, id)
}

// restoreAll brings back every document still set aside, at the end of a replay. One
// whose unique key is held (which a replay that has caught up with the source cannot
// leave) stays in ReplayDatabase.parked and is counted in left.
func (a *applier) restoreAll(ctx context.Context) (left int, err error) {
	for _, k := range a.park.remaining() {
		c := a.reg.byUUID[k.coll]
		if c == nil {
			// Its collection is gone from the target.
			if err := a.park.dropped(ctx, &collection{uuid: []byte(k.coll)}); err != nil {
				return left, err
			}
			continue
		}
		if err := a.restore(ctx, c, k.idValue(), false); err != nil {
			if mongoerr.HasCode(err, mongoerr.DuplicateKey) {
				left++
				continue
			}
			return left, err
		}
	}
	return left, nil
}
