package mongotest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// Collection features applications use and replay rebuilds: collMod's index
// options (hidden, prepareUnique, unique), capped, collated and clustered
// collections, as mongod runs them and as its change events show them.

// indexSpec is the listed specification of the index named name.
func indexSpec(t *testing.T, coll *mongo.Collection, name string) bson.Raw {
	t.Helper()
	cur, err := coll.Indexes().List(ctx(t))
	must(t, err)
	var specs []bson.Raw
	must(t, cur.All(ctx(t), &specs))
	for _, s := range specs {
		if s.Lookup("name").StringValue() == name {
			return s
		}
	}
	t.Fatalf("%s has no index %s: %v", coll.Name(), name, specs)
	return nil
}

// collectionInfo is listCollections' entry for name.
func collectionInfo(t *testing.T, db *mongo.Database, name string) bson.Raw {
	t.Helper()
	cur, err := db.ListCollections(ctx(t), d("name", name))
	must(t, err)
	var infos []bson.Raw
	must(t, cur.All(ctx(t), &infos))
	if len(infos) != 1 {
		t.Fatalf("listCollections of %s: %v", name, infos)
	}
	return infos[0]
}

// collMod of an index's hidden, prepareUnique and unique
// (https://www.mongodb.com/docs/manual/reference/command/collMod/; what
// changes nothing is left out of the oplog entry and the reply, as mongod's
// jstests/noPassthrough/collmod_index_noop.js checks).
func TestCollModIndexOptions(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("c")
	_, err := coll.InsertMany(cx, []any{d("_id", 1, "k", 1), d("_id", 2, "k", 1), d("_id", 3, "k", 2)})
	must(t, err)
	_, err = coll.Indexes().CreateOne(cx, mongo.IndexModel{Keys: d("k", 1)})
	must(t, err)
	cs, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	must(t, err)
	defer cs.Close(cx)
	collMod := func(index bson.D) (bson.Raw, error) {
		return db.RunCommand(cx, d("collMod", "c", "index", index)).Raw()
	}

	reply, err := collMod(d("name", "k_1", "hidden", true))
	must(t, err)
	if hidden, _ := reply.Lookup("hidden_new").BooleanOK(); !hidden || reply.Lookup("hidden_old").Boolean() {
		t.Fatalf("hiding: reply %v", reply)
	}
	ev := next(t, cs)
	if opType(ev) != "modify" || !ev.Lookup("operationDescription").Equal(rawDoc(t, d("index", d("name", "k_1", "hidden", true)))) ||
		ev.Lookup("stateBeforeChange", "indexOptions", "hidden").Boolean() {
		t.Fatalf("modify event of hiding %v", ev)
	}
	if spec := indexSpec(t, coll, "k_1"); !spec.Lookup("hidden").Boolean() {
		t.Fatalf("listIndexes after hiding: %v", spec)
	}
	// Hiding it again changes nothing: a bare modify, no hidden in the reply.
	reply, err = collMod(d("keyPattern", d("k", 1), "hidden", true))
	must(t, err)
	if reply.Lookup("hidden_new").Type != 0 {
		t.Fatalf("a no-op hide: reply %v", reply)
	}
	if ev := next(t, cs); !ev.Lookup("operationDescription").Equal(rawDoc(t, d())) {
		t.Fatalf("a no-op hide's event %v", ev)
	}
	_, err = collMod(d("name", "k_1", "hidden", false))
	must(t, err)
	next(t, cs)
	if spec := indexSpec(t, coll, "k_1"); spec.Lookup("hidden").Type != 0 {
		t.Fatalf("listIndexes after unhiding: %v, want no hidden field", spec)
	}

	// unique needs prepareUnique first; prepareUnique refuses new duplicates
	// and keeps those there; the conversion lists the documents in the way.
	if _, err := collMod(d("name", "k_1", "unique", true)); codeOf(err) != 72 {
		t.Fatalf("unique without prepareUnique: err = %v, want 72", err)
	}
	if _, err := collMod(d("name", "k_1", "prepareUnique", true, "hidden", true)); codeOf(err) != 72 {
		t.Fatalf("prepareUnique with another change: err = %v, want 72", err)
	}
	reply, err = collMod(d("name", "k_1", "prepareUnique", true))
	must(t, err)
	if !reply.Lookup("prepareUnique_new").Boolean() {
		t.Fatalf("prepareUnique: reply %v", reply)
	}
	if ev := next(t, cs); !ev.Lookup("operationDescription").Equal(rawDoc(t, d("index", d("name", "k_1", "prepareUnique", true)))) {
		t.Fatalf("prepareUnique's event %v", ev)
	}
	if _, err := coll.InsertOne(cx, d("_id", 4, "k", 2)); codeOf(err) != 11000 {
		t.Fatalf("a new duplicate under prepareUnique: err = %v, want 11000", err)
	}
	if _, err := coll.UpdateOne(cx, d("_id", 2), op("$set", "x", 1)); err != nil {
		t.Fatalf("an update keeping a duplicate that was there: %v", err)
	}
	next(t, cs)
	_, err = collMod(d("name", "k_1", "unique", true))
	if codeOf(err) != 359 || !strings.Contains(err.Error(), "resolve conflicting documents") {
		t.Fatalf("unique over duplicates: err = %v, want 359 CannotConvertIndexToUnique", err)
	}
	if ce, ok := err.(mongo.CommandError); !ok || !bson.Raw(ce.Raw).Lookup("violations").Equal(rawValue(t, a(d("ids", a(1, 2))))) {
		t.Fatalf("unique over duplicates: %#v, want violations [{ids: [1, 2]}]", err)
	}
	_, err = coll.DeleteOne(cx, d("_id", 2))
	must(t, err)
	next(t, cs)
	reply, err = collMod(d("name", "k_1", "unique", true))
	must(t, err)
	if !reply.Lookup("unique_new").Boolean() {
		t.Fatalf("unique: reply %v", reply)
	}
	if ev := next(t, cs); !ev.Lookup("operationDescription").Equal(rawDoc(t, d("index", d("name", "k_1", "unique", true)))) {
		t.Fatalf("unique's event %v", ev)
	}
	if spec := indexSpec(t, coll, "k_1"); !spec.Lookup("unique").Boolean() || spec.Lookup("prepareUnique").Type != 0 {
		t.Fatalf("listIndexes after the conversion: %v, want unique and no prepareUnique", spec)
	}
	if _, err := collMod(d("name", "k_1", "unique", false)); codeOf(err) != 2 {
		t.Fatalf("unique: false: err = %v, want 2", err)
	}
	if _, err := collMod(d("name", "_id_", "hidden", true)); codeOf(err) != 2 {
		t.Fatalf("hiding _id: err = %v, want 2", err)
	}
	// A hidden index made hidden, and prepareUnique at creation.
	_, err = coll.Indexes().CreateOne(cx, mongo.IndexModel{Keys: d("p", 1), Options: options.Index().SetHidden(true).SetName("p")})
	must(t, err)
	must(t, db.RunCommand(cx, d("createIndexes", "c", "indexes", a(d("key", d("q", 1), "name", "q", "prepareUnique", true)))).Err())
	_, err = coll.InsertOne(cx, d("_id", 5, "q", 1))
	must(t, err)
	if _, err := coll.InsertOne(cx, d("_id", 6, "q", 1)); codeOf(err) != 11000 {
		t.Fatalf("a duplicate under a prepareUnique index: err = %v, want 11000", err)
	}
}

// Capped collections (https://www.mongodb.com/docs/manual/core/capped-collections/):
// the oldest documents go when size or max is passed, each with a delete
// event after the insert (MongoDB 5.0+ logs capped deletes, SERVER-16049).
func TestCappedCollections(t *testing.T) {
	db, cx := setup(t)
	cs, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	must(t, err)
	defer cs.Close(cx)
	must(t, db.RunCommand(cx, d("create", "log", "capped", true, "size", 100000, "max", 3)).Err())
	ev := next(t, cs)
	if opType(ev) != "create" || !ev.Lookup("operationDescription").Equal(rawDoc(t, d("capped", true, "size", 100000, "max", 3, "idIndex", d("v", 2, "key", d("_id", 1), "name", "_id_")))) {
		t.Fatalf("create event %v", ev)
	}
	if opts := collectionInfo(t, db, "log").Lookup("options"); !opts.Equal(rawDoc(t, d("capped", true, "size", 100000, "max", 3))) {
		t.Fatalf("listCollections options %v", opts)
	}
	log := db.Collection("log")
	for i := 1; i <= 4; i++ {
		_, err := log.InsertOne(cx, d("_id", i))
		must(t, err)
	}
	for i := 1; i <= 4; i++ {
		if ev := next(t, cs); opType(ev) != "insert" || ev.Lookup("documentKey", "_id").Int32() != int32(i) {
			t.Fatalf("event %v, want the insert of %d", ev, i)
		}
	}
	if ev := next(t, cs); opType(ev) != "delete" || ev.Lookup("documentKey", "_id").Int32() != 1 {
		t.Fatalf("after the 4th insert: %v, want the delete of the oldest", ev)
	}
	n, err := log.CountDocuments(cx, d())
	must(t, err)
	if n != 3 {
		t.Fatalf("%d documents, want max 3", n)
	}
	// By size: each document is 21 bytes; 45 bytes hold two.
	must(t, db.RunCommand(cx, d("create", "small", "capped", true, "size", 45)).Err())
	small := db.Collection("small")
	for i := 1; i <= 3; i++ {
		_, err := small.InsertOne(cx, d("_id", i, "x", int32(0)))
		must(t, err)
	}
	cur, err := small.Find(cx, d())
	must(t, err)
	var left []bson.M
	must(t, cur.All(cx, &left))
	if len(left) != 2 || left[0]["_id"] != int32(2) {
		t.Fatalf("capped by size: %v, want 2 and 3", left)
	}
	if _, err := small.InsertOne(cx, d("_id", 9, "big", strings.Repeat("b", 50))); codeOf(err) != 2 {
		t.Fatalf("a document larger than the cap: err = %v, want 2", err)
	}
	// Refusals, as mongod's.
	for _, c := range []struct {
		name string
		run  func() error
		code int
	}{
		{"size without capped", func() error { return db.RunCommand(cx, d("create", "x", "size", 4096)).Err() }, 72},
		{"capped without size", func() error { return db.RunCommand(cx, d("create", "x", "capped", true)).Err() }, 72},
		{"a TTL index", func() error {
			_, err := log.Indexes().CreateOne(cx, mongo.IndexModel{Keys: d("at", 1), Options: options.Index().SetExpireAfterSeconds(60)})
			return err
		}, 67},
		{"a write in a transaction", func() error {
			sess, err := db.Client().StartSession()
			must(t, err)
			defer sess.EndSession(cx)
			_, err = sess.WithTransaction(cx, func(tx context.Context) (any, error) { return log.InsertOne(tx, d("_id", 10)) })
			return err
		}, 263},
	} {
		if err := c.run(); codeOf(err) != c.code {
			t.Errorf("%s: err = %v, want %d", c.name, err, c.code)
		}
	}
}

// A collection's default collation
// (https://www.mongodb.com/docs/manual/reference/collation/): listed with
// its defaults, taken by the _id index and by indexes that name none.
func TestCollectionCollation(t *testing.T) {
	db, cx := setup(t)
	cs, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	must(t, err)
	defer cs.Close(cx)
	must(t, db.RunCommand(cx, d("create", "people", "collation", d("locale", "fr"))).Err())
	info := collectionInfo(t, db, "people")
	collation := info.Lookup("options", "collation")
	if collation.Document().Lookup("locale").StringValue() != "fr" || collation.Document().Lookup("strength").AsInt64() != 3 {
		t.Fatalf("options %v, want the collation with its defaults", info.Lookup("options"))
	}
	if !info.Lookup("idIndex", "collation").Equal(collation) {
		t.Fatalf("idIndex %v, want the collection's collation", info.Lookup("idIndex"))
	}
	ev := next(t, cs)
	if !ev.Lookup("operationDescription", "collation").Equal(collation) || !ev.Lookup("operationDescription", "idIndex", "collation").Equal(collation) {
		t.Fatalf("create event %v", ev)
	}
	people := db.Collection("people")
	_, err = people.Indexes().CreateOne(cx, mongo.IndexModel{Keys: d("name", 1)})
	must(t, err)
	if spec := indexSpec(t, people, "name_1"); !spec.Lookup("collation").Equal(collation) {
		t.Fatalf("an index naming no collation: %v, want the collection's", spec)
	}
	if ev := next(t, cs); !ev.Lookup("operationDescription", "indexes", "0", "collation").Equal(collation) {
		t.Fatalf("createIndexes event %v, want the collation in the spec", ev)
	}
	// create with the idIndex listCollections shows (what a restore sends).
	must(t, db.RunCommand(cx, d("create", "again", "collation", d("locale", "fr"), "idIndex", info.Lookup("idIndex"))).Err())
	if err := db.RunCommand(cx, d("create", "other", "collation", d("locale", "de"), "idIndex", info.Lookup("idIndex"))).Err(); codeOf(err) != 2 {
		t.Fatalf("an idIndex of another collation: err = %v, want 2", err)
	}
}

// Clustered collections (https://www.mongodb.com/docs/manual/core/clustered-collections/):
// options and create event as mongod's (no idIndex), the clustered index
// listed, TTL by _id dates, collMod of expireAfterSeconds.
func TestClusteredCollections(t *testing.T) {
	c, cx := fake(t, "a 50 ms TTL monitor", mongotest.Options{TTLInterval: 50 * time.Millisecond})
	db := testDB(t, c)
	cs, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	must(t, err)
	defer cs.Close(cx)
	must(t, db.RunCommand(cx, d("create", "events", "clusteredIndex", d("key", d("_id", 1), "unique", true, "name", "by_id"), "expireAfterSeconds", 3600)).Err())
	clustered := d("v", 2, "key", d("_id", 1), "name", "by_id", "unique", true)
	if ev := next(t, cs); !ev.Lookup("operationDescription").Equal(rawDoc(t, d("clusteredIndex", clustered, "expireAfterSeconds", int64(3600)))) {
		t.Fatalf("create event %v", ev)
	}
	info := collectionInfo(t, db, "events")
	if !info.Lookup("options").Equal(rawDoc(t, d("clusteredIndex", clustered, "expireAfterSeconds", int64(3600)))) || info.Lookup("idIndex").Type != 0 {
		t.Fatalf("listCollections %v", info)
	}
	events := db.Collection("events")
	if spec := indexSpec(t, events, "by_id"); !spec.Lookup("clustered").Boolean() || !spec.Lookup("unique").Boolean() {
		t.Fatalf("the clustered index as listed: %v", spec)
	}
	old := time.Now().Add(-2 * time.Hour)
	_, err = events.InsertMany(cx, []any{d("_id", old), d("_id", time.Now()), d("_id", "not a date")})
	must(t, err)
	for range 3 {
		next(t, cs)
	}
	if ev := next(t, cs); opType(ev) != "delete" || !ev.Lookup("documentKey", "_id").Equal(rawValue(t, bson.NewDateTimeFromTime(old))) {
		t.Fatalf("after the TTL pass: %v, want the old document deleted", ev)
	}
	must(t, db.RunCommand(cx, d("collMod", "events", "expireAfterSeconds", "off")).Err())
	if ev := next(t, cs); !ev.Lookup("operationDescription").Equal(rawDoc(t, d("expireAfterSeconds", "off"))) {
		t.Fatalf("modify event %v", ev)
	}
	if opts := collectionInfo(t, db, "events").Lookup("options"); opts.Document().Lookup("expireAfterSeconds").Type != 0 {
		t.Fatalf("options after turning the TTL off: %v", opts)
	}
	for _, c := range []struct {
		name string
		cmd  bson.D
		code int
	}{
		{"another key", d("create", "x", "clusteredIndex", d("key", d("a", 1), "unique", true)), 72},
		{"not unique", d("create", "x", "clusteredIndex", d("key", d("_id", 1), "unique", false)), 72},
		{"expireAfterSeconds alone", d("create", "x", "expireAfterSeconds", 1), 72},
		{"capped", d("create", "x", "clusteredIndex", d("key", d("_id", 1), "unique", true), "capped", true, "size", 4096), 72},
		{"hiding the clustered index", d("collMod", "events", "index", d("name", "by_id", "hidden", true)), 6011800},
	} {
		if err := db.RunCommand(cx, c.cmd).Err(); codeOf(err) != c.code {
			t.Errorf("%s: err = %v, want %d", c.name, err, c.code)
		}
	}
}
