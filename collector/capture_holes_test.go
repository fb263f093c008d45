package collector

import (
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// splitUpdate stores an update event over 16 MB, which the server splits, and returns
// its stored fragments in order.
func splitUpdate(t *testing.T, client *mongo.Client, name, db string) []bson.Raw {
	t.Helper()
	coll := client.Database(db).Collection("blobs")
	if _, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}, {Key: "blob", Value: strings.Repeat("a", 9<<20)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "blob", Value: strings.Repeat("b", 9<<20)}}}}); err != nil {
		t.Fatal(err)
	}
	var fragments []bson.Raw
	eventually(t, "the update's fragments", func() bool {
		fragments = fragmentsOf(t, client, name)
		return len(fragments) >= 2 && len(fragments) == int(fragments[0].Lookup("split_event", "of").Int32())
	})
	return fragments
}

// captureRunning starts a collector capturing database db of a new server as source
// name, with the store on that server too, and waits until it runs. It returns a client
// of the server and the configuration, to start the collector again with.
func captureRunning(t *testing.T, name, db string) (*mongo.Client, *config.Config, *harness) {
	t.Helper()
	uri := mongotest.URI(t)
	cfg := collectorConfig(t, uri, "", shortLease, testSource{name: name, uri: uri, database: db})
	h := startManager(t, cfg)
	h.waitState(name, stateRunning)
	return testsupport.Connect(t, uri), cfg, h
}

func fragmentsOf(t *testing.T, client *mongo.Client, name string) []bson.Raw {
	var out []bson.Raw
	for _, d := range stored(t, client, name) {
		if d.Lookup("split_event").Type != 0 {
			out = append(out, d)
		}
	}
	return out
}

// A stream resumed inside a split event, at a fragment's position (as an older version
// of this collector saved one on SIGTERM while a large event was read): the remaining
// fragments are stored with the event's type and cluster time, not "" and 0, so the
// store's oldest entry and the window stay true.
func TestResumeInsideASplitEventKeepsTheEventsFields(t *testing.T) {
	client, cfg, h := captureRunning(t, "split", "big")
	fragments := splitUpdate(t, client, "split", "big")
	h.stop()

	// Put the store back as it was when only the first fragment was written and its
	// token saved.
	first := fragments[0]
	store := client.Database(config.DefaultStoreDatabase)
	ts := first.Lookup("ts")
	if _, err := store.Collection(oplogstore.TokensCollection("split")).UpdateOne(t.Context(),
		bson.D{{Key: "_id", Value: oplogstore.TokenID("split")}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "token", Value: first.Lookup("_resume_token")}, {Key: "cluster_time", Value: ts}}}}); err != nil {
		t.Fatal(err)
	}
	later := bson.A{}
	for _, f := range fragments[1:] {
		later = append(later, f.Lookup("_id").StringValue())
	}
	if _, err := store.Collection(oplogstore.EventsCollection("split")).DeleteMany(t.Context(), bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: later}}}}); err != nil {
		t.Fatal(err)
	}

	h2 := startManager(t, cfg)
	var again []bson.Raw
	eventually(t, "the later fragments stored again", func() bool {
		again = fragmentsOf(t, client, "split")
		return len(again) == len(fragments)
	})
	for i, f := range again {
		if op := f.Lookup("op_type").StringValue(); op != "update" {
			t.Errorf("fragment %d stored with op_type %q, want update", i+1, op)
		}
		if !f.Lookup("ts").Equal(ts) {
			t.Errorf("fragment %d stored with ts %v, want the event's %v", i+1, f.Lookup("ts"), ts)
		}
	}
	eventually(t, "the store's oldest entry to be reported", func() bool {
		return h2.gauge("oplog_capture_store_oldest_timestamp_seconds", "source_cluster", "split") > 0
	})
}

// A split event's last fragment is no position to resume from: the server would render
// the event again there, with updateLookup's document as it is then, and mongod's split
// stage fails a stream resumed at a fragment of an event that no longer splits so far
// (280, which would stop the capture as a lost resume token). Here the document shrinks
// while the collector is stopped after the event: started again, it goes on, and the
// store holds the event whole, read again, with nothing of the old split left.
func TestRestartAfterASplitEventWhoseDocumentShrank(t *testing.T) {
	uri := mongotest.URI(t)
	cfg := collectorConfig(t, uri, "", shortLease, testSource{name: "shrunk", uri: uri, database: "big"})
	cfg.Collector.CheckpointInterval = time.Hour // only events' positions are saved
	h := startManager(t, cfg)
	h.waitState("shrunk", stateRunning)
	client := testsupport.Connect(t, uri)
	splitUpdate(t, client, "shrunk", "big")
	h.stop()
	coll := client.Database("big").Collection("blobs")
	if _, err := coll.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$unset", Value: bson.D{{Key: "blob", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}

	h2 := startManager(t, cfg)
	eventually(t, "the $unset stored", func() bool {
		if s := h2.state("shrunk"); s == stateResumeTokenLost || s == stateError {
			t.Fatalf("the capture is %s:\n%s", s, h2.logs.String())
		}
		for _, d := range stored(t, client, "shrunk") {
			if d.Lookup("update_description", "removedFields").String() == `["blob"]` {
				return true
			}
		}
		return false
	})
	if fragments := fragmentsOf(t, client, "shrunk"); len(fragments) != 0 {
		t.Errorf("%d fragments of the old split left in the store, want none: the event is stored whole as read again", len(fragments))
	}
	readAll(t, client, "shrunk")
}

// The driver resumes a stream that lost its connection from its last token, a
// fragment's inside a split event: the server renders the event again with the
// document as it is then, and when it no longer splits fails the stream (280). That
// says nothing of the reader's own position, before the event: the reader opens the
// stream there again, and reads the event whole, instead of stopping the capture as if
// its position were gone.
func TestDriverResumeInsideASplitEvent(t *testing.T) {
	uri := mongotest.URI(t)
	cfg := collectorConfig(t, uri, "", shortLease, testSource{name: "resplit", uri: uri, database: "big"})
	cfg.Collector.Batch.MaxEvents = 1 // a getMore of one document: each fragment in its own
	h := startManager(t, cfg)
	h.waitState("resplit", stateRunning)
	client := testsupport.Connect(t, uri)
	coll := client.Database("big").Collection("blobs")
	if _, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}, {Key: "blob", Value: strings.Repeat("a", 9<<20)}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the insert stored", func() bool { return hasStored(t, client, "resplit", "insert") })
	// From now on, the stream's getMores (not the one waiting already) wait, then lose
	// their connection: the driver resumes the stream itself.
	setFailPoint(t, client, "alwaysOn", bson.D{{Key: "failCommands", Value: bson.A{"getMore"}}, {Key: "blockConnection", Value: true},
		{Key: "blockTimeMS", Value: 3000}, {Key: "closeConnection", Value: true}, {Key: "appName", Value: "oplog_collector"}})
	if _, err := coll.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "blob", Value: strings.Repeat("b", 9<<20)}}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first fragment stored", func() bool { return len(fragmentsOf(t, client, "resplit")) > 0 })
	// While the getMore after it waits, the document shrinks: the event, rendered
	// again, is no longer split.
	if _, err := coll.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$unset", Value: bson.D{{Key: "blob", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}
	if err := client.Database("admin").RunCommand(t.Context(), bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the $unset stored", func() bool {
		if s := h.state("resplit"); s == stateResumeTokenLost || s == stateError {
			t.Fatalf("the capture is %s:\n%s", s, h.logs.String())
		}
		return hasStored(t, client, "resplit", "update") && len(fragmentsOf(t, client, "resplit")) == 0
	})
	readAll(t, client, "resplit")
}

// hasStored tells whether the store holds an event of source name of type opType.
func hasStored(t *testing.T, client *mongo.Client, name, opType string) bool {
	for _, d := range stored(t, client, name) {
		if d.Lookup("op_type").StringValue() == opType {
			return true
		}
	}
	return false
}

// readAll reads every event of source name from the store, failing on an incomplete
// one.
func readAll(t *testing.T, client *mongo.Client, name string) {
	t.Helper()
	reader, err := oplogstore.ReadEvents(t.Context(), client.Database(config.DefaultStoreDatabase), name, nil, bson.Timestamp{T: math.MaxUint32})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(t.Context())
	for {
		if _, err := reader.Next(t.Context()); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("reading the store: %v", err)
		}
	}
}

// A source document of 16 MiB less 300 bytes: its store document, with the store's own
// fields, is over the 16 MiB a server stores. It is stored in parts that join back into
// it, and capture goes on past it instead of retrying it for ever.
func TestOversizedEventIsStoredInParts(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	h := startManager(t, collectorConfig(t, uri, "", shortLease, testSource{name: "huge", uri: uri, database: "huge"}))
	h.waitState("huge", stateRunning)
	coll := client.Database("huge").Collection("c")
	if _, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 0}}); err != nil { // the collection's create event first
		t.Fatal(err)
	}
	blob := strings.Repeat("z", oplogstore.MaxDocumentSize-300-30) // 30: the document's _id and field names
	if _, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}, {Key: "blob", Value: blob}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 2}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the insert after the large one", func() bool {
		for _, d := range stored(t, client, "huge") {
			if id, _ := d.Lookup("doc_key", "_id").Int32OK(); id == 2 {
				return true
			}
		}
		return false
	})
	var parts []bson.Raw
	for _, d := range stored(t, client, "huge") {
		if _, _, ok := oplogstore.PartOf(d); ok {
			parts = append(parts, d)
		}
	}
	if len(parts) < 2 {
		t.Fatalf("%d parts stored, want the large event in 2 or more", len(parts))
	}
	whole, err := oplogstore.Join(parts)
	if err != nil {
		t.Fatal(err)
	}
	if len(whole) <= oplogstore.MaxDocumentSize {
		t.Errorf("the joined event is %d bytes: it would have fitted in one document", len(whole))
	}
	if got := whole.Lookup("full_document", "blob").StringValue(); got != blob || whole.Lookup("op_type").StringValue() != "insert" {
		t.Errorf("the joined event lacks the inserted document (blob of %d bytes, op_type %q)", len(got), whole.Lookup("op_type").StringValue())
	}
}

// A crash can leave in the store part of an event after the saved position (here a first
// fragment that says the event had three), and the event read again may come otherwise
// (with updateLookup, the document and the split are those at read time). Capture starts
// again by dropping what was stored after its position, so the store holds each event
// once, as read last, and no fragment of another reading.
func TestRestartDropsWhatWasStoredAfterThePosition(t *testing.T) {
	client, cfg, h := captureRunning(t, "stale", "big")
	fragments := splitUpdate(t, client, "stale", "big")
	h.stop()

	// Back to the position before the split update, with its first fragment stored as
	// another reading of it would have split it.
	store := client.Database(config.DefaultStoreDatabase)
	events := store.Collection(oplogstore.EventsCollection("stale"))
	var before bson.Raw
	for _, d := range stored(t, client, "stale") {
		if d.Lookup("_id").StringValue() < fragments[0].Lookup("_id").StringValue() {
			before = d
		}
	}
	if _, err := store.Collection(oplogstore.TokensCollection("stale")).UpdateOne(t.Context(),
		bson.D{{Key: "_id", Value: oplogstore.TokenID("stale")}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "token", Value: before.Lookup("_resume_token")}, {Key: "cluster_time", Value: before.Lookup("ts")}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := events.DeleteMany(t.Context(), bson.D{{Key: "split_event", Value: bson.D{{Key: "$exists", Value: true}}}}); err != nil {
		t.Fatal(err)
	}
	first := fragments[0]
	stale := bson.D{}
	for _, e := range mustElements(t, first) {
		if e.Key() == "split_event" {
			stale = append(stale, bson.E{Key: "split_event", Value: bson.D{{Key: "fragment", Value: 1}, {Key: "of", Value: 3}}})
			continue
		}
		stale = append(stale, bson.E{Key: e.Key(), Value: e.Value()})
	}
	if _, err := events.InsertOne(t.Context(), stale); err != nil {
		t.Fatal(err)
	}

	startManager(t, cfg)
	var again []bson.Raw
	eventually(t, "the split update stored again", func() bool {
		again = fragmentsOf(t, client, "stale")
		return len(again) == len(fragments) && again[0].Lookup("split_event", "of").Int32() == int32(len(fragments))
	})
	for i, f := range again {
		if of := f.Lookup("split_event", "of").Int32(); of != int32(len(fragments)) {
			t.Errorf("fragment %d says %d fragments, want %d: a stale reading was kept", i+1, of, len(fragments))
		}
	}
}

func mustElements(t *testing.T, doc bson.Raw) []bson.RawElement {
	t.Helper()
	elems, err := doc.Elements()
	if err != nil {
		t.Fatal(err)
	}
	return elems
}

// Capture starting again at the position of an event stored in parts keeps its parts:
// they sort after its _id, but belong to it.
func TestRestartAtAnEventInPartsKeepsItsParts(t *testing.T) {
	client, cfg, h := captureRunning(t, "parted", "parted")
	coll := client.Database("parted").Collection("c")
	blob := strings.Repeat("p", oplogstore.MaxDocumentSize-300-30)
	if _, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}, {Key: "blob", Value: blob}}); err != nil {
		t.Fatal(err)
	}
	var parts []bson.Raw
	eventually(t, "the large insert in parts", func() bool {
		parts = parts[:0]
		for _, d := range stored(t, client, "parted") {
			if _, _, ok := oplogstore.PartOf(d); ok {
				parts = append(parts, d)
			}
		}
		_, of, _ := oplogstore.PartOf(append(parts, nil)[0])
		return len(parts) > 0 && len(parts) == of
	})
	h.stop()
	store := client.Database(config.DefaultStoreDatabase)
	if _, err := store.Collection(oplogstore.TokensCollection("parted")).UpdateOne(t.Context(),
		bson.D{{Key: "_id", Value: oplogstore.TokenID("parted")}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "token", Value: parts[0].Lookup("_resume_token")}, {Key: "cluster_time", Value: parts[0].Lookup("ts")}}}}); err != nil {
		t.Fatal(err)
	}
	h2 := startManager(t, cfg)
	if _, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 2}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the insert after the restart", func() bool {
		return slices.ContainsFunc(stored(t, client, "parted"), func(d bson.Raw) bool {
			id, _ := d.Lookup("doc_key", "_id").Int32OK()
			return id == 2
		})
	})
	var after []bson.Raw
	for _, d := range stored(t, client, "parted") {
		if _, _, ok := oplogstore.PartOf(d); ok {
			after = append(after, d)
		}
	}
	if _, err := oplogstore.Join(after); err != nil {
		t.Fatalf("after a restart at the event, its parts: %v\n%s", err, h2.logs)
	}
}
