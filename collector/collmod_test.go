package collector

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// A collMod changing a TTL index is stored as a modify event whose
// operation_description names the index and its new expireAfterSeconds:
// what a replay needs to redo it.
func TestCollModCapturedAsModify(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	db := client.Database("ttlshop")
	coll := db.Collection("sessions")
	if _, err := coll.Indexes().CreateOne(t.Context(), mongo.IndexModel{Keys: bson.D{{Key: "at", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(3600)}); err != nil {
		t.Fatal(err)
	}
	capturing(t, client, collectorConfig(t, uri, "", "", testSource{name: "mod", uri: uri, database: "ttlshop"}), "mod")
	if err := db.RunCommand(t.Context(), bson.D{{Key: "collMod", Value: "sessions"},
		{Key: "index", Value: bson.D{{Key: "keyPattern", Value: bson.D{{Key: "at", Value: 1}}}, {Key: "expireAfterSeconds", Value: 60}}}}).Err(); err != nil {
		t.Fatal(err)
	}
	var modify bson.Raw
	eventually(t, "the modify event", func() bool {
		for _, d := range stored(t, client, "mod") {
			if d.Lookup("op_type").StringValue() == "modify" {
				modify = d
				return true
			}
		}
		return false
	})
	if ns := modify.Lookup("ns").StringValue(); ns != "ttlshop.sessions" {
		t.Errorf("ns %q", ns)
	}
	// The oplog entry names the index as the command did (mongod's coll_mod.cpp copies it).
	if key, ok := modify.Lookup("operation_description", "index", "keyPattern").DocumentOK(); !ok || key.Lookup("at").AsInt64() != 1 {
		t.Errorf("operation_description %v, want the index by its key pattern", modify.Lookup("operation_description"))
	}
	if n, ok := modify.Lookup("operation_description", "index", "expireAfterSeconds").AsInt64OK(); !ok || n != 60 {
		t.Errorf("operation_description %v, want expireAfterSeconds 60", modify.Lookup("operation_description"))
	}
	if modify.Lookup("collection_uuid").Type != bson.TypeBinary {
		t.Errorf("collection_uuid %v", modify.Lookup("collection_uuid"))
	}
}
