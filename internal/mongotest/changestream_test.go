package mongotest_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// next returns the stream's next event, failing the test at the deadline.
func next(t *testing.T, cs *mongo.ChangeStream) bson.Raw {
	t.Helper()
	if !cs.Next(ctx(t)) {
		t.Fatalf("change stream ended: %v", cs.Err())
	}
	return append(bson.Raw(nil), cs.Current...)
}

func opType(r bson.Raw) string { return r.Lookup("operationType").StringValue() }

func TestChangeStreamEvents(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("events")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 0}}) // create the collection first
	must(t, err)
	cs, err := coll.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetFullDocument(options.UpdateLookup))
	must(t, err)
	defer cs.Close(cx)
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}})
	must(t, err)
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 2}}}, {Key: "$unset", Value: bson.D{{Key: "zz", Value: 1}}}})
	must(t, err)
	_, err = coll.ReplaceOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "b", Value: 1}})
	must(t, err)
	_, err = coll.DeleteOne(cx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)

	ins := next(t, cs)
	if opType(ins) != "insert" || ins.Lookup("fullDocument", "a").Int32() != 1 || ins.Lookup("documentKey", "_id").Int32() != 1 {
		t.Fatalf("insert event %v", ins)
	}
	if ns := ins.Lookup("ns"); ns.Document().Lookup("db").StringValue() != db.Name() || ns.Document().Lookup("coll").StringValue() != "events" {
		t.Fatalf("ns %v", ns)
	}
	if ins.Lookup("clusterTime").Type != bson.TypeTimestamp || ins.Lookup("wallTime").Type != bson.TypeDateTime {
		t.Fatalf("clusterTime/wallTime: %v", ins)
	}
	if _, ok := ins.Lookup("_id", "_data").StringValueOK(); !ok {
		t.Fatalf("resume token is not {_data: string}: %v", ins.Lookup("_id"))
	}
	// A retryable write (the driver's default) is no transaction: mongod
	// puts lsid and txnNumber on transactions' events only.
	if ins.Lookup("lsid").Type != 0 || ins.Lookup("txnNumber").Type != 0 {
		t.Fatalf("lsid/txnNumber on a retryable write's event: %v", ins)
	}
	upd := next(t, cs)
	if opType(upd) != "update" || upd.Lookup("updateDescription", "updatedFields", "a").Int32() != 2 {
		t.Fatalf("update event %v", upd)
	}
	// updateLookup: the document as it is at lookup time (already replaced or deleted: null).
	if ft := upd.Lookup("fullDocument").Type; ft != bson.TypeEmbeddedDocument && ft != bson.TypeNull {
		t.Fatalf("update without fullDocument: %v", upd)
	}
	rep := next(t, cs)
	if opType(rep) != "replace" || rep.Lookup("fullDocument", "b").Int32() != 1 {
		t.Fatalf("replace event %v", rep)
	}
	del := next(t, cs)
	if opType(del) != "delete" || del.Lookup("documentKey", "_id").Int32() != 1 {
		t.Fatalf("delete event %v", del)
	}
	// Tokens are ordered like the events.
	tokens := []string{ins.Lookup("_id", "_data").StringValue(), upd.Lookup("_id", "_data").StringValue(), rep.Lookup("_id", "_data").StringValue(), del.Lookup("_id", "_data").StringValue()}
	for i := 1; i < len(tokens); i++ {
		if !(tokens[i-1] < tokens[i]) {
			t.Fatalf("tokens not increasing: %v", tokens)
		}
	}
}

// TestChangeStreamResumeEverywhere resumes after each event in turn and
// checks the rest of the events come back, in order, exactly once
// (https://www.mongodb.com/docs/manual/changeStreams/#resume-a-change-stream).
func TestChangeStreamResumeEverywhere(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("resume")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: -1}})
	must(t, err)
	cs, err := db.Watch(cx, mongo.Pipeline{})
	must(t, err)
	const n = 12
	for i := 0; i < n; i++ {
		_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: i}})
		must(t, err)
	}
	var tokens []bson.Raw
	for i := 0; i < n; i++ {
		ev := next(t, cs)
		tokens = append(tokens, append(bson.Raw(nil), cs.ResumeToken()...))
		if got := ev.Lookup("documentKey", "_id").Int32(); got != int32(i) {
			t.Fatalf("event %d has _id %d", i, got)
		}
	}
	must(t, cs.Close(cx))
	for i, tok := range tokens {
		// A short await keeps the final empty getMore quick (the default is 1 s).
		short := options.ChangeStream().SetMaxAwaitTime(20 * time.Millisecond)
		for _, opt := range []*options.ChangeStreamOptionsBuilder{short.SetResumeAfter(tok), options.ChangeStream().SetMaxAwaitTime(20 * time.Millisecond).SetStartAfter(tok)} {
			rs, err := db.Watch(cx, mongo.Pipeline{}, opt)
			must(t, err)
			for want := i + 1; want < n; want++ {
				ev := next(t, rs)
				if got := ev.Lookup("documentKey", "_id").Int32(); got != int32(want) {
					t.Fatalf("resumed after %d: got _id %d, want %d", i, got, want)
				}
			}
			if rs.TryNext(cx) {
				t.Fatalf("resumed after %d: extra event %v", i, rs.Current)
			}
			must(t, rs.Close(cx))
		}
	}
	// startAtOperationTime includes the event at that time.
	var first struct {
		ClusterTime bson.Timestamp `bson:"clusterTime"`
	}
	rs, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(tokens[2]))
	must(t, err)
	must(t, bson.Unmarshal(next(t, rs), &first))
	must(t, rs.Close(cx))
	at, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetStartAtOperationTime(&first.ClusterTime))
	must(t, err)
	if got := next(t, at).Lookup("documentKey", "_id").Int32(); got != 3 {
		t.Fatalf("startAtOperationTime: first event _id %d, want 3", got)
	}
	must(t, at.Close(cx))
}

// TestChangeStreamEmptyBatchesAdvance: on a quiet cluster, getMore returns
// empty batches whose postBatchResumeToken advances with the periodic no-op.
func TestChangeStreamEmptyBatchesAdvance(t *testing.T) {
	srv := mongotest.New(t, "a 50ms no-op interval", mongotest.Options{NoopInterval: 50 * time.Millisecond})
	c := connect(t, srv.URI())
	cx := ctx(t)
	cs, err := c.Database("quiet").Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(100*time.Millisecond))
	must(t, err)
	defer cs.Close(cx)
	first := append(bson.Raw(nil), cs.ResumeToken()...)
	if len(first) == 0 {
		t.Fatal("no postBatchResumeToken on the initial batch")
	}
	last := first.Lookup("_data").StringValue()
	advanced := 0
	for advanced < 3 {
		if cs.TryNext(cx) {
			t.Fatalf("unexpected event %v", cs.Current)
		}
		must(t, cs.Err())
		tok := cs.ResumeToken().Lookup("_data").StringValue()
		if tok < last {
			t.Fatalf("token went backwards: %s < %s", tok, last)
		}
		if tok > last {
			advanced++
		}
		last = tok
	}
	// The advanced token resumes without loss: a later write is seen.
	rs, err := c.Database("quiet").Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(cs.ResumeToken()))
	must(t, err)
	defer rs.Close(cx)
	_, err = c.Database("quiet").Collection("c").InsertOne(cx, bson.D{{Key: "x", Value: 1}})
	must(t, err)
	if ev := next(t, rs); opType(ev) != "insert" {
		t.Fatalf("got %v", ev)
	}
}

func TestChangeStreamExpandedEventsAndInvalidate(t *testing.T) {
	db, cx := setup(t)
	c := db.Client()
	dbStream, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	must(t, err)
	defer dbStream.Close(cx)
	coll := db.Collection("ddl")
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	collStream, err := coll.Watch(cx, mongo.Pipeline{})
	must(t, err)
	defer collStream.Close(cx)
	_, err = coll.Indexes().CreateOne(cx, mongo.IndexModel{Keys: bson.D{{Key: "k", Value: 1}}})
	must(t, err)
	err = coll.Indexes().DropOne(cx, "k_1")
	must(t, err)
	must(t, c.Database("admin").RunCommand(cx, bson.D{{Key: "renameCollection", Value: db.Name() + ".ddl"}, {Key: "to", Value: db.Name() + ".ddl2"}}).Err())
	must(t, db.Drop(cx))

	var ops []string
	for {
		ev := next(t, dbStream)
		ops = append(ops, opType(ev))
		switch opType(ev) {
		case "create", "createIndexes", "dropIndexes":
			if ev.Lookup("operationDescription").Type != bson.TypeEmbeddedDocument || ev.Lookup("collectionUUID").Type != bson.TypeBinary {
				t.Fatalf("expanded event without operationDescription/collectionUUID: %v", ev)
			}
		case "rename":
			if ev.Lookup("to", "coll").StringValue() != "ddl2" {
				t.Fatalf("rename event %v", ev)
			}
		}
		if opType(ev) == "invalidate" {
			break
		}
	}
	want := []string{"create", "insert", "createIndexes", "dropIndexes", "rename", "drop", "dropDatabase", "invalidate"}
	if len(ops) != len(want) {
		t.Fatalf("database stream events %v, want %v", ops, want)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Fatalf("database stream events %v, want %v", ops, want)
		}
	}
	// After invalidate the stream is closed.
	if dbStream.Next(cx) {
		t.Fatalf("event after invalidate: %v", dbStream.Current)
	}
	invalidate := dbStream.ResumeToken()

	// The collection stream (no expanded events) sees rename, then invalidate.
	if ev := next(t, collStream); opType(ev) != "rename" {
		t.Fatalf("collection stream: %v", ev)
	}
	if ev := next(t, collStream); opType(ev) != "invalidate" {
		t.Fatalf("collection stream: %v", ev)
	}

	// resumeAfter an invalidate is refused (260); startAfter works
	// (https://www.mongodb.com/docs/manual/changeStreams/#startafter-for-change-streams).
	_, err = db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(invalidate))
	if codeOf(err) != 260 {
		t.Fatalf("resumeAfter invalidate: err = %v, want 260", err)
	}
	sa, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetStartAfter(invalidate))
	must(t, err)
	defer sa.Close(cx)
	_, err = db.Collection("again").InsertOne(cx, bson.D{{Key: "_id", Value: "back"}})
	must(t, err)
	if ev := next(t, sa); opType(ev) != "insert" || ev.Lookup("documentKey", "_id").StringValue() != "back" {
		t.Fatalf("after startAfter: %v", ev)
	}
}

func TestClusterStream(t *testing.T) {
	db, cx := setup(t)
	c := db.Client()
	cs, err := c.Watch(cx, mongo.Pipeline{bson.D{{Key: "$match", Value: bson.D{{Key: "ns.db", Value: db.Name()}}}}})
	must(t, err)
	defer cs.Close(cx)
	_, err = db.Collection("a").InsertOne(cx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	_, err = db.Collection("b").InsertOne(cx, bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	a, b := next(t, cs), next(t, cs)
	if a.Lookup("ns", "coll").StringValue() != "a" || b.Lookup("ns", "coll").StringValue() != "b" {
		t.Fatalf("cluster stream: %v then %v", a, b)
	}
	// $project keeping _id works; removing _id is refused (280).
	ps, err := db.Watch(cx, mongo.Pipeline{bson.D{{Key: "$project", Value: bson.D{{Key: "operationType", Value: 1}}}}})
	must(t, err)
	_, err = db.Collection("a").InsertOne(cx, bson.D{{Key: "_id", Value: 3}})
	must(t, err)
	if ev := next(t, ps); len(mustElems(t, ev)) != 2 {
		t.Fatalf("projected event %v", ev)
	}
	must(t, ps.Close(cx))
	bad, err := db.Watch(cx, mongo.Pipeline{bson.D{{Key: "$project", Value: bson.D{{Key: "_id", Value: 0}}}}})
	must(t, err)
	_, err = db.Collection("a").InsertOne(cx, bson.D{{Key: "_id", Value: 4}})
	must(t, err)
	if bad.Next(cx) || codeOf(bad.Err()) != 280 {
		t.Fatalf("stream with _id removed: err = %v, want 280", bad.Err())
	}
	// Changing the token is refused too.
	changed, err := db.Watch(cx, mongo.Pipeline{bson.D{{Key: "$project", Value: bson.D{{Key: "_id._data", Value: 0}}}}})
	must(t, err)
	_, err = db.Collection("a").InsertOne(cx, bson.D{{Key: "_id", Value: 5}})
	must(t, err)
	if changed.Next(cx) || codeOf(changed.Err()) != 280 {
		t.Fatalf("stream with _id changed: err = %v, want 280", changed.Err())
	}
	// Expressions this server does not implement are refused when the
	// stream opens (115), naming them.
	if _, err := db.Watch(cx, mongo.Pipeline{bson.D{{Key: "$addFields", Value: bson.D{{Key: "x", Value: bson.D{{Key: "$toUpper", Value: "$ns.coll"}}}}}}}); codeOf(err) != 115 || !strings.Contains(err.Error(), "$toUpper") {
		t.Fatalf("$toUpper: err = %v, want 115", err)
	}
}

func mustElems(t *testing.T, r bson.Raw) []bson.RawElement {
	e, err := r.Elements()
	must(t, err)
	return e
}

// TestChangeStreamHistoryLost: a token older than the retained history
// fails with 286 ChangeStreamHistoryLost, labelled
// NonResumableChangeStreamError so drivers do not retry it.
func TestChangeStreamHistoryLost(t *testing.T) {
	srv := mongotest.New(t, "a 5-event history", mongotest.Options{History: 5})
	c := connect(t, srv.URI())
	cx := ctx(t)
	coll := c.Database("h").Collection("c")
	cs, err := coll.Database().Watch(cx, mongo.Pipeline{})
	must(t, err)
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 0}})
	must(t, err)
	next(t, cs) // the insert (create is an expanded event)
	old := append(bson.Raw(nil), cs.ResumeToken()...)
	must(t, cs.Close(cx))
	for i := 1; i <= 5; i++ {
		_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: i}})
		must(t, err)
	}
	_, err = coll.Database().Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(old))
	assertHistoryLost(t, err)

	// TruncateHistory loses everything issued so far, even a fresh token.
	cs, err = coll.Database().Watch(cx, mongo.Pipeline{})
	must(t, err)
	tok := append(bson.Raw(nil), cs.ResumeToken()...)
	must(t, cs.Close(cx))
	srv.TruncateHistory()
	_, err = coll.Database().Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(tok))
	assertHistoryLost(t, err)
}

// TestChangeStreamHistorySlides: long after the history filled up, it still
// holds exactly the newest events, in order: resuming from the oldest one it
// holds works, from the one before it is lost.
func TestChangeStreamHistorySlides(t *testing.T) {
	const history, writes = 5, 100
	srv := mongotest.New(t, "a 5-event history", mongotest.Options{History: history})
	c := connect(t, srv.URI())
	cx := ctx(t)
	coll := c.Database("h").Collection("c")
	cs, err := coll.Database().Watch(cx, mongo.Pipeline{})
	must(t, err)
	var tokens []bson.Raw // tokens[i] is the token of the insert of _id i
	for i := range writes {
		_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: i}})
		must(t, err)
		next(t, cs)
		tokens = append(tokens, append(bson.Raw(nil), cs.ResumeToken()...))
	}
	must(t, cs.Close(cx))
	// The history holds the inserts of _id 95 to 99: resuming after 95 returns 96 to 99.
	cs, err = coll.Database().Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(tokens[writes-history]))
	must(t, err)
	for want := writes - history + 1; want < writes; want++ {
		if got := next(t, cs).Lookup("documentKey", "_id").Int32(); got != int32(want) {
			t.Fatalf("resumed stream returned _id %d, want %d", got, want)
		}
	}
	must(t, cs.Close(cx))
	_, err = coll.Database().Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(tokens[writes-history-1]))
	assertHistoryLost(t, err)
}

func assertHistoryLost(t *testing.T, err error) {
	t.Helper()
	var ce mongo.CommandError
	if !errors.As(err, &ce) || ce.Code != 286 || !ce.HasErrorLabel("NonResumableChangeStreamError") {
		t.Fatalf("err = %v, want 286 with NonResumableChangeStreamError", err)
	}
}
