package mongotest_test

// What the collector needs beyond what mongotest imitates for the rest: the replica
// set's identity, $currentDate for its leases, and counts for its resets.

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// replSetGetConfig names the set and its replicaSetId, which differs from one set to
// another and stays across a restart of the same one; it only runs on admin.
func TestReplSetGetConfig(t *testing.T) {
	srv := mongotest.New(t, "two sets and a restart", mongotest.Options{})
	other := mongotest.New(t, "two sets and a restart", mongotest.Options{})
	id := func(uri string) bson.ObjectID {
		t.Helper()
		var reply struct {
			Config struct {
				ID       string `bson:"_id"`
				Settings struct {
					ReplicaSetID bson.ObjectID `bson:"replicaSetId"`
				} `bson:"settings"`
			} `bson:"config"`
		}
		must(t, connect(t, uri).Database("admin").RunCommand(ctx(t), bson.D{{Key: "replSetGetConfig", Value: 1}}).Decode(&reply))
		if reply.Config.ID != "rs0" || reply.Config.Settings.ReplicaSetID.IsZero() {
			t.Fatalf("replSetGetConfig: %+v", reply)
		}
		return reply.Config.Settings.ReplicaSetID
	}
	first := id(srv.URI())
	if id(other.URI()) == first {
		t.Error("two sets share a replicaSetId")
	}
	srv.Stop()
	must(t, srv.Restart())
	if id(srv.URI()) != first {
		t.Error("a restart changed the replicaSetId")
	}
	err := connect(t, srv.URI()).Database("app").RunCommand(ctx(t), bson.D{{Key: "replSetGetConfig", Value: 1}}).Err()
	if code := codeOf(err); code != 13 {
		t.Errorf("replSetGetConfig on a database other than admin: %v", err)
	}
}

// $currentDate sets the server's time, as a Date or (with $type) a Timestamp.
func TestCurrentDate(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("c")
	before := time.Now().Add(-time.Second)
	_, err := coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$currentDate", Value: bson.D{
		{Key: "at", Value: true}, {Key: "ts", Value: bson.D{{Key: "$type", Value: "timestamp"}}},
	}}}, options.UpdateOne().SetUpsert(true))
	must(t, err)
	var doc struct {
		At bson.DateTime  `bson:"at"`
		TS bson.Timestamp `bson:"ts"`
	}
	must(t, coll.FindOne(cx, bson.D{}).Decode(&doc))
	if doc.At.Time().Before(before) || doc.TS.T < uint32(before.Unix()) {
		t.Errorf("$currentDate set %v and %v", doc.At.Time(), doc.TS)
	}
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$currentDate", Value: bson.D{{Key: "at", Value: "now"}}}})
	if code := codeOf(err); code != 2 {
		t.Errorf("$currentDate with a string: %v", err)
	}
}

// count without a query is the whole collection's (EstimatedDocumentCount); 0 for a
// collection that does not exist.
func TestEstimatedDocumentCount(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("c")
	if n, err := coll.EstimatedDocumentCount(cx); err != nil || n != 0 {
		t.Fatalf("count of a missing collection: %d, %v", n, err)
	}
	for i := range 3 {
		_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: i}})
		must(t, err)
	}
	if n, err := coll.EstimatedDocumentCount(cx); err != nil || n != 3 {
		t.Fatalf("count: %d, %v", n, err)
	}
}
