package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/pitr/pitrtest"
)

// workload writes random operations onto the source: what applications write
// (https://www.mongodb.com/docs/manual/reference/operator/update/, /core/indexes/,
// /core/views/, /core/schema-validation/): inserts of nested documents, some with
// field names that start with $ or hold dots; updates with every operator, at
// positional, all-element and filtered array paths, and as pipelines; replaces, deletes,
// transactions; index builds of every kind and option, collMods of indexes and
// validators, and drops; collections made with validators, caps, collations and
// clustered indexes; views made, changed and dropped, and names going from view to
// collection; renames, collection and database drops; large documents. Operations the
// server refuses (a duplicate unique key, a $push onto a number, a write to a view)
// make no event and are ignored.
type workload struct {
	client  *mongo.Client
	rng     *rand.Rand
	size    proofSize
	mu      sync.Mutex // held during each operation: a cut holds it to pause the workload
	nextID  int
	renames int
	done    atomic.Int64
	counts  map[string]int
}

var (
	workloadDBs   = []string{"w1", "w2"}
	workloadColls = []string{"c0", "c1", "c2", "c3", "c4"}
	// workloadViews are the names views take: c4 goes from collection to view and back.
	workloadViews = []string{"v0", "v1", "c4"}
	// workloadIndex are the index builds the workload picks from, one of each kind and
	// option. No document has a date in at before next year: the TTL index expires
	// nothing while the proof runs (on the source or on a target), collMod changes it.
	workloadIndex = []mongo.IndexModel{
		{Keys: bson.D{{Key: "u", Value: 1}}, Options: options.Index().SetName("u_unique").SetUnique(true).SetSparse(true)},
		{Keys: bson.D{{Key: "g", Value: 1}, {Key: "n", Value: -1}}, Options: options.Index().SetName("g_n")},
		{Keys: bson.D{{Key: "a.k0", Value: 1}}, Options: options.Index().SetName("a_k0")},
		{Keys: bson.D{{Key: "at", Value: 1}}, Options: options.Index().SetName("at_ttl").SetExpireAfterSeconds(3600)},
		{Keys: bson.D{{Key: "n", Value: 1}}, Options: options.Index().SetName("n_partial").SetPartialFilterExpression(bson.D{{Key: "n", Value: bson.D{{Key: "$gte", Value: 500}}}})},
		{Keys: bson.D{{Key: "t", Value: "text"}}, Options: options.Index().SetName("t_text").SetWeights(bson.D{{Key: "t", Value: 3}})},
		{Keys: bson.D{{Key: "$**", Value: 1}}, Options: options.Index().SetName("wild").SetWildcardProjection(bson.D{{Key: "a", Value: 1}, {Key: "m", Value: 1}})},
		{Keys: bson.D{{Key: "h", Value: "hashed"}}, Options: options.Index().SetName("h_hashed")},
		{Keys: bson.D{{Key: "loc", Value: "2dsphere"}}, Options: options.Index().SetName("loc_2dsphere")},
		{Keys: bson.D{{Key: "g", Value: 1}}, Options: options.Index().SetName("g_fr").SetCollation(&options.Collation{Locale: "fr"})},
		{Keys: bson.D{{Key: "sq", Value: 1}}, Options: options.Index().SetName("sq_1")},
		{Keys: bson.D{{Key: "g", Value: 1}, {Key: "u", Value: 1}}, Options: options.Index().SetName("g_u_hidden").SetHidden(true)},
	}
	workloadIndexNames = func() []string {
		var names []string
		for _, ix := range workloadIndex {
			names = append(names, *indexOptions(ix).Name)
		}
		return names
	}()
)

func indexOptions(ix mongo.IndexModel) *options.IndexOptions {
	var o options.IndexOptions
	for _, set := range ix.Options.Opts {
		_ = set(&o)
	}
	return &o
}

func newWorkload(client *mongo.Client, seed uint64, size proofSize) *workload {
	return &workload{client: client, rng: rand.New(rand.NewPCG(seed, 1)), size: size, counts: map[string]int{}}
}

func (w *workload) run(ctx context.Context) error {
	for range w.size.ops {
		if err := w.step(ctx); err != nil {
			return err
		}
		w.done.Add(1)
		time.Sleep(w.size.pace)
	}
	return nil
}

func (w *workload) summary() string {
	var parts []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range w.counts {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%s %d", k, w.counts[k]))
	}
	return strings.Join(parts, ", ")
}

// cut pauses the workload and reads the source's state and then its cluster time: no
// write comes between them.
func (w *workload) cut(t *testing.T) cutPoint {
	w.mu.Lock()
	defer w.mu.Unlock()
	state, err := pitrtest.Read(t.Context(), w.client)
	if err != nil {
		t.Fatal(err)
	}
	session, err := w.client.StartSession()
	if err != nil {
		t.Fatal(err)
	}
	defer session.EndSession(context.Background())
	if err := w.client.Database("admin").RunCommand(mongo.NewSessionContext(t.Context(), session), bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		t.Fatal(err)
	}
	return cutPoint{at: *session.OperationTime(), state: state, transactions: w.counts["transaction"]}
}

// document is a new document: nested values, an array, a unique-ish key u, a unique
// sq, and now and then a date for the TTL index (next year), a point, a hashed key and
// text.
func (w *workload) document() bson.D {
	w.nextID++
	doc := bson.D{{Key: "_id", Value: w.nextID}, {Key: "g", Value: int32(w.rng.IntN(5))}}
	if w.rng.IntN(4) > 0 {
		doc = append(doc, bson.E{Key: "u", Value: fmt.Sprintf("u%d", w.rng.IntN(300))})
	}
	doc = append(doc,
		bson.E{Key: "a", Value: pitrtest.RandomValue(w.rng, 1)},
		bson.E{Key: "arr", Value: bson.A{int32(1), "two", bson.D{{Key: "k0", Value: int32(3)}}}},
		bson.E{Key: "n", Value: w.rng.Int32N(1000)},
		bson.E{Key: "sq", Value: int64(w.nextID)},
	)
	switch w.rng.IntN(6) {
	case 0:
		doc = append(doc, bson.E{Key: "at", Value: time.Now().AddDate(1, 0, 0)})
	case 1:
		doc = append(doc, bson.E{Key: "loc", Value: bson.D{{Key: "type", Value: "Point"}, {Key: "coordinates", Value: bson.A{w.rng.Float64()*360 - 180, w.rng.Float64()*180 - 90}}}})
	case 2:
		doc = append(doc, bson.E{Key: "h", Value: w.rng.Int32N(50)})
	case 3:
		doc = append(doc, bson.E{Key: "t", Value: fmt.Sprintf("words %d of text", w.rng.IntN(20))})
	}
	return doc
}

// oddDocument is a document with field names that start with $ or hold dots, at the top
// level and nested (MongoDB 5.0+ stores them:
// https://www.mongodb.com/docs/manual/core/dot-dollar-considerations/).
func (w *workload) oddDocument() bson.D {
	doc := w.document()
	return append(doc,
		bson.E{Key: "$price", Value: w.rng.Int32N(100)},
		bson.E{Key: "a.b", Value: pitrtest.RandomValue(w.rng, 2)},
		bson.E{Key: "nest", Value: bson.D{{Key: "$q", Value: w.rng.Int32N(10)}, {Key: "c.d", Value: "dotted"}}},
	)
}

// recentID is the _id of one of the last documents inserted.
func (w *workload) recentID() bson.D {
	return bson.D{{Key: "_id", Value: w.nextID - w.rng.IntN(max(1, min(w.nextID, 60)))}}
}

func (w *workload) step(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	db := w.client.Database(workloadDBs[w.rng.IntN(len(workloadDBs))])
	coll := db.Collection(workloadColls[w.rng.IntN(len(workloadColls))])
	var kind string
	var err error
	switch done := w.done.Load(); {
	case w.size.hugeEvery > 0 && done%int64(w.size.hugeEvery) == int64(w.size.hugeEvery)-1:
		kind = "insert 16 MiB"
		doc := w.document()
		size, _ := bson.Marshal(doc)
		_, err = coll.InsertOne(ctx, append(doc, bson.E{Key: "blob", Value: strings.Repeat("H", oplogstore.MaxDocumentSize-300-len(size)-12)}))
	case w.size.splitEvery > 0 && done%int64(w.size.splitEvery) == int64(w.size.splitEvery)/2:
		// 7 MiB set on a 7 MiB document: with updateLookup's document, 21 MiB of event.
		kind = "update 7 MiB"
		id := w.recentID()
		_, err = coll.UpdateOne(ctx, id, bson.D{{Key: "$set", Value: bson.D{{Key: "seven", Value: strings.Repeat("S", 7<<20)}}}})
		if err == nil {
			_, err = coll.UpdateOne(ctx, id, bson.D{{Key: "$set", Value: bson.D{{Key: "seven2", Value: strings.Repeat("T", 7<<20)}}}})
		}
	case w.size.largeEvery > 0 && done%int64(w.size.largeEvery) == int64(w.size.largeEvery)-1:
		kind = "insert large"
		doc := append(w.document(), bson.E{Key: "blob", Value: strings.Repeat("L", (1+w.rng.IntN(3))<<20)})
		_, err = coll.InsertOne(ctx, doc)
	default:
		op := pickOp(w.rng.IntN(workloadWeights))
		kind = op.kind
		var named string
		if named, err = op.run(ctx, w, db, coll); named != "" {
			kind = named
		}
	}
	var se mongo.ServerError
	switch {
	case err == nil:
		w.counts[kind]++
	case errors.As(err, &se):
		// Refused by the server: no event, nothing to replay.
	case errors.Is(err, mongo.ErrNoDocuments):
	default:
		return fmt.Errorf("%s: %w", kind, err)
	}
	return nil
}

// workloadOp is one kind of operation of the proof's workload, picked with weight out of
// workloadWeights. To add a form (an update operator, an index kind, a view...), add an
// entry: the proof then checks its replay at every cut. run returns the kind it did when
// that depends on what happened, else "". An operation the server refuses makes no
// event and is left out of the counts.
type workloadOp struct {
	kind   string
	weight int
	run    func(ctx context.Context, w *workload, db *mongo.Database, coll *mongo.Collection) (string, error)
}

func updateOne(update any, opts ...options.Lister[options.UpdateOneOptions]) func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
	return func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		_, err := coll.UpdateOne(ctx, w.recentID(), update, opts...)
		return "", err
	}
}

var workloadOps = []workloadOp{
	{"insert", 300, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		_, err := coll.InsertOne(ctx, w.document())
		return "", err
	}},
	{"insert with $ and dotted names", 20, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		_, err := coll.InsertOne(ctx, w.oddDocument())
		return "", err
	}},
	{"update", 280, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		_, err := coll.UpdateOne(ctx, w.recentID(), pitrtest.RandomUpdate(w.rng))
		return "", err
	}},
	{"update at the matched element ($)", 12, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		filter := append(w.recentID(), bson.E{Key: "arr", Value: []any{int32(1), "two"}[w.rng.IntN(2)]})
		_, err := coll.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "arr.$", Value: pitrtest.RandomValue(w.rng, 1)}}}})
		return "", err
	}},
	{"update with arrayFilters ($[e])", 12, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		update, filters := bson.D{{Key: "$inc", Value: bson.D{{Key: "arr.$[e]", Value: int32(10)}}}}, []any{bson.D{{Key: "e", Value: bson.D{{Key: "$type", Value: "number"}}}}}
		if w.rng.IntN(2) == 0 {
			update, filters = bson.D{{Key: "$set", Value: bson.D{{Key: "arr.$[e].k0", Value: pitrtest.RandomValue(w.rng, 2)}}}}, []any{bson.D{{Key: "e.k0", Value: bson.D{{Key: "$exists", Value: true}}}}}
		}
		_, err := coll.UpdateOne(ctx, w.recentID(), update, options.UpdateOne().SetArrayFilters(filters))
		return "", err
	}},
	{"pipeline update", 40, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		_, err := coll.UpdateOne(ctx, w.recentID(), pipelineUpdate(w.rng))
		return "", err
	}},
	{"update of $ and dotted names", 15, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		v := pitrtest.RandomValue(w.rng, 2)
		updates := []any{
			mongo.Pipeline{{{Key: "$replaceWith", Value: bson.D{{Key: "$setField", Value: bson.D{{Key: "field", Value: bson.D{{Key: "$literal", Value: "$price"}}}, {Key: "input", Value: "$$ROOT"}, {Key: "value", Value: v}}}}}}},
			mongo.Pipeline{{{Key: "$replaceWith", Value: bson.D{{Key: "$unsetField", Value: bson.D{{Key: "field", Value: bson.D{{Key: "$literal", Value: "$price"}}}, {Key: "input", Value: "$$ROOT"}}}}}}},
			mongo.Pipeline{{{Key: "$replaceWith", Value: bson.D{{Key: "$setField", Value: bson.D{{Key: "field", Value: "a.b"}, {Key: "input", Value: "$$ROOT"}, {Key: "value", Value: v}}}}}}},
			mongo.Pipeline{{{Key: "$set", Value: bson.D{{Key: "nest", Value: bson.D{{Key: "$setField", Value: bson.D{{Key: "field", Value: "c.d"}, {Key: "input", Value: bson.D{{Key: "$ifNull", Value: bson.A{"$nest", bson.D{}}}}}, {Key: "value", Value: v}}}}}}}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "nest.$q", Value: v}}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "nest.c.d", Value: v}}}},
		}
		_, err := coll.UpdateOne(ctx, w.recentID(), updates[w.rng.IntN(len(updates))])
		return "", err
	}},
	{"move key u", 50, updateOneSet("u", func(w *workload) any { return fmt.Sprintf("u%d", w.rng.IntN(300)) })},
	{"update many", 50, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		_, err := coll.UpdateMany(ctx, bson.D{{Key: "g", Value: int32(w.rng.IntN(5))}}, pitrtest.RandomUpdate(w.rng))
		return "", err
	}},
	{"replace", 70, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		replacement := w.document()[1:]
		w.nextID--
		_, err := coll.ReplaceOne(ctx, w.recentID(), replacement)
		return "", err
	}},
	{"replace by $replaceWith of $literal ($ names)", 10, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		id := w.recentID()
		doc := w.oddDocument()
		w.nextID--
		doc[0].Value = id[0].Value
		_, err := coll.UpdateOne(ctx, id, mongo.Pipeline{{{Key: "$replaceWith", Value: bson.D{{Key: "$literal", Value: doc}}}}})
		return "", err
	}},
	{"delete", 80, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		_, err := coll.DeleteOne(ctx, w.recentID())
		return "", err
	}},
	{"delete many", 10, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		_, err := coll.DeleteMany(ctx, bson.D{{Key: "g", Value: int32(w.rng.IntN(5))}, {Key: "n", Value: bson.D{{Key: "$lt", Value: 300}}}})
		return "", err
	}},
	{"transaction", 40, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		events, err := w.transaction(ctx, coll)
		if events > 1 {
			return "transaction", err
		}
		return "transaction of one write", err // one event alone needs no transaction on the target
	}},
	{"create index", 45, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		ix := workloadIndex[w.rng.IntN(len(workloadIndex))]
		_, err := coll.Indexes().CreateOne(ctx, ix)
		return "create index " + *indexOptions(ix).Name, err
	}},
	{"collMod TTL", 8, collModIndex(func(w *workload) (string, bson.E) {
		return "at_ttl", bson.E{Key: "expireAfterSeconds", Value: 60 * (1 + w.rng.IntN(100))}
	})},
	{"collMod hidden", 8, collModIndex(func(w *workload) (string, bson.E) {
		return workloadIndexNames[w.rng.IntN(len(workloadIndexNames))], bson.E{Key: "hidden", Value: w.rng.IntN(2) == 0}
	})},
	{"collMod prepareUnique, unique", 10, collModIndex(func(w *workload) (string, bson.E) {
		return "sq_1", bson.E{Key: []string{"prepareUnique", "unique"}[w.rng.IntN(2)], Value: true}
	})},
	{"collMod validator", 8, func(ctx context.Context, w *workload, db *mongo.Database, coll *mongo.Collection) (string, error) {
		cmd := bson.D{{Key: "collMod", Value: coll.Name()}}
		if w.rng.IntN(2) == 0 {
			cmd = append(cmd, bson.E{Key: "validator", Value: workloadValidators[w.rng.IntN(len(workloadValidators))]})
		}
		if w.rng.IntN(2) == 0 {
			cmd = append(cmd, bson.E{Key: "validationLevel", Value: []string{"strict", "moderate", "off"}[w.rng.IntN(3)]})
		}
		if w.rng.IntN(2) == 0 {
			cmd = append(cmd, bson.E{Key: "validationAction", Value: []string{"error", "warn"}[w.rng.IntN(2)]})
		}
		return "", db.RunCommand(ctx, cmd).Err()
	}},
	{"drop index", 10, func(ctx context.Context, w *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		return "", coll.Indexes().DropOne(ctx, workloadIndexNames[w.rng.IntN(len(workloadIndexNames))])
	}},
	{"create with options", 12, func(ctx context.Context, w *workload, db *mongo.Database, coll *mongo.Collection) (string, error) {
		kind := []string{"validator", "capped", "collation", "clustered"}[w.rng.IntN(4)]
		cmd := bson.D{{Key: "create", Value: coll.Name()}}
		switch kind {
		case "validator":
			cmd = append(cmd, bson.E{Key: "validator", Value: workloadValidators[w.rng.IntN(len(workloadValidators))]},
				bson.E{Key: "validationLevel", Value: "moderate"}, bson.E{Key: "validationAction", Value: "error"})
		case "capped":
			// Small enough that the oldest documents go as the workload writes.
			cmd = append(cmd, bson.E{Key: "capped", Value: true}, bson.E{Key: "size", Value: 1 << 20}, bson.E{Key: "max", Value: 5 + w.rng.IntN(20)})
		case "collation":
			cmd = append(cmd, bson.E{Key: "collation", Value: bson.D{{Key: "locale", Value: []string{"fr", "en_US", "de"}[w.rng.IntN(3)]}}})
		case "clustered":
			cmd = append(cmd, bson.E{Key: "clusteredIndex", Value: bson.D{{Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "unique", Value: true}, {Key: "name", Value: "clustered"}}})
			if w.rng.IntN(2) == 0 {
				cmd = append(cmd, bson.E{Key: "expireAfterSeconds", Value: 366 * 24 * 3600}) // _ids are no dates: nothing expires
			}
		}
		return "create " + kind, db.RunCommand(ctx, cmd).Err()
	}},
	{"create view", 8, func(ctx context.Context, w *workload, db *mongo.Database, _ *mongo.Collection) (string, error) {
		return "", db.RunCommand(ctx, bson.D{{Key: "create", Value: workloadViews[w.rng.IntN(len(workloadViews))]},
			{Key: "viewOn", Value: workloadColls[w.rng.IntN(4)]}, {Key: "pipeline", Value: viewPipeline(w.rng)}}).Err()
	}},
	{"collMod view", 5, func(ctx context.Context, w *workload, db *mongo.Database, _ *mongo.Collection) (string, error) {
		return "", db.RunCommand(ctx, bson.D{{Key: "collMod", Value: workloadViews[w.rng.IntN(len(workloadViews))]},
			{Key: "viewOn", Value: workloadColls[w.rng.IntN(4)]}, {Key: "pipeline", Value: viewPipeline(w.rng)}}).Err()
	}},
	{"drop view", 4, func(ctx context.Context, w *workload, db *mongo.Database, _ *mongo.Collection) (string, error) {
		return "", db.Collection(workloadViews[w.rng.IntN(len(workloadViews))]).Drop(ctx)
	}},
	{"rename", 25, func(ctx context.Context, w *workload, db *mongo.Database, coll *mongo.Collection) (string, error) {
		// Half onto a name of the pool (refused when it exists), half onto a new name,
		// after which the workload writes under the old name again: a new collection.
		to := workloadColls[w.rng.IntN(len(workloadColls))]
		if w.rng.IntN(2) == 0 {
			w.renames++
			to = fmt.Sprintf("renamed%d", w.renames)
		}
		return "", w.client.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: db.Name() + "." + coll.Name()}, {Key: "to", Value: db.Name() + "." + to}}).Err()
	}},
	{"drop", 10, func(ctx context.Context, _ *workload, _ *mongo.Database, coll *mongo.Collection) (string, error) {
		return "", coll.Drop(ctx)
	}},
	{"drop database", 2, func(ctx context.Context, _ *workload, db *mongo.Database, _ *mongo.Collection) (string, error) {
		return "", db.Drop(ctx)
	}},
}

func updateOneSet(field string, value func(w *workload) any) func(ctx context.Context, w *workload, db *mongo.Database, coll *mongo.Collection) (string, error) {
	return func(ctx context.Context, w *workload, db *mongo.Database, coll *mongo.Collection) (string, error) {
		return updateOne(bson.D{{Key: "$set", Value: bson.D{{Key: field, Value: value(w)}}}})(ctx, w, db, coll)
	}
}

// collModIndex changes an option of an index, named by its name or, half the time, by
// its key pattern.
func collModIndex(change func(w *workload) (name string, option bson.E)) func(ctx context.Context, w *workload, db *mongo.Database, coll *mongo.Collection) (string, error) {
	return func(ctx context.Context, w *workload, db *mongo.Database, coll *mongo.Collection) (string, error) {
		name, option := change(w)
		index := bson.D{{Key: "name", Value: name}}
		if w.rng.IntN(2) == 0 {
			for _, ix := range workloadIndex {
				if *indexOptions(ix).Name == name {
					index = bson.D{{Key: "keyPattern", Value: ix.Keys}}
				}
			}
		}
		return "", db.RunCommand(ctx, bson.D{{Key: "collMod", Value: coll.Name()}, {Key: "index", Value: append(index, option)}}).Err()
	}
}

// workloadValidators: most documents pass them, some do not (a write then fails).
var workloadValidators = []bson.D{
	{{Key: "n", Value: bson.D{{Key: "$gte", Value: 0}}}},
	{{Key: "$jsonSchema", Value: bson.D{{Key: "bsonType", Value: "object"}, {Key: "required", Value: bson.A{"g"}}, {Key: "properties", Value: bson.D{
		{Key: "g", Value: bson.D{{Key: "bsonType", Value: "int"}, {Key: "minimum", Value: 0}, {Key: "maximum", Value: 4}}},
		{Key: "n", Value: bson.D{{Key: "bsonType", Value: bson.A{"int", "long", "double"}}, {Key: "minimum", Value: 0}}},
		{Key: "u", Value: bson.D{{Key: "bsonType", Value: "string"}, {Key: "maxLength", Value: 4}}},
	}}}}},
	{},
}

// pipelineUpdate is an update pipeline of the stages and expressions applications use:
// its event is an update (with truncatedArrays when an array shrinks) or, when the diff
// is as large as the document, a replace.
func pipelineUpdate(rng *rand.Rand) mongo.Pipeline {
	ifNull := ifNullExpr
	v := pitrtest.RandomValue(rng, 2)
	stages := []bson.D{
		{{Key: "$set", Value: bson.D{{Key: "n", Value: bson.D{{Key: "$add", Value: bson.A{ifNull("n", 0), int32(1)}}}}}}},
		{{Key: "$set", Value: bson.D{{Key: "arr", Value: bson.D{{Key: "$slice", Value: bson.A{ifNull("arr", bson.A{}), 1 + rng.IntN(2)}}}}}}},
		{{Key: "$set", Value: bson.D{{Key: "arr", Value: bson.D{{Key: "$concatArrays", Value: bson.A{ifNull("arr", bson.A{}), bson.A{v}}}}}}}},
		// No stage sets a field another removes: an update that removes a field and sets
		// it again moves it to the end of its document, which its event does not tell
		// (docs/pitr.md, "What replay cannot restore").
		{{Key: "$unset", Value: bson.A{"a", "b"}}},
		{{Key: "$replaceWith", Value: bson.D{{Key: "$mergeObjects", Value: bson.A{"$$ROOT", bson.D{{Key: "z", Value: bson.D{{Key: "$literal", Value: v}}}}}}}}},
		{{Key: "$set", Value: bson.D{{Key: "m", Value: bson.D{{Key: "x", Value: bson.D{{Key: "$literal", Value: v}}}}}}}},
	}
	n := 1 + rng.IntN(2)
	out := mongo.Pipeline{}
	for range n {
		out = append(out, stages[rng.IntN(len(stages))])
	}
	return out
}

// viewPipeline is a view's pipeline of the stages this server runs.
func viewPipeline(rng *rand.Rand) bson.A {
	return []bson.A{
		{},
		{bson.D{{Key: "$match", Value: bson.D{{Key: "g", Value: int32(rng.IntN(5))}}}}},
		{bson.D{{Key: "$match", Value: bson.D{{Key: "n", Value: bson.D{{Key: "$gte", Value: 500}}}}}}, bson.D{{Key: "$project", Value: bson.D{{Key: "g", Value: 1}, {Key: "n", Value: 1}}}}},
		{bson.D{{Key: "$set", Value: bson.D{{Key: "twice", Value: bson.D{{Key: "$multiply", Value: bson.A{ifNullExpr("n", 0), 2}}}}}}}},
	}[rng.IntN(4)]
}

func ifNullExpr(field string, otherwise any) bson.D {
	return bson.D{{Key: "$ifNull", Value: bson.A{"$" + field, otherwise}}}
}

var workloadWeights = func() int {
	total := 0
	for _, op := range workloadOps {
		total += op.weight
	}
	return total
}()

// pickOp is the operation r (below workloadWeights) falls on.
func pickOp(r int) workloadOp {
	for _, op := range workloadOps {
		if r < op.weight {
			return op
		}
		r -= op.weight
	}
	return workloadOps[len(workloadOps)-1]
}

// transaction moves a counter between two documents and inserts a third, in one
// transaction. It returns how many writes changed something: the events it made.
func (w *workload) transaction(ctx context.Context, coll *mongo.Collection) (int, error) {
	session, err := w.client.StartSession()
	if err != nil {
		return 0, err
	}
	defer session.EndSession(ctx)
	from, to := w.recentID(), w.recentID()
	doc := w.document()
	var events int
	_, err = session.WithTransaction(ctx, func(tctx context.Context) (any, error) {
		events = 0
		for _, u := range []struct {
			id bson.D
			by int32
		}{{from, -1}, {to, 1}} {
			res, err := coll.UpdateOne(tctx, u.id, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: u.by}}}})
			if err != nil {
				return nil, err
			}
			events += int(res.ModifiedCount)
		}
		if _, err := coll.InsertOne(tctx, doc); err != nil {
			return nil, err
		}
		events++
		return nil, nil
	})
	return events, err
}
