package mongotest_test

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

func TestRestartKeepsDataAndHistory(t *testing.T) {
	srv := mongotest.New(t, "stops and restarts the listener", mongotest.Options{})
	c := connect(t, srv.URI())
	cx := ctx(t)
	coll := c.Database("r").Collection("c")
	cs, err := coll.Watch(cx, mongo.Pipeline{})
	must(t, err)
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	next(t, cs)
	tok := append(bson.Raw(nil), cs.ResumeToken()...)
	_ = cs.Close(cx)

	srv.Stop()
	if err := c.Ping(ctxTimeout(t, 300*time.Millisecond), nil); err == nil {
		t.Fatal("ping succeeded while the server was stopped")
	}
	must(t, srv.Restart())
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	if n, _ := coll.CountDocuments(cx, bson.D{}); n != 2 {
		t.Fatalf("count after restart = %d", n)
	}
	rs, err := coll.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(tok))
	must(t, err)
	defer rs.Close(cx)
	if ev := next(t, rs); ev.Lookup("documentKey", "_id").Int32() != 2 {
		t.Fatalf("resumed after restart: %v", ev)
	}
}

func TestTTLExpiresDocuments(t *testing.T) {
	srv := mongotest.New(t, "a 50ms TTL monitor", mongotest.Options{TTLInterval: 50 * time.Millisecond})
	c := connect(t, srv.URI())
	cx := ctx(t)
	coll := c.Database("ttl").Collection("c")
	_, err := coll.Indexes().CreateOne(cx, mongo.IndexModel{Keys: bson.D{{Key: "wall", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(60)})
	must(t, err)
	old := bson.NewDateTimeFromTime(time.Now().Add(-time.Hour))
	fresh := bson.NewDateTimeFromTime(time.Now())
	_, err = coll.InsertMany(cx, []any{
		bson.D{{Key: "_id", Value: "old"}, {Key: "wall", Value: old}},
		bson.D{{Key: "_id", Value: "fresh"}, {Key: "wall", Value: fresh}},
		bson.D{{Key: "_id", Value: "notadate"}, {Key: "wall", Value: "yesterday"}},
	})
	must(t, err)
	for {
		n, err := coll.CountDocuments(cx, bson.D{{Key: "_id", Value: "old"}})
		must(t, err)
		if n == 0 {
			break
		}
		select {
		case <-cx.Done():
			t.Fatal("expired document never deleted")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if n, _ := coll.CountDocuments(cx, bson.D{}); n != 2 {
		t.Fatalf("TTL deleted too much: %d left", n)
	}
}

func TestIndexes(t *testing.T) {
	db, cx := setup(t)
	c := db.Client()
	coll := db.Collection("ix")
	names, err := coll.Indexes().CreateMany(cx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "cluster_name", Value: 1}, {Key: "ts", Value: 1}}},
		{Keys: bson.D{{Key: "name", Value: -1}}},
		{Keys: bson.D{{Key: "wall", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(3600)},
	})
	must(t, err)
	if len(names) != 3 || names[0] != "cluster_name_1_ts_1" {
		t.Fatalf("index names %v", names)
	}
	// Creating the same index again is a no-op.
	_, err = coll.Indexes().CreateOne(cx, mongo.IndexModel{Keys: bson.D{{Key: "name", Value: -1}}})
	must(t, err)
	// Same name, other options: 85 IndexOptionsConflict.
	_, err = coll.Indexes().CreateOne(cx, mongo.IndexModel{Keys: bson.D{{Key: "name", Value: -1}}, Options: options.Index().SetExpireAfterSeconds(60)})
	if codeOf(err) != 85 {
		t.Fatalf("conflicting index: err = %v, want 85", err)
	}
	cur, err := coll.Indexes().List(cx)
	must(t, err)
	var specs []bson.M
	must(t, cur.All(cx, &specs))
	if len(specs) != 4 {
		t.Fatalf("listIndexes: %v", specs)
	}
	for _, s := range specs {
		if s["name"] == "wall_1" && s["expireAfterSeconds"] != int32(3600) {
			t.Fatalf("TTL spec %v", s)
		}
	}
	must(t, coll.Indexes().DropOne(cx, "name_-1"))
	if err := coll.Indexes().DropOne(cx, "name_-1"); codeOf(err) != 27 {
		t.Fatalf("dropping a missing index: err = %v, want 27", err)
	}
	// listCollections / listDatabases see the implicitly created collection.
	colls, err := coll.Database().ListCollectionNames(cx, bson.D{})
	must(t, err)
	if len(colls) != 1 || colls[0] != "ix" {
		t.Fatalf("collections %v", colls)
	}
	dbs, err := c.ListDatabaseNames(cx, bson.D{{Key: "name", Value: coll.Database().Name()}})
	must(t, err)
	if len(dbs) != 1 {
		t.Fatalf("databases %v", dbs)
	}
}
