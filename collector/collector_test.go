package collector

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// Every kind of event the old collector captured, in order, with every field of its
// layout and the additions; a database-scoped stream continues past dropDatabase's
// invalidate with startAfter.
func TestCaptureEveryEventKind(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	h := startManager(t, collectorConfig(t, uri, uri, "", testSource{name: "app", uri: uri, database: "shop"}))
	h.waitState("app", stateRunning)
	eventually(t, "the first token to be saved", func() bool {
		return client.Database(config.DefaultStoreDatabase).Collection("resume_tokens_for_app").FindOne(t.Context(), bson.D{}).Err() == nil
	})

	ctx := t.Context()
	db := client.Database("shop")
	orders := db.Collection("orders")
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "item", Value: "pen"}, {Key: "qty", Value: 2}})
	mustDo(err)
	_, err = orders.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "qty", Value: 3}}}})
	mustDo(err)
	_, err = orders.ReplaceOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "item", Value: "ink"}})
	mustDo(err)
	_, err = orders.DeleteOne(ctx, bson.D{{Key: "_id", Value: 1}})
	mustDo(err)
	_, err = orders.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "item", Value: 1}}})
	mustDo(err)
	mustDo(orders.Indexes().DropOne(ctx, "item_1"))
	mustDo(db.CreateCollection(ctx, "audit"))
	mustDo(client.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "shop.audit"}, {Key: "to", Value: "shop.audit_old"}}).Err())
	mustDo(db.Collection("audit_old").Drop(ctx))
	mustDo(db.Drop(ctx)) // dropDatabase, then invalidate: the stream must go on with startAfter
	_, err = client.Database("shop").Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
	mustDo(err)

	// Inserting into a collection that does not exist creates it: a create event first.
	want := []string{"create", "insert", "update", "replace", "delete", "createIndexes", "dropIndexes", "create", "rename", "drop",
		"drop", "dropDatabase", "invalidate", "create", "insert"}
	var docs []bson.Raw
	eventually(t, "every event to be stored", func() bool {
		docs = stored(t, client, "app")
		return len(docs) >= len(want) && docs[len(docs)-1].Lookup("op_type").StringValue() == "insert"
	})
	// The drop of orders by dropDatabase may be reported once per collection: compare
	// the kinds in order without requiring a given number of drops.
	got := slices.Compact(opTypes(docs))
	if !slices.Equal(got, slices.Compact(want)) {
		t.Fatalf("stored event kinds\n%v\nwant\n%v", opTypes(docs), want)
	}

	first := func(op string) bson.Raw {
		t.Helper()
		for _, d := range docs {
			if d.Lookup("op_type").StringValue() == op {
				return d
			}
		}
		t.Fatalf("no %s event stored", op)
		return nil
	}
	insert := first("insert")
	checkType := func(doc bson.Raw, field string, want bson.Type) {
		t.Helper()
		if v := doc.Lookup(field); v.Type != want {
			t.Errorf("%s %s: BSON %s, want %s (%s)", doc.Lookup("op_type"), field, v.Type, want, doc)
		}
	}
	for field, typ := range map[string]bson.Type{
		"_id": bson.TypeString, "_resume_token": bson.TypeEmbeddedDocument, "cluster_name": bson.TypeString,
		"ts": bson.TypeTimestamp, "wall": bson.TypeDateTime, "op_type": bson.TypeString, "ns": bson.TypeString,
		"doc_key": bson.TypeEmbeddedDocument, "full_document": bson.TypeEmbeddedDocument, "update_description": bson.TypeNull,
		"to": bson.TypeNull, "operation_description": bson.TypeNull, "wall_time": bson.TypeDateTime, "collection_uuid": bson.TypeBinary,
	} {
		checkType(insert, field, typ)
	}
	if insert.Lookup("_id").StringValue() != insert.Lookup("_resume_token", "_data").StringValue() {
		t.Errorf("_id is not the resume token's _data: %s", insert)
	}
	if ns := insert.Lookup("ns").StringValue(); ns != "shop.orders" {
		t.Errorf("ns %q, want shop.orders", ns)
	}
	if c := insert.Lookup("cluster_name").StringValue(); c != "app" {
		t.Errorf("cluster_name %q", c)
	}
	update := first("update")
	checkType(update, "update_description", bson.TypeEmbeddedDocument)
	if qty, _ := update.Lookup("update_description", "updatedFields", "qty").AsInt64OK(); qty != 3 {
		t.Errorf("update_description: %s", update.Lookup("update_description"))
	}
	// updateLookup returns the document as it is when the event is read, not as the
	// update left it (the reference's pitfall): by then it may be replaced or deleted.
	switch fd := update.Lookup("full_document"); fd.Type {
	case bson.TypeNull:
	case bson.TypeEmbeddedDocument:
		if id, _ := fd.Document().Lookup("_id").AsInt64OK(); id != 1 {
			t.Errorf("full_document of an update (updateLookup) is another document: %s", fd)
		}
	default:
		t.Errorf("full_document of an update: BSON %s", fd.Type)
	}
	checkType(first("createIndexes"), "operation_description", bson.TypeEmbeddedDocument)
	rename := first("rename")
	if to := rename.Lookup("to", "coll").StringValue(); to != "audit_old" {
		t.Errorf("rename's to: %s", rename.Lookup("to"))
	}
	for _, d := range docs {
		if d.Lookup("op_type").StringValue() == "dropDatabase" && d.Lookup("ns").StringValue() != "shop." {
			t.Errorf("dropDatabase ns: %s", d.Lookup("ns"))
		}
	}
	// Source order: cluster times never go back.
	for i := 1; i < len(docs); i++ {
		a, b := docs[i-1].Lookup("ts"), docs[i].Lookup("ts")
		at, ai := a.Timestamp()
		bt, bi := b.Timestamp()
		if bt < at || (bt == at && bi < ai) {
			t.Errorf("event %d is older than event %d", i, i-1)
		}
	}
	// The heartbeat document, in the old collector's format.
	var meta bson.Raw
	eventually(t, "the heartbeat document", func() bool {
		var err error
		meta, err = client.Database(config.DefaultCollectorMetadataDatabase).Collection(config.DefaultCollectorMetadataCollection).
			FindOne(t.Context(), bson.D{{Key: "name", Value: "app"}}).Raw()
		return err == nil && meta.Lookup("collector_status", "first_oplog_time_utc").Type == bson.TypeString
	})
	if s := meta.Lookup("collector_status", "status").StringValue(); s != stateRunning {
		t.Errorf("heartbeat status %q", s)
	}
	if last := meta.Lookup("collector_status", "last_collector_reported_utc").StringValue(); !strings.HasSuffix(last, "+00:00") || len(last) != len("2025-06-02T10:00:00+00:00") {
		t.Errorf("heartbeat time %q is not Python's isoformat", last)
	}
	if scope := meta.Lookup("change_stream_target_db").StringValue(); scope != "shop" {
		t.Errorf("change_stream_target_db %q", scope)
	}
	if strings.Contains(meta.String(), "mongodb://") {
		t.Errorf("a connection string reached the metadata document: %s", meta)
	}
	if n := h.gauge("oplog_capture_events_total", "source_cluster", "app", "op_type", "insert"); n != 2 {
		t.Errorf("oplog_capture_events_total{op_type=insert} = %v, want 2", n)
	}
}

// Stopping saves the token; the next start resumes there: nothing lost, nothing twice.
func TestResumeAfterRestart(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	cfg := collectorConfig(t, uri, "", "", testSource{name: "restart", uri: uri, database: "restartdb"})
	h := startManager(t, cfg)
	h.waitState("restart", stateRunning)
	eventually(t, "the first token", func() bool {
		return client.Database(config.DefaultStoreDatabase).Collection("resume_tokens_for_restart").FindOne(t.Context(), bson.D{}).Err() == nil
	})
	insertSeq(t, client, "restartdb", "c", 0, 30)
	eventually(t, "30 events", func() bool { return len(insertedIDs(stored(t, client, "restart"))) == 30 })
	h.stop()
	if s := h.state("restart"); s != "" {
		t.Fatalf("a stopped manager still lists the source in state %q", s)
	}
	insertSeq(t, client, "restartdb", "c", 30, 60) // written while no collector runs
	h2 := startManager(t, cfg)
	insertSeq(t, client, "restartdb", "c", 60, 70)
	eventually(t, "70 events", func() bool { return len(insertedIDs(stored(t, client, "restart"))) >= 70 })
	h2.waitState("restart", stateRunning)
	if ids := insertedIDs(stored(t, client, "restart")); !slices.Equal(ids, seq(0, 70)) {
		t.Fatalf("stored inserts %v, want 0..69 once each, in order", ids)
	}
}

// On a quiet source the post-batch resume token is saved, so the checkpoint, and with it
// the lag, advance with no event at all.
func TestQuietSourceCheckpointAdvances(t *testing.T) {
	srv := mongotest.New(t, "a short no-op interval so the idle cluster time moves", mongotest.Options{NoopInterval: 50 * time.Millisecond})
	uri := srv.URI()
	client := testsupport.Connect(t, uri)
	h := startManager(t, collectorConfig(t, uri, "", "", testSource{name: "quiet", uri: uri}))
	h.waitState("quiet", stateRunning)
	tokenTime := func() uint32 {
		raw, err := client.Database(config.DefaultStoreDatabase).Collection("resume_tokens_for_quiet").FindOne(t.Context(), bson.D{}).Raw()
		if err != nil {
			return 0
		}
		ts, _ := raw.Lookup("cluster_time").Timestamp()
		return ts
	}
	var first uint32
	eventually(t, "a saved checkpoint", func() bool { first = tokenTime(); return first > 0 })
	eventually(t, "the checkpoint to advance with no event", func() bool { return tokenTime() > first })
	if n := len(stored(t, client, "quiet")); n != 0 { // the store's own writes are not captured
		t.Fatalf("%d events stored from a quiet source", n)
	}
	if got := h.gauge("oplog_capture_checkpoint_timestamp_seconds", "source_cluster", "quiet"); got < float64(first) {
		t.Fatalf("checkpoint metric %v is behind the saved token %d", got, first)
	}
}

// Reload adds and removes sources without touching the others; deregister removes a
// source's data and metadata while the rest run.
func TestReloadAndDeregister(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	one := collectorConfig(t, uri, uri, "", testSource{name: "keep", uri: uri, database: "k"})
	h := startManager(t, one)
	h.waitState("keep", stateRunning)
	insertSeq(t, client, "k", "c", 0, 5)
	eventually(t, "keep's first events", func() bool { return len(insertedIDs(stored(t, client, "keep"))) == 5 })

	two := collectorConfig(t, uri, uri, "", testSource{name: "keep", uri: uri, database: "k"}, testSource{name: "added", uri: uri, database: "n"})
	if err := h.manager.Apply(two); err != nil {
		t.Fatal(err)
	}
	h.waitState("added", stateRunning)
	eventually(t, "added's first token", func() bool {
		return client.Database(config.DefaultStoreDatabase).Collection("resume_tokens_for_added").FindOne(t.Context(), bson.D{}).Err() == nil
	})
	insertSeq(t, client, "n", "c", 0, 3)
	insertSeq(t, client, "k", "c", 5, 8)
	eventually(t, "both sources capturing", func() bool {
		return len(insertedIDs(stored(t, client, "added"))) == 3 && len(insertedIDs(stored(t, client, "keep"))) == 8
	})
	if strings.Count(h.logs.String(), `source_cluster=keep msg="State changed" state=starting`) != 1 {
		t.Fatalf("adding a source restarted the other one:\n%s", h.logs)
	}

	if _, err := h.manager.Deregister(t.Context(), "added", tester); err != nil {
		t.Fatal(err)
	}
	if n := len(stored(t, client, "added")); n != 0 {
		t.Fatalf("deregister left %d events", n)
	}
	err := client.Database(config.DefaultCollectorMetadataDatabase).Collection(config.DefaultCollectorMetadataCollection).
		FindOne(t.Context(), bson.D{{Key: "name", Value: "added"}}).Err()
	if err != mongo.ErrNoDocuments {
		t.Fatalf("deregister left the metadata document (%v)", err)
	}
	if err := h.manager.Apply(one); err != nil { // the config no longer lists it
		t.Fatal(err)
	}
	if s := h.state("added"); s != "" {
		t.Fatalf("removed source still listed, state %q", s)
	}
	insertSeq(t, client, "k", "c", 8, 10)
	eventually(t, "keep to go on", func() bool { return len(insertedIDs(stored(t, client, "keep"))) == 10 })
	if got := h.gauge("oplog_capture_state", "source_cluster", "added", "state", stateRunning); got != -1 {
		t.Fatalf("a deregistered source's series remain (%v)", got)
	}
}

// A store and metadata written by the old collector (package oplogstore): its token
// document (the event's _id under token) is resumed from, its ObjectId-keyed events
// stay, and its heartbeat document is updated in place.
func TestOldCollectorLayoutIsContinued(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	// Let a change stream run as the old tool's would, and keep the token it saved.
	cs, err := client.Database("legacy").Watch(t.Context(), mongo.Pipeline{})
	if err != nil {
		t.Fatal(err)
	}
	insertSeq(t, client, "legacy", "c", 0, 3)
	storeDB := client.Database(config.DefaultStoreDatabase)
	var lastToken bson.Raw
	for i := 0; i < 3 && cs.Next(t.Context()); i++ {
		ev := cs.Current
		_, err := storeDB.Collection("oplogs_legacy").InsertOne(t.Context(), bson.D{
			{Key: "_id", Value: bson.NewObjectID()}, {Key: "_resume_token", Value: ev.Lookup("_id")},
			{Key: "cluster_name", Value: "legacy"}, {Key: "ts", Value: ev.Lookup("clusterTime")},
			{Key: "wall", Value: bson.NewDateTimeFromTime(time.Now())}, {Key: "op_type", Value: "insert"},
			{Key: "ns", Value: "legacy.c"}, {Key: "doc_key", Value: ev.Lookup("documentKey")},
			{Key: "full_document", Value: ev.Lookup("fullDocument")}, {Key: "update_description", Value: nil},
			{Key: "to", Value: nil}, {Key: "operation_description", Value: nil},
		})
		if err != nil {
			t.Fatal(err)
		}
		lastToken = ev.Lookup("_id").Document()
	}
	_ = cs.Close(t.Context())
	if _, err := storeDB.Collection("resume_tokens_for_legacy").InsertOne(t.Context(), bson.D{
		{Key: "_id", Value: "resume_token_legacy"}, {Key: "token", Value: lastToken}, {Key: "updated_at", Value: bson.NewDateTimeFromTime(time.Now())},
	}); err != nil {
		t.Fatal(err)
	}
	metaColl := client.Database(config.DefaultCollectorMetadataDatabase).Collection(config.DefaultCollectorMetadataCollection)
	if _, err := metaColl.InsertOne(t.Context(), bson.D{
		{Key: "_id", Value: "9d5a3c1e-0000-4000-8000-00000000000a"}, {Key: "name", Value: "legacy"},
		{Key: "source_connection_string", Value: "mongodb://old:pw@legacy:27017"}, {Key: "registration_utc", Value: "2025-01-01T00:00:00+00:00"},
		{Key: "collector_status", Value: bson.D{{Key: "status", Value: "stopped"}, {Key: "pid", Value: 123}}},
	}); err != nil {
		t.Fatal(err)
	}
	insertSeq(t, client, "legacy", "c", 3, 6) // written between the old tool's stop and ours

	h := startManager(t, collectorConfig(t, uri, uri, "", testSource{name: "legacy", uri: uri, database: "legacy"}))
	h.waitState("legacy", stateRunning)
	eventually(t, "the events after the old tool's token", func() bool { return len(insertedIDs(stored(t, client, "legacy"))) == 6 })
	docs := stored(t, client, "legacy")
	var ids []int32
	for _, d := range docs {
		ids = append(ids, d.Lookup("doc_key", "_id").Int32())
	}
	slices.Sort(ids)
	if !slices.Equal(ids, seq(0, 6)) {
		t.Fatalf("old and new events together: %v, want 0..5 once each", ids)
	}
	eventually(t, "the old heartbeat document updated in place", func() bool {
		n, _ := metaColl.CountDocuments(t.Context(), bson.D{{Key: "name", Value: "legacy"}})
		raw, _ := metaColl.FindOne(t.Context(), bson.D{{Key: "name", Value: "legacy"}}).Raw()
		return n == 1 && raw.Lookup("collector_status", "status").StringValue() == stateRunning &&
			raw.Lookup("_id").StringValue() == "9d5a3c1e-0000-4000-8000-00000000000a"
	})
}

func TestServerFeaturesByVersion(t *testing.T) {
	for _, c := range []struct {
		version         []int32
		expanded, split bool
	}{
		{[]int32{4, 4, 29}, false, false},
		{[]int32{5, 0, 0}, false, false},
		{[]int32{6, 0, 8}, true, false},
		{[]int32{6, 0, 9}, true, true},
		{[]int32{6, 3, 1}, true, false},
		{[]int32{7, 0, 0}, true, true},
		{[]int32{8, 0, 4, 0}, true, true},
		{nil, false, false},
	} {
		f := featuresOf(c.version)
		if f.showExpandedEvents != c.expanded || f.splitLargeEvents != c.split {
			t.Errorf("version %v: showExpandedEvents %v, split %v; want %v, %v", c.version, f.showExpandedEvents, f.splitLargeEvents, c.expanded, c.split)
		}
	}
}

// An event over 16 MB (an update whose full document and update description are 9 MB
// each) arrives split by $changeStreamSplitLargeEvent; every fragment is stored with its
// own token and split_event, the type and cluster time of the whole event, so a replay
// can put them back together.
func TestLargeEventIsStoredInFragments(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	h := startManager(t, collectorConfig(t, uri, "", "", testSource{name: "large", uri: uri, database: "big"}))
	h.waitState("large", stateRunning)
	eventually(t, "the first token", func() bool {
		return client.Database(config.DefaultStoreDatabase).Collection("resume_tokens_for_large").FindOne(t.Context(), bson.D{}).Err() == nil
	})
	coll := client.Database("big").Collection("blobs")
	nineMB := strings.Repeat("a", 9<<20)
	if _, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}, {Key: "blob", Value: nineMB}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "blob", Value: strings.Repeat("b", 9<<20)}}}}); err != nil {
		t.Fatal(err)
	}
	var fragments []bson.Raw
	eventually(t, "the update's fragments", func() bool {
		fragments = fragments[:0]
		for _, d := range stored(t, client, "large") {
			if d.Lookup("split_event").Type != 0 {
				fragments = append(fragments, d)
			}
		}
		return len(fragments) >= 2 && len(fragments) == int(fragments[0].Lookup("split_event", "of").Int32())
	})
	ts := fragments[0].Lookup("ts")
	for i, f := range fragments {
		if n := f.Lookup("split_event", "fragment").Int32(); n != int32(i+1) {
			t.Errorf("fragment %d stored as fragment %d", i+1, n)
		}
		if op := f.Lookup("op_type").StringValue(); op != "update" {
			t.Errorf("fragment %d has op_type %q, want the event's: update", i+1, op)
		}
		if !f.Lookup("ts").Equal(ts) {
			t.Errorf("fragment %d has another cluster time", i+1)
		}
		if f.Lookup("_id").StringValue() != f.Lookup("_resume_token", "_data").StringValue() {
			t.Errorf("fragment %d: _id is not its own token", i+1)
		}
	}
	// Together the fragments hold the whole event: the new blob in full_document and
	// in update_description.
	var whole, described bool
	for _, f := range fragments {
		if v, ok := f.Lookup("full_document", "blob").StringValueOK(); ok && len(v) == 9<<20 {
			whole = true
		}
		if v, ok := f.Lookup("update_description", "updatedFields", "blob").StringValueOK(); ok && len(v) == 9<<20 {
			described = true
		}
	}
	if !whole || !described {
		t.Fatalf("the fragments lack part of the event: full_document %v, update_description %v", whole, described)
	}
}
