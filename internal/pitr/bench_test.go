package pitr

// BenchmarkReplay compares replay with the driver writing the same operations, in one
// run, against mongotestd processes (the test MongoDB server, run apart so that its CPU
// is not counted as the benchmark's: a store, and a fresh target for each
// sub-benchmark), for two workloads:
//
//	inserts/insert-many  60,000 documents inserted with InsertMany, unordered, 1,000 at
//	                     a time: what the target takes at best
//	inserts/replay       Replay of their 60,000 insert events from the store
//	mixed/bulk-write     50,000 inserts, updates of two fields and deletes (50/40/10)
//	                     with ordered BulkWrite, 1,000 at a time: the order matters
//	mixed/replay         Replay of their events
//
// Each reports events/s, the benchmark process's CPU per event (the client's: the
// driver's, or replay's reading and writing) and the target's; replay also reports its
// rate over the driver's of the same run (x-driver). Replay reads the store as it
// writes: the store's CPU per event is reported too. mongotest finds a document to
// update or delete by scanning its collection, so the mixed workload's rates are the
// fake server's more than the replay's.
//
//	go test -run '^$' -bench BenchmarkReplay -benchtime 3x -count 5 ./internal/pitr

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/pitr/pitrtest"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// buildMongotestd builds the test server into a directory of the benchmark's.
func buildMongotestd(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "mongotestd")
	if out, err := exec.Command("go", "build", "-o", bin, "../mongotest/cmd/mongotestd").CombinedOutput(); err != nil {
		b.Fatalf("building mongotestd: %v\n%s", err, out)
	}
	return bin
}

func benchDocument(i int) bson.Raw {
	doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: i}, {Key: "name", Value: "customer"}, {Key: "amount", Value: float64(i)},
		{Key: "tags", Value: bson.A{"a", "b"}}, {Key: "address", Value: bson.D{{Key: "city", Value: "Oslo"}, {Key: "zip", Value: "0150"}}}})
	return doc
}

// benchOp is one operation of a benchmark's workload: an insert of benchDocument(id),
// an update of two fields, or a delete.
type benchOp struct {
	op string
	id int
}

// workloadOps are n operations: inserts only, or with mixed, also updates and deletes
// of what was inserted (50/40/10).
func workloadOps(n int, mixed bool) []benchOp {
	ops := make([]benchOp, n)
	inserted := 0
	for i := range ops {
		switch r := i % 10; {
		case !mixed || r < 5 || inserted == 0:
			ops[i] = benchOp{"insert", inserted}
			inserted++
		case r < 9:
			ops[i] = benchOp{"update", i % inserted}
		default:
			ops[i] = benchOp{"delete", inserted - 1}
		}
	}
	return ops
}

func benchUpdate(i int) bson.D {
	return bson.D{{Key: "amount", Value: float64(-i)}, {Key: "address.city", Value: "Bergen"}}
}

// writeModels are ops as the driver's write models, for the driver's rate.
func writeModels(ops []benchOp) []mongo.WriteModel {
	models := make([]mongo.WriteModel, len(ops))
	for i, o := range ops {
		key := bson.D{{Key: "_id", Value: o.id}}
		switch o.op {
		case "insert":
			models[i] = mongo.NewInsertOneModel().SetDocument(benchDocument(o.id))
		case "update":
			models[i] = mongo.NewUpdateOneModel().SetFilter(key).SetUpdate(bson.D{{Key: "$set", Value: benchUpdate(i)}})
		default:
			models[i] = mongo.NewDeleteOneModel().SetFilter(key)
		}
	}
	return models
}

var benchCollectionUUID = bson.Binary{Subtype: bson.TypeBinaryUUID, Data: []byte("bench collection")}

// storeEvents writes ops into the store as source's events, in the collector's layout
// (the collection's create event first, as streams with showExpandedEvents give it),
// and returns the last one's cluster time.
func storeEvents(b *testing.B, store *mongo.Database, source string, ops []benchOp) bson.Timestamp {
	b.Helper()
	event := func(i int, op string) (bson.D, bson.Timestamp) {
		ts := bson.Timestamp{T: 1_700_000_000 + uint32(i/1000), I: uint32(i%1000) + 1}
		return append(storeDocument(source, ts, time.Unix(int64(ts.T), 0), op, "bench.c"),
			bson.E{Key: oplogstore.FieldCollectionUUID, Value: benchCollectionUUID}), ts
	}
	create, ts := event(0, "create")
	docs := []any{append(create, bson.E{Key: oplogstore.FieldOperationDescription, Value: bson.D{
		{Key: "idIndex", Value: bson.D{{Key: "v", Value: 2}, {Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "name", Value: "_id_"}}}}})}
	for i, o := range ops {
		var e bson.D
		e, ts = event(i+1, o.op)
		e = append(e, bson.E{Key: oplogstore.FieldDocumentKey, Value: bson.D{{Key: "_id", Value: o.id}}})
		switch o.op {
		case "insert":
			e = append(e, bson.E{Key: oplogstore.FieldFullDocument, Value: benchDocument(o.id)})
		case "update":
			e = append(e, bson.E{Key: oplogstore.FieldUpdateDescription, Value: bson.D{
				{Key: "updatedFields", Value: benchUpdate(i)}, {Key: "removedFields", Value: bson.A{}}, {Key: "truncatedArrays", Value: bson.A{}},
				{Key: "disambiguatedPaths", Value: bson.D{}}, // as MongoDB 6.1 and later give it
			}})
		}
		docs = append(docs, e)
		if len(docs) == 1000 || i == len(ops)-1 {
			if _, err := store.Collection(oplogstore.EventsCollection(source)).InsertMany(context.Background(), docs); err != nil {
				b.Fatal(err)
			}
			docs = docs[:0]
		}
	}
	_, err := store.Collection(oplogstore.TokensCollection(source)).InsertOne(context.Background(), bson.D{
		{Key: oplogstore.FieldID, Value: oplogstore.TokenID(source)},
		{Key: oplogstore.TokenFieldToken, Value: bson.D{{Key: "_data", Value: fmt.Sprintf("82%08X%08XFF", ts.T, ts.I)}}},
		{Key: oplogstore.TokenFieldClusterTime, Value: ts},
	})
	if err != nil {
		b.Fatal(err)
	}
	return ts
}

// replayBench is one sub-benchmark's servers: the store, shared, and a fresh target.
type replayBench struct {
	b             *testing.B
	store, target *pitrtest.Server
	client        *mongo.Client // the target's
}

func newReplayBench(b *testing.B, bin string, store *pitrtest.Server) *replayBench {
	target := pitrtest.Mongotestd(b, bin)
	return &replayBench{b: b, store: store, target: target, client: testsupport.Connect(b, target.URI)}
}

// loop runs f once per iteration on an empty target, timing f alone, and reports the
// rate of events, the CPU per event of this process, the target and the store, and
// returns the rate.
func (r *replayBench) loop(events int, f func()) float64 {
	var elapsed, own, target, store time.Duration
	n := 0
	for r.b.Loop() {
		r.b.StopTimer()
		for _, db := range []string{"bench", ReplayDatabase} {
			if err := r.client.Database(db).Drop(context.Background()); err != nil {
				r.b.Fatal(err)
			}
		}
		runtime.GC() // the last iteration's garbage is not f's to collect
		r.b.StartTimer()
		began, ownBefore, targetBefore, storeBefore := time.Now(), testsupport.OwnCPU(), r.target.CPU(), r.store.CPU()
		f()
		elapsed += time.Since(began)
		own += testsupport.OwnCPU() - ownBefore
		target += r.target.CPU() - targetBefore
		store += r.store.CPU() - storeBefore
		n++
	}
	perEvent := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(events*n) }
	rate := float64(events*n) / elapsed.Seconds()
	r.b.ReportMetric(rate, "events/s")
	r.b.ReportMetric(perEvent(own), "cpu-µs/event")
	r.b.ReportMetric(perEvent(target), "target-cpu-µs/event")
	r.b.ReportMetric(perEvent(store), "store-cpu-µs/event")
	return rate
}

func BenchmarkReplay(b *testing.B) {
	bin := buildMongotestd(b)
	store := pitrtest.Mongotestd(b, bin)
	storeDB := testsupport.Connect(b, store.URI).Database(oplogstore.DefaultDatabase)
	for _, w := range []struct {
		name, baseline string
		mixed          bool
		events         int
	}{{"inserts", "insert-many", false, 60000}, {"mixed", "bulk-write", true, 50000}} {
		ops := workloadOps(w.events, w.mixed)
		to := storeEvents(b, storeDB, w.name, ops)
		models := writeModels(ops)
		var driver float64
		b.Run(w.name+"/"+w.baseline, func(b *testing.B) {
			r := newReplayBench(b, bin, store)
			coll := r.client.Database("bench").Collection("c")
			driver = r.loop(w.events, func() {
				for start := 0; start < len(models); start += 1000 {
					batch := models[start:min(start+1000, len(models))]
					var err error
					if w.mixed {
						_, err = coll.BulkWrite(context.Background(), batch, options.BulkWrite().SetOrdered(true))
					} else {
						docs := make([]any, len(batch))
						for i, m := range batch {
							docs[i] = m.(*mongo.InsertOneModel).Document
						}
						_, err = coll.InsertMany(context.Background(), docs, options.InsertMany().SetOrdered(false))
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		})
		b.Run(w.name+"/replay", func(b *testing.B) {
			r := newReplayBench(b, bin, store)
			rate := r.loop(w.events, func() {
				s, err := Replay(context.Background(), storeDB, r.client, Options{Source: w.name, To: to})
				if err != nil {
					b.Fatal(err)
				}
				if s.Events != int64(w.events)+1 {
					b.Fatalf("replayed %d events of %d", s.Events, w.events+1)
				}
			})
			if driver > 0 {
				b.ReportMetric(rate/driver, "x-driver")
			}
		})
	}
}
