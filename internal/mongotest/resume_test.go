package mongotest_test

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// Resume-token strictness, as mongod's ensure-resume-token-present stage:
// the stream must meet the token's event before anything after it; if it
// passes the token without meeting it, the stream fails with 280
// ChangeStreamFatalError, labelled NonResumableChangeStreamError. Until then
// it waits.

// wantTokenNotFound checks the stream fails with 280 and its label.
func wantTokenNotFound(t *testing.T, cs *mongo.ChangeStream) {
	t.Helper()
	if cs.Next(ctx(t)) {
		t.Fatalf("an event after a resume token the stream never met: %v", cs.Current)
	}
	var se mongo.ServerError
	if err := cs.Err(); !errors.As(err, &se) || !se.HasErrorCode(280) || !se.HasErrorLabel("NonResumableChangeStreamError") {
		t.Fatalf("err = %v, want 280 with NonResumableChangeStreamError", cs.Err())
	}
}

// TestResumeTokenOfAnotherStream: a token of an event on collection a
// resumes a stream on collection b until b has an event after it.
func TestResumeTokenOfAnotherStream(t *testing.T) {
	db, cx := setup(t)
	a, b := db.Collection("a"), db.Collection("b")
	_, err := b.InsertOne(cx, bson.D{{Key: "_id", Value: 0}})
	must(t, err)
	onA, err := a.Watch(cx, mongo.Pipeline{})
	must(t, err)
	defer onA.Close(cx)
	_, err = a.InsertOne(cx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	token := next(t, onA).Lookup("_id").Document() // the event's own token, not the batch's

	onB, err := b.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(token))
	must(t, err) // opening succeeds: the stream has not passed the token yet
	defer onB.Close(cx)
	_, err = b.InsertOne(cx, bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	wantTokenNotFound(t, onB)
}

// TestResumeTokenFilteredOut: the token's event is one the new pipeline's
// $match drops (mongod applies the user's $match before the check).
func TestResumeTokenFilteredOut(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("f")
	cs, err := coll.Watch(cx, mongo.Pipeline{})
	must(t, err)
	defer cs.Close(cx)
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}})
	must(t, err)
	next(t, cs)
	updateToken := next(t, cs).Lookup("_id").Document()
	inserts := mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "operationType", Value: "insert"}}}}}
	// The same pipeline resumes; one that drops the token's event fails once past it.
	same, err := coll.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(updateToken))
	must(t, err)
	defer same.Close(cx)
	filtered, err := coll.Watch(cx, inserts, options.ChangeStream().SetResumeAfter(updateToken))
	must(t, err)
	defer filtered.Close(cx)
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	if ev := next(t, same); ev.Lookup("documentKey", "_id").Int32() != 2 {
		t.Fatalf("resumed with the same pipeline: %v", ev)
	}
	wantTokenNotFound(t, filtered)
}

// fakeToken is a resume token of the fake's format for an event at (ts, i)
// with the given index among the events sharing that time.
func fakeToken(ts bson.Timestamp, opIndex uint32) bson.Raw {
	raw := binary.BigEndian.AppendUint32(nil, ts.T)
	raw = binary.BigEndian.AppendUint32(raw, ts.I)
	raw = append(raw, 1) // an event
	raw = binary.BigEndian.AppendUint32(raw, opIndex)
	raw = binary.BigEndian.AppendUint16(raw, 0)
	return mustBSON(bson.D{{Key: "_data", Value: "82" + strings.ToUpper(hex.EncodeToString(raw))}})
}

// TestResumeTokenWithoutEvent: a token for a time with no such event fails
// when the stream passes it; a token for a time not reached yet waits,
// swallowing the events before it.
func TestResumeTokenWithoutEvent(t *testing.T) {
	c, cx := fake(t, "resume tokens made for the fake's format", mongotest.Options{NoopInterval: time.Hour})
	coll := c.Database("tok").Collection("c")
	cs, err := coll.Watch(cx, mongo.Pipeline{})
	must(t, err)
	defer cs.Close(cx)
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	var ev struct {
		ClusterTime bson.Timestamp `bson:"clusterTime"`
	}
	must(t, bson.Unmarshal(next(t, cs), &ev))
	// A second event at the insert's time that never was.
	missing, err := coll.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(fakeToken(ev.ClusterTime, 1)))
	must(t, err)
	defer missing.Close(cx)
	future, err := coll.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(50*time.Millisecond).
		SetResumeAfter(fakeToken(bson.Timestamp{T: ev.ClusterTime.T + 3600, I: 1}, 0)))
	must(t, err)
	defer future.Close(cx)
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	wantTokenNotFound(t, missing)
	if future.TryNext(cx) || future.Err() != nil {
		t.Fatalf("a stream resumed at a future time returned %v, %v; want it waiting", future.Current, future.Err())
	}
}
