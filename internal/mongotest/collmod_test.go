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

// collMod (https://www.mongodb.com/docs/manual/reference/command/collMod/),
// its modify event (https://www.mongodb.com/docs/manual/reference/change-events/modify/)
// and pre- and post-images
// (https://www.mongodb.com/docs/manual/changeStreams/#change-streams-with-document-pre--and-post-images).

func TestCollModTTLAndModifyEvent(t *testing.T) {
	c, cx := fake(t, "a 50 ms TTL monitor", mongotest.Options{TTLInterval: 50 * time.Millisecond})
	db := c.Database("ttl")
	coll := db.Collection("sessions")
	_, err := coll.Indexes().CreateOne(cx, mongo.IndexModel{Keys: bson.D{{Key: "at", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(3600)})
	must(t, err)
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "at", Value: time.Now().Add(-2 * time.Minute)}})
	must(t, err)
	expanded, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	must(t, err)
	defer expanded.Close(cx)
	plain, err := db.Watch(cx, mongo.Pipeline{})
	must(t, err)
	defer plain.Close(cx)

	var reply bson.Raw
	reply, err = db.RunCommand(cx, bson.D{{Key: "collMod", Value: "sessions"},
		{Key: "index", Value: bson.D{{Key: "keyPattern", Value: bson.D{{Key: "at", Value: 1}}}, {Key: "expireAfterSeconds", Value: 60}}}}).Raw()
	must(t, err)
	if old, _ := reply.Lookup("expireAfterSeconds_old").AsInt64OK(); old != 3600 {
		t.Fatalf("collMod reply %v", reply)
	}
	if n, _ := reply.Lookup("expireAfterSeconds_new").AsInt64OK(); n != 60 {
		t.Fatalf("collMod reply %v", reply)
	}
	ev := next(t, expanded)
	if opType(ev) != "modify" || ev.Lookup("ns", "coll").StringValue() != "sessions" || ev.Lookup("collectionUUID").Type != bson.TypeBinary {
		t.Fatalf("modify event %v", ev)
	}
	// The oplog entry names the index as the command did (coll_mod.cpp copies it).
	wantDesc := bson.D{{Key: "index", Value: bson.D{{Key: "keyPattern", Value: bson.D{{Key: "at", Value: int32(1)}}}, {Key: "expireAfterSeconds", Value: int64(60)}}}}
	if !ev.Lookup("operationDescription").Equal(rawDoc(t, wantDesc)) {
		t.Fatalf("operationDescription %v, want %v", ev.Lookup("operationDescription"), wantDesc)
	}
	if old, _ := ev.Lookup("stateBeforeChange", "indexOptions", "expireAfterSeconds").AsInt64OK(); old != 3600 {
		t.Fatalf("stateBeforeChange %v", ev.Lookup("stateBeforeChange"))
	}
	if ev.Lookup("stateBeforeChange", "collectionOptions", "uuid").Type != bson.TypeBinary {
		t.Fatalf("stateBeforeChange.collectionOptions %v", ev.Lookup("stateBeforeChange"))
	}
	// The TTL monitor uses the new value: the document, 2 minutes old, expires.
	if ev := next(t, expanded); opType(ev) != "delete" {
		t.Fatalf("after shortening the TTL: %v", ev)
	}
	// A stream without showExpandedEvents has no modify event.
	if ev := next(t, plain); opType(ev) != "delete" {
		t.Fatalf("plain stream: %v", ev)
	}
	var ix []bson.M
	cur, err := coll.Indexes().List(cx)
	must(t, err)
	must(t, cur.All(cx, &ix))
	if len(ix) != 2 || ix[1]["expireAfterSeconds"] != int32(60) {
		t.Fatalf("listIndexes after collMod: %v", ix)
	}
	// Refusals: what collMod cannot do here, an index that is not there.
	if err := db.RunCommand(cx, bson.D{{Key: "collMod", Value: "sessions"}, {Key: "expireAfterSeconds", Value: 60}}).Err(); codeOf(err) != 72 || !strings.Contains(err.Error(), "clustered") {
		t.Fatalf("expireAfterSeconds of a collection not clustered: err = %v, want 72 InvalidOptions", err)
	}
	err = db.RunCommand(cx, bson.D{{Key: "collMod", Value: "sessions"}, {Key: "index", Value: bson.D{{Key: "name", Value: "nope"}, {Key: "expireAfterSeconds", Value: 1}}}}).Err()
	if codeOf(err) != 27 {
		t.Fatalf("unknown index: err = %v, want 27 IndexNotFound", err)
	}
	if err := db.RunCommand(cx, bson.D{{Key: "collMod", Value: "missing"}, {Key: "index", Value: bson.D{}}}).Err(); codeOf(err) != 26 {
		t.Fatalf("missing collection: err = %v, want 26 NamespaceNotFound", err)
	}
}

func TestPreAndPostImages(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("images")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 1}})
	must(t, err)
	opts := options.ChangeStream().SetFullDocument(options.WhenAvailable).SetFullDocumentBeforeChange(options.WhenAvailable).SetShowExpandedEvents(true)
	cs, err := coll.Watch(cx, mongo.Pipeline{}, opts)
	must(t, err)
	defer cs.Close(cx)
	required, err := coll.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetFullDocumentBeforeChange(options.Required))
	must(t, err)
	defer required.Close(cx)
	inc := bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}}
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, inc) // before the images: none
	must(t, err)
	must(t, db.RunCommand(cx, bson.D{{Key: "collMod", Value: "images"}, {Key: "changeStreamPreAndPostImages", Value: bson.D{{Key: "enabled", Value: true}}}}).Err())
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, inc)
	must(t, err)
	_, err = coll.ReplaceOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "r", Value: true}})
	must(t, err)
	_, err = coll.DeleteOne(cx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)

	noImage := next(t, cs)
	if noImage.Lookup("fullDocument").Type != bson.TypeNull || noImage.Lookup("fullDocumentBeforeChange").Type != bson.TypeNull {
		t.Fatalf("an update before images were on: %v, want both images null", noImage)
	}
	if ev := next(t, cs); opType(ev) != "modify" || !ev.Lookup("operationDescription").Equal(rawDoc(t, bson.D{{Key: "changeStreamPreAndPostImages", Value: bson.D{{Key: "enabled", Value: true}}}})) {
		t.Fatalf("modify event %v", ev)
	}
	update := next(t, cs)
	if update.Lookup("fullDocumentBeforeChange", "v").Int32() != 2 || update.Lookup("fullDocument", "v").Int32() != 3 {
		t.Fatalf("update with images: %v", update)
	}
	replace := next(t, cs)
	if replace.Lookup("fullDocumentBeforeChange", "v").Int32() != 3 || replace.Lookup("fullDocument", "r").Boolean() != true {
		t.Fatalf("replace with images: %v", replace)
	}
	del := next(t, cs)
	if opType(del) != "delete" || del.Lookup("fullDocumentBeforeChange", "r").Boolean() != true {
		t.Fatalf("delete with its pre-image: %v", del)
	}
	// required: the update without an image fails the stream (47).
	if required.Next(cx) {
		t.Fatalf("required pre-image stream returned %v", required.Current)
	}
	var se mongo.ServerError
	if !errors.As(required.Err(), &se) || !se.HasErrorCode(47) {
		t.Fatalf("required pre-image missing: err = %v, want 47 NoMatchingDocument", required.Err())
	}
	// The option shows in listCollections, and can be given at creation.
	must(t, db.CreateCollection(cx, "born", options.CreateCollection().SetChangeStreamPreAndPostImages(bson.D{{Key: "enabled", Value: true}})))
	specs, err := db.ListCollectionSpecifications(cx, bson.D{})
	must(t, err)
	for _, s := range specs {
		if enabled, _ := s.Options.Lookup("changeStreamPreAndPostImages", "enabled").BooleanOK(); !enabled {
			t.Errorf("collection %s options %v", s.Name, s.Options)
		}
	}
}
