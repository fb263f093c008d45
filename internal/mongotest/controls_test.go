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

// Errors and controls as mongod's: stage errors of change streams, the
// failGetMoreAfterCursorCheckout failpoint, maxTimeMS, idle cursor timeouts.

func TestChangeStreamStageErrors(t *testing.T) {
	db, cx := setup(t)
	for _, c := range []struct {
		stage bson.D
		code  int
	}{
		{bson.D{{Key: "$bogus", Value: bson.D{}}}, 40324},                                                            // no such stage
		{bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: 1}}}}, 40600},                                      // a stage change streams refuse
		{bson.D{{Key: "$addFields", Value: bson.D{{Key: "x", Value: bson.D{{Key: "$toUpper", Value: "$a"}}}}}}, 115}, // an expression not implemented here
	} {
		if _, err := db.Watch(cx, mongo.Pipeline{c.stage}); codeOf(err) != c.code {
			t.Errorf("%v: err = %v, want %d", c.stage, err, c.code)
		}
	}
}

// insertN inserts {_id: 0..n-1} into coll.
func insertN(t *testing.T, coll *mongo.Collection, n int) {
	t.Helper()
	var docs []any
	for i := 0; i < n; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: i}})
	}
	_, err := coll.InsertMany(ctx(t), docs)
	must(t, err)
}

func TestFailGetMoreAfterCursorCheckout(t *testing.T) {
	admin, coll := failPointClients(t, options.Client().SetAppName("fp-getmore"))
	cx := ctx(t)
	insertN(t, coll, 3)
	cur, err := coll.Find(cx, bson.D{}, options.Find().SetBatchSize(1))
	must(t, err)
	defer cur.Close(cx)
	must(t, admin.Database("admin").RunCommand(cx, bson.D{
		{Key: "configureFailPoint", Value: "failGetMoreAfterCursorCheckout"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{{Key: "errorCode", Value: 1234}}},
	}).Err())
	defer admin.Database("admin").RunCommand(cx, bson.D{{Key: "configureFailPoint", Value: "failGetMoreAfterCursorCheckout"}, {Key: "mode", Value: "off"}})
	cur.Next(cx) // the first batch
	id := cur.ID()
	if cur.Next(cx) {
		t.Fatalf("getMore through the failpoint returned %v", cur.Current)
	}
	if codeOf(cur.Err()) != 1234 {
		t.Fatalf("err = %v, want the failpoint's 1234", cur.Err())
	}
	// The getMore killed its cursor.
	err = coll.Database().RunCommand(cx, bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: coll.Name()}}).Err()
	if codeOf(err) != 43 {
		t.Fatalf("getMore after the failure: err = %v, want 43 CursorNotFound", err)
	}
	// On a change stream a retriable code is labelled resumable: the driver
	// resumes and loses nothing.
	cs, err := coll.Watch(cx, mongo.Pipeline{})
	must(t, err)
	defer cs.Close(cx)
	must(t, admin.Database("admin").RunCommand(cx, bson.D{
		{Key: "configureFailPoint", Value: "failGetMoreAfterCursorCheckout"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{{Key: "errorCode", Value: 10107}}},
	}).Err())
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: "after"}})
	must(t, err)
	if ev := next(t, cs); ev.Lookup("documentKey", "_id").StringValue() != "after" {
		t.Fatalf("after a resumable getMore failure: %v", ev)
	}
}

// TestMaxTimeMS: a command that outlasts its maxTimeMS (here, held by a
// failpoint) fails with 50 MaxTimeMSExpired; a cursor's getMores share what
// is left of it; a getMore of a cursor that is not awaitData cannot set
// its own (2), as mongod.
func TestMaxTimeMS(t *testing.T) {
	admin, coll := failPointClients(t, options.Client().SetAppName("fp-maxtime"))
	cx := ctx(t)
	insertN(t, coll, 3)
	db := coll.Database()
	block := func(cmd string) {
		failCommand(t, admin, bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{cmd}},
			{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 2000}, {Key: "appName", Value: "fp-maxtime"}})
	}
	block("find")
	err := db.RunCommand(cx, bson.D{{Key: "find", Value: coll.Name()}, {Key: "maxTimeMS", Value: 50}}).Err()
	if codeOf(err) != 50 {
		t.Fatalf("find held past its maxTimeMS: err = %v, want 50", err)
	}
	block("aggregate")
	err = db.RunCommand(cx, bson.D{{Key: "aggregate", Value: coll.Name()}, {Key: "pipeline", Value: bson.A{}}, {Key: "cursor", Value: bson.D{}}, {Key: "maxTimeMS", Value: 50}}).Err()
	if codeOf(err) != 50 {
		t.Fatalf("aggregate held past its maxTimeMS: err = %v, want 50", err)
	}
	var opened struct {
		Cursor struct {
			ID int64 `bson:"id"`
		} `bson:"cursor"`
	}
	must(t, db.RunCommand(cx, bson.D{{Key: "find", Value: coll.Name()}, {Key: "batchSize", Value: 1}, {Key: "maxTimeMS", Value: 500}}).Decode(&opened))
	getMore := bson.D{{Key: "getMore", Value: opened.Cursor.ID}, {Key: "collection", Value: coll.Name()}, {Key: "batchSize", Value: 1}}
	err = db.RunCommand(cx, append(getMore, bson.E{Key: "maxTimeMS", Value: 100})).Err()
	if codeOf(err) != 2 || !strings.Contains(err.Error(), "non-awaitData") {
		t.Fatalf("getMore with maxTimeMS on a find cursor: err = %v, want 2", err)
	}
	block("getMore")
	if err := db.RunCommand(cx, getMore).Err(); codeOf(err) != 50 {
		t.Fatalf("getMore held past what is left of the find's maxTimeMS: err = %v, want 50", err)
	}
}

func TestIdleCursorsTimeOut(t *testing.T) {
	c, cx := fake(t, "a 100 ms cursor timeout", mongotest.Options{CursorTimeout: 100 * time.Millisecond})
	coll := c.Database("cur").Collection("c")
	insertN(t, coll, 3)
	idle, err := coll.Find(cx, bson.D{}, options.Find().SetBatchSize(1))
	must(t, err)
	kept, err := coll.Find(cx, bson.D{}, options.Find().SetBatchSize(1).SetNoCursorTimeout(true))
	must(t, err)
	idle.Next(cx)
	kept.Next(cx)
	time.Sleep(300 * time.Millisecond) // idle past the timeout
	if idle.Next(cx) || codeOf(idle.Err()) != 43 {
		t.Fatalf("an idle cursor: %v, want 43 CursorNotFound", idle.Err())
	}
	rest := 0
	for kept.Next(cx) {
		rest++
	}
	if must(t, kept.Err()); rest != 2 {
		t.Fatalf("noCursorTimeout cursor returned %d more documents, want 2", rest)
	}
	var se mongo.ServerError
	if !errors.As(idle.Err(), &se) {
		t.Fatalf("not a server error: %v", idle.Err())
	}
}
