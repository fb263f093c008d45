package collector

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// Failures of the source or the store: what is stored stays whole, and what the
// source says tells the failure.

// The history lost under one source's saved token stops that source in
// error_resume_token_lost; another source keeps capturing; a reset recovers it.
func TestHistoryLostStopsOnlyThatSource(t *testing.T) {
	lostSrv := mongotest.New(t, "history truncation", mongotest.Options{})
	okSrv := mongotest.New(t, "a second, healthy source", mongotest.Options{})
	storeURI := okSrv.URI()
	store := testsupport.Connect(t, storeURI)
	lostClient := testsupport.Connect(t, lostSrv.URI())
	okClient := testsupport.Connect(t, okSrv.URI())
	cfg := collectorConfig(t, storeURI, storeURI, "",
		testSource{name: "lost", uri: lostSrv.URI(), database: "a"}, testSource{name: "ok", uri: okSrv.URI(), database: "b"})
	h := startManager(t, cfg)
	h.waitState("lost", stateRunning)
	insertSeq(t, lostClient, "a", "c", 0, 5)
	eventually(t, "5 events of lost", func() bool { return len(insertedIDs(stored(t, store, "lost"))) == 5 })
	h.stop()

	insertSeq(t, lostClient, "a", "c", 5, 10)
	lostSrv.TruncateHistory() // the saved token is no longer in the "oplog"
	h2 := startManager(t, cfg)
	h2.waitState("lost", stateResumeTokenLost)
	insertSeq(t, okClient, "b", "c", 0, 10)
	eventually(t, "the healthy source to go on capturing", func() bool { return len(insertedIDs(stored(t, store, "ok"))) == 10 })
	if got := h2.gauge("oplog_capture_state", "source_cluster", "lost", "state", stateResumeTokenLost); got != 1 {
		t.Fatalf("oplog_capture_state{state=error_resume_token_lost} = %v", got)
	}
	if got := h2.gauge("oplog_capture_errors_total", "source_cluster", "lost", "kind", errResumeTokenLost); got < 1 {
		t.Fatalf("resume_token_lost errors = %v", got)
	}
	var meta bson.Raw
	eventually(t, "the heartbeat to say error_resume_token_lost", func() bool {
		meta, _ = store.Database(config.DefaultCollectorMetadataDatabase).Collection(config.DefaultCollectorMetadataCollection).
			FindOne(t.Context(), bson.D{{Key: "name", Value: "lost"}}).Raw()
		return meta != nil && meta.Lookup("collector_status", "status").StringValue() == stateResumeTokenLost
	})
	if msg := meta.Lookup("collector_status", "error_message").StringValue(); !strings.Contains(msg, "reset") {
		t.Errorf("error_message does not say what to do: %q", msg)
	}

	if _, err := h2.manager.Reset(t.Context(), "lost", tester); err != nil {
		t.Fatal(err)
	}
	h2.waitState("lost", stateRunning)
	eventually(t, "the reset source's first token", func() bool {
		return store.Database(config.DefaultStoreDatabase).Collection("resume_tokens_for_lost").FindOne(t.Context(), bson.D{}).Err() == nil
	})
	if n := len(stored(t, store, "lost")); n != 0 {
		t.Fatalf("reset kept %d events", n)
	}
	insertSeq(t, lostClient, "a", "c", 10, 13)
	eventually(t, "capture after the reset", func() bool { return len(insertedIDs(stored(t, store, "lost"))) == 3 })
	if ids := insertedIDs(stored(t, store, "ok")); !slices.Equal(ids, seq(0, 10)) {
		t.Fatalf("the healthy source was disturbed by the reset: %v", ids)
	}
}

// The store away for a while as the source keeps writing: reading waits on a full
// buffer (memory stays bounded), and once the store is back every event is stored once.
func TestStoreOutageLosesNothing(t *testing.T) {
	storeSrv := mongotest.New(t, "a store that goes away and comes back", mongotest.Options{})
	srcURI := mongotest.URI(t)
	src := testsupport.Connect(t, srcURI)
	store := testsupport.Connect(t, storeSrv.URI())
	extra := "  buffer: {max_events: 100}\n"
	h := startManager(t, collectorConfig(t, storeSrv.URI(), "", extra, testSource{name: "outage", uri: srcURI, database: "o"}))
	h.waitState("outage", stateRunning)
	insertSeq(t, src, "o", "c", 0, 10)
	eventually(t, "10 events before the outage", func() bool { return len(insertedIDs(stored(t, store, "outage"))) == 10 })

	storeSrv.Stop()
	insertSeq(t, src, "o", "c", 10, 400) // far more than the buffer holds
	h.waitState("outage", stateStoreUnavailable)
	eventually(t, "the buffer to fill", func() bool {
		return h.gauge("oplog_capture_buffer_events", "source_cluster", "outage") >= 50
	})
	if n := h.gauge("oplog_capture_buffer_events", "source_cluster", "outage"); n > 100 {
		t.Fatalf("buffer holds %v events, over its capacity of 100", n)
	}
	if err := storeSrv.Restart(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "all 400 events after the outage", func() bool { return len(insertedIDs(stored(t, store, "outage"))) >= 400 })
	h.waitState("outage", stateRunning)
	if ids := insertedIDs(stored(t, store, "outage")); !slices.Equal(ids, seq(0, 400)) {
		t.Fatalf("after the outage the store holds %d inserts, not 0..399 once each in order", len(ids))
	}
	if r := h.gauge("oplog_capture_retries_total", "source_cluster", "outage", "reason", retryStore); r < 1 {
		t.Fatalf("store retries = %v", r)
	}
}

// Failures injected with the server's own failCommand: inserts into the store fail,
// their connections close, getMores of the change stream fail and hang. Nothing is
// lost, nothing stored twice.
func TestFailpointsLoseNothing(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	h := startManager(t, collectorConfig(t, uri, "", "", testSource{name: "faults", uri: uri, database: "f"}))
	h.waitState("faults", stateRunning)
	insertSeq(t, client, "f", "c", 0, 10)
	eventually(t, "10 events", func() bool { return len(insertedIDs(stored(t, client, "faults"))) == 10 })

	// failCommand is one failpoint: each is set, then the events that meet it are
	// awaited before the next replaces it.
	steps := []bson.D{
		{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: 6}, {Key: "appName", Value: "oplog_collector store"}},
		{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "closeConnection", Value: true}, {Key: "appName", Value: "oplog_collector store"}},
		{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "errorCode", Value: 50}, {Key: "appName", Value: "oplog_collector store"}}, // the token save
		{{Key: "failCommands", Value: bson.A{"getMore"}}, {Key: "errorCode", Value: 6}, {Key: "appName", Value: "oplog_collector"}},
		{{Key: "failCommands", Value: bson.A{"getMore"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 300}, {Key: "appName", Value: "oplog_collector"}},
	}
	next := 10
	for _, data := range steps {
		setFailPoint(t, client, bson.D{{Key: "times", Value: 3}}, data)
		insertSeq(t, client, "f", "c", next, next+10)
		next += 10
		want := next
		eventually(t, fmt.Sprintf("%d events through %v\n%s", want, data, h.logs), func() bool {
			return len(insertedIDs(stored(t, client, "faults"))) >= want
		})
	}
	if ids := insertedIDs(stored(t, client, "faults")); !slices.Equal(ids, seq(0, next)) {
		t.Fatalf("stored %v, want 0..%d once each in order", ids, next-1)
	}
	if r := h.gauge("oplog_capture_retries_total", "source_cluster", "faults", "reason", retryStore); r < 1 {
		t.Errorf("no store retry counted (%v):\n%s", r, h.logs)
	}
}

// A store that hangs instead of failing: within store_stall_after of a write going
// unacknowledged, the source says store_unavailable, with the wait in its metrics and
// status; once the store answers again, it is running and nothing is lost.
func TestHungStoreIsReportedWithinSeconds(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	h := startManager(t, collectorConfig(t, uri, "", "  store_stall_after: 1s\n", testSource{name: "hung", uri: uri, database: "hung"}))
	h.waitState("hung", stateRunning)
	insertSeq(t, client, "hung", "c", 0, 5)
	eventually(t, "5 events", func() bool { return len(insertedIDs(stored(t, client, "hung"))) == 5 })
	setFailPoint(t, client, bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "blockConnection", Value: true},
		{Key: "blockTimeMS", Value: 4000}, {Key: "appName", Value: "oplog_collector store"}})
	insertSeq(t, client, "hung", "c", 5, 10)
	h.waitState("hung", stateStoreUnavailable)
	st := h.manager.Status()[0]
	if st.StoreWritePendingSeconds < 1 || !strings.Contains(st.Error, "majority acknowledgement") {
		t.Errorf("status while the store hangs: %+v", st)
	}
	if got := h.gauge("oplog_capture_store_write_pending_seconds", "source_cluster", "hung"); got < 1 {
		t.Errorf("oplog_capture_store_write_pending_seconds = %v while a write waits", got)
	}
	h.waitState("hung", stateRunning)
	eventually(t, "10 events", func() bool { return len(insertedIDs(stored(t, client, "hung"))) == 10 })
	if ids := insertedIDs(stored(t, client, "hung")); !slices.Equal(ids, seq(0, 10)) {
		t.Fatalf("stored %v", ids)
	}
	eventually(t, "the pending write gauge back to 0", func() bool {
		return h.gauge("oplog_capture_store_write_pending_seconds", "source_cluster", "hung") == 0
	})
}

// A batch's events and its position commit together: while the commit hangs, neither
// is in the store, the wait shows in oplog_capture_store_write_pending_seconds, and
// once it returns both are there, with the batches after it.
func TestEventsAndTheirPositionCommitTogether(t *testing.T) {
	sourceURI, storeURI := mongotest.URI(t), mongotest.URI(t)
	source, store := testsupport.Connect(t, sourceURI), testsupport.Connect(t, storeURI)
	text := fmt.Sprintf("collector:\n  store: {uri: %q}\n  metadata: {uri: %q}\n  heartbeat_interval: 200ms\n  checkpoint_interval: 1h\n"+
		"  max_backoff: 200ms\n  store_stall_after: 1s\n  batch: {max_events: 50, max_wait: 50ms}\n  sources:\n    - {name: saves, uri: %q, database: saves}\n",
		storeURI, sourceURI, sourceURI)
	cfg, err := config.ForCollector.Parse([]byte(text), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	h := startManager(t, cfg)
	h.waitState("saves", stateRunning)
	wave := func(from, to int) {
		t.Helper()
		docs := make([]any, 0, to-from)
		for i := from; i < to; i++ {
			docs = append(docs, bson.D{{Key: "_id", Value: i}})
		}
		if _, err := source.Database("saves").Collection("c").InsertMany(t.Context(), docs); err != nil {
			t.Fatal(err)
		}
	}
	savedTime := func() bson.Timestamp {
		var doc struct {
			Token bson.Raw `bson:"token"`
		}
		_ = store.Database(config.DefaultStoreDatabase).Collection(oplogstore.TokensCollection("saves")).FindOne(t.Context(), bson.D{}).Decode(&doc)
		ts, _ := oplogstore.TokenTime(doc.Token)
		return ts
	}
	wave(0, 5)
	eventually(t, "5 events", func() bool { return len(insertedIDs(stored(t, store, "saves"))) == 5 })
	before := savedTime()
	setFailPoint(t, store, bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "blockConnection", Value: true},
		{Key: "blockTimeMS", Value: 3000}, {Key: "appName", Value: "oplog_collector store"}})
	wave(5, 10)
	eventually(t, "the hung commit in oplog_capture_store_write_pending_seconds", func() bool {
		return h.gauge("oplog_capture_store_write_pending_seconds", "source_cluster", "saves") >= 1
	})
	if n, after := len(insertedIDs(stored(t, store, "saves"))), savedTime(); n != 5 || after != before {
		t.Fatalf("while the commit hangs the store holds %d events and the position %v (before: %v): a part of the transaction shows", n, after, before)
	}
	wave(10, 15)
	eventually(t, "every event after the commit", func() bool { return len(insertedIDs(stored(t, store, "saves"))) == 15 })
	docs := stored(t, store, "saves")
	last, i := docs[len(docs)-1].Lookup("ts").Timestamp()
	eventually(t, "the newest position saved", func() bool { return !savedTime().Before(bson.Timestamp{T: last, I: i}) })
	if ids := insertedIDs(stored(t, store, "saves")); !slices.Equal(ids, seq(0, 15)) {
		t.Fatalf("stored %v, want 0..14 once each in order", ids)
	}
}
