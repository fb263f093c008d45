package mongotest_test

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// Batched writes: their events share a cluster time, as one applyOps oplog
// entry's do (https://www.mongodb.com/docs/manual/reference/change-events/insert/,
// "Starting in MongoDB 8.0 ..."; batched deletes since 6.1, SERVER-63044).

// eventTimes reads n events and returns each one's clusterTime, checking
// their tokens increase.
func eventTimes(t *testing.T, cs *mongo.ChangeStream, n int) ([]bson.Timestamp, []bson.Raw) {
	t.Helper()
	var times []bson.Timestamp
	var events []bson.Raw
	last := ""
	for i := 0; i < n; i++ {
		ev := next(t, cs)
		tok := ev.Lookup("_id", "_data").StringValue()
		if tok <= last {
			t.Fatalf("event %d: token %s after %s", i, tok, last)
		}
		last = tok
		ts, inc := ev.Lookup("clusterTime").Timestamp()
		times = append(times, bson.Timestamp{T: ts, I: inc})
		events = append(events, ev)
	}
	return times, events
}

// runs counts the runs of equal times: 10,10,5 equal times are [10 10 5].
func runs(times []bson.Timestamp) []int {
	var out []int
	for i, ts := range times {
		if i == 0 || ts != times[i-1] {
			out = append(out, 0)
		}
		out[len(out)-1]++
	}
	return out
}

func TestBatchedDeleteSharesClusterTime(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("del")
	var docs []any
	for i := 0; i < 25; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: i}})
	}
	_, err := coll.InsertMany(cx, docs)
	must(t, err)
	cs, err := coll.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(50*time.Millisecond))
	must(t, err)
	defer cs.Close(cx)
	_, err = coll.DeleteOne(cx, bson.D{{Key: "_id", Value: 0}})
	must(t, err)
	_, err = coll.DeleteMany(cx, bson.D{})
	must(t, err)
	times, events := eventTimes(t, cs, 25)
	// One for deleteOne, then batches of 10 (batchedDeletesTargetBatchDocs).
	if got := runs(times); len(got) != 4 || got[0] != 1 || got[1] != 10 || got[2] != 10 || got[3] != 4 {
		t.Fatalf("runs of equal cluster times %v, want [1 10 10 4]", got)
	}
	for _, ev := range events {
		if opType(ev) != "delete" || ev.Lookup("lsid").Type != 0 {
			t.Fatalf("a batched delete's event: %v (no session: it is no transaction)", ev)
		}
	}
}

func TestInsertManyBatchesOn80(t *testing.T) {
	for _, version := range []string{"7.0", "8.0"} {
		t.Run(version, func(t *testing.T) {
			c, cx := fake(t, "announcing MongoDB "+version, mongotest.Options{Version: version})
			var info struct{ VersionArray []int32 }
			must(t, c.Database("admin").RunCommand(cx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info))
			if want := map[string]int32{"7.0": 7, "8.0": 8}[version]; len(info.VersionArray) == 0 || info.VersionArray[0] != want {
				t.Fatalf("buildInfo versionArray %v", info.VersionArray)
			}
			coll := c.Database("ins").Collection("c")
			_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: -1}})
			must(t, err)
			cs, err := coll.Watch(cx, mongo.Pipeline{})
			must(t, err)
			defer cs.Close(cx)
			_, err = coll.InsertMany(cx, []any{bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "_id", Value: 3}}})
			must(t, err)
			times, events := eventTimes(t, cs, 3)
			shared := len(runs(times)) == 1
			if shared != (version == "8.0") {
				t.Fatalf("cluster times %v: shared %v on %s", times, shared, version)
			}
			for _, ev := range events {
				// The retryable insert's applyOps carries the session on 8.0.
				if hasSession := ev.Lookup("lsid").Type != 0 && ev.Lookup("txnNumber").Type == bson.TypeInt64; hasSession != shared {
					t.Fatalf("event %v: session %v, want %v", ev, hasSession, shared)
				}
			}
			// A batch with a failed document is inserted document by document.
			_, err = coll.InsertMany(cx, []any{bson.D{{Key: "_id", Value: 4}}, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 5}}},
				options.InsertMany().SetOrdered(false))
			if !mongo.IsDuplicateKeyError(err) {
				t.Fatalf("err = %v, want a duplicate key", err)
			}
			if times, _ := eventTimes(t, cs, 2); len(runs(times)) != 2 {
				t.Fatalf("after a failed document: times %v, want one each", times)
			}
		})
	}
}

func TestInsertBatchLimitOn80(t *testing.T) {
	c, cx := fake(t, "announcing MongoDB 8.0", mongotest.Options{Version: "8.0"})
	coll := c.Database("ins").Collection("many")
	cs, err := c.Database("ins").Watch(cx, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "operationType", Value: "insert"}}}}})
	must(t, err)
	defer cs.Close(cx)
	var docs []any
	for i := 0; i < 501; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: i}})
	}
	_, err = coll.InsertMany(cx, docs)
	must(t, err)
	times, _ := eventTimes(t, cs, 501)
	if got := runs(times); len(got) != 2 || got[0] != 500 || got[1] != 1 {
		t.Fatalf("runs %v, want [500 1] (internalInsertMaxBatchSize)", got)
	}
	if _, err := mongotest.Start(mongotest.Options{Version: "6.0"}); err == nil {
		t.Fatal("an unsupported version was accepted")
	}
}
