package pitr

// BenchmarkReplay compares, in one run, against mongotestd processes (the test MongoDB
// server, run apart so that its CPU is not counted as the benchmark's; a store and a
// target), for two workloads: 20,000 inserts, and 5,000 events of inserts, updates of
// two fields and deletes (50/40/10):
//
//	raw-bulk-write  the driver writing the same operations into the empty target with
//	                BulkWrite, 1000 at a time (unordered for the inserts): the target's
//	                limit
//	replay          Replay of the events from the store into the empty target
//
// Each reports events/s; replay's over raw-bulk-write's is the cost of reading the
// store, keeping the source's order and making every step idempotent. mongotest finds
// a document to update or delete by scanning its collection, so the mixed workload's
// figures are the fake server's more than the replay's.

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/pitr/pitrtest"
)

// buildMongotestd builds the test server into a directory of the benchmark's.
func buildMongotestd(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "mongotestd")
	if out, err := exec.Command("go", "build", "-o", bin, "../mongotest/cmd/mongotestd").CombinedOutput(); err != nil {
		b.Fatalf("building mongotestd: %v\n%s", err, out)
	}
	return bin
}

func mongotestdProcess(b *testing.B, bin string) *mongo.Client {
	b.Helper()
	uri, _ := pitrtest.Mongotestd(b, bin)
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = client.Disconnect(ctx)
	})
	return client
}

func benchDocument(i int) bson.D {
	return bson.D{{Key: "_id", Value: i}, {Key: "name", Value: "customer"}, {Key: "amount", Value: float64(i)},
		{Key: "tags", Value: bson.A{"a", "b"}}, {Key: "address", Value: bson.D{{Key: "city", Value: "Oslo"}, {Key: "zip", Value: "0150"}}}}
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

// writeModels are ops as the driver's write models, for the raw rate.
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

// storeEvents writes ops into the store as source's events, in the collector's layout,
// and returns the last one's cluster time.
func storeEvents(b *testing.B, store *mongo.Database, source string, ops []benchOp) bson.Timestamp {
	b.Helper()
	var docs []any
	var ts bson.Timestamp
	for i, o := range ops {
		ts = bson.Timestamp{T: 1_700_000_000 + uint32(i/1000), I: uint32(i%1000) + 1}
		e := append(storeDocument(source, ts, time.Unix(int64(ts.T), 0), o.op, "bench.c"),
			bson.E{Key: oplogstore.FieldDocumentKey, Value: bson.D{{Key: "_id", Value: o.id}}})
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

// emptyTarget drops what a previous iteration wrote.
func emptyTarget(b *testing.B, target *mongo.Client) {
	b.Helper()
	for _, db := range []string{"bench", ReplayDatabase} {
		if err := target.Database(db).Drop(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReplay(b *testing.B) {
	bin := buildMongotestd(b)
	store := mongotestdProcess(b, bin).Database(oplogstore.DefaultDatabase)
	target := mongotestdProcess(b, bin)
	for _, w := range []struct {
		name   string
		mixed  bool
		events int
	}{{"inserts", false, 20000}, {"mixed", true, 5000}} {
		ops := workloadOps(w.events, w.mixed)
		to := storeEvents(b, store, w.name, ops)
		models := writeModels(ops)
		b.Run(w.name+"/raw-bulk-write", func(b *testing.B) {
			var elapsed time.Duration
			for b.Loop() {
				emptyTarget(b, target)
				began := time.Now()
				coll := target.Database("bench").Collection("c")
				for start := 0; start < len(models); start += 1000 {
					// Unordered where only inserts of distinct documents: the target's best.
					opts := options.BulkWrite().SetOrdered(w.mixed)
					if _, err := coll.BulkWrite(context.Background(), models[start:start+1000], opts); err != nil {
						b.Fatal(err)
					}
				}
				elapsed += time.Since(began)
			}
			b.ReportMetric(float64(w.events*b.N)/elapsed.Seconds(), "events/s")
		})
		b.Run(w.name+"/replay", func(b *testing.B) {
			var elapsed time.Duration
			for b.Loop() {
				emptyTarget(b, target)
				began := time.Now()
				s, err := Replay(context.Background(), store, target, Options{Source: w.name, To: to})
				if err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(began)
				if s.Events != int64(w.events) {
					b.Fatalf("replayed %d events of %d", s.Events, w.events)
				}
			}
			b.ReportMetric(float64(w.events*b.N)/elapsed.Seconds(), "events/s")
		})
	}
}
