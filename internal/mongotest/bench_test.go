package mongotest_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

func benchDoc(i int) bson.D {
	return bson.D{{Key: "_id", Value: i}, {Key: "cluster_name", Value: "c1"}, {Key: "ts", Value: bson.Timestamp{T: uint32(i), I: 1}},
		{Key: "payload", Value: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}
}

// BenchmarkBulkInsert measures unordered insertMany of 1000-document
// batches through the driver: with room left in the change history, and
// once it is full (the default 100,000 events), when every write evicts the
// oldest event.
func BenchmarkBulkInsert(b *testing.B) {
	const batch = 1000
	for _, bench := range []struct {
		name           string
		history, first int // history size, documents written before measuring
	}{
		{"history-with-room", 10_000_000, 0},
		{"history-full", 100_000, 100_000},
	} {
		b.Run(bench.name, func(b *testing.B) {
			coll := benchClientWithHistory(b, bench.history).Database("bench").Collection("insert")
			n := 0
			insertBatch := func() {
				docs := make([]any, batch)
				for i := range docs {
					docs[i] = benchDoc(n)
					n++
				}
				if _, err := coll.InsertMany(context.Background(), docs, options.InsertMany().SetOrdered(false)); err != nil {
					b.Fatal(err)
				}
			}
			for n < bench.first {
				insertBatch()
			}
			start, measured := time.Now(), n
			for b.Loop() {
				insertBatch()
			}
			b.ReportMetric(float64(n-measured)/time.Since(start).Seconds(), "docs/s")
		})
	}
}

// BenchmarkChangeStreamRead measures how fast a database change stream
// delivers already-written insert events.
func BenchmarkChangeStreamRead(b *testing.B) {
	c := benchClient(b)
	db := c.Database("bench")
	cx := context.Background()
	cs, err := db.Watch(cx, mongo.Pipeline{})
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close(cx)
	coll := db.Collection("stream")
	docs := make([]any, 0, 1000)
	for i := 0; i < b.N; i += 1000 {
		docs = docs[:0]
		for j := i; j < min(i+1000, b.N); j++ {
			docs = append(docs, benchDoc(j))
		}
		if _, err := coll.InsertMany(cx, docs); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if !cs.Next(cx) {
			b.Fatal(cs.Err())
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

func benchClient(b *testing.B) *mongo.Client { return benchClientWithHistory(b, 10_000_000) }

func benchClientWithHistory(b *testing.B, history int) *mongo.Client {
	srv, err := mongotest.Start(mongotest.Options{History: history})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	return connect(b, srv.URI())
}
