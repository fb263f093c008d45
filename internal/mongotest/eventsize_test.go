package mongotest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Event size limits, as mongod's: an event is delivered whole up to
// 16 MiB + 16 KiB (BSONObjMaxInternalSize) without $changeStreamSplitLargeEvent,
// and up to 16 MiB + 8 KiB (kBSONObjMaxChangeEventSize) with it; over that
// the stage splits it, smallest fields first
// (https://www.mongodb.com/docs/manual/reference/operator/aggregation/changeStreamSplitLargeEvent/).
const (
	mib             = 1 << 20
	maxEventWhole   = 16*mib + 16<<10
	maxEventToSplit = 16*mib + 8<<10
)

var splitStage = mongo.Pipeline{bson.D{{Key: "$changeStreamSplitLargeEvent", Value: bson.D{}}}}

// sizedDoc is {_id: id, s: "aaa..."} of exactly size bytes of BSON.
func sizedDoc(t *testing.T, id any, size int) bson.D {
	t.Helper()
	d := bson.D{{Key: "_id", Value: id}, {Key: "s", Value: ""}}
	base := len(mustBSON(d))
	d[1].Value = strings.Repeat("a", size-base)
	if got := len(mustBSON(d)); got != size {
		t.Fatalf("sized document is %d bytes, want %d", got, size)
	}
	return d
}

// streams opens two streams on coll from token: with and without the split stage.
func streams(t *testing.T, coll *mongo.Collection, token bson.Raw, lookup bool) (split, whole *mongo.ChangeStream) {
	t.Helper()
	cx := ctx(t)
	opts := func() *options.ChangeStreamOptionsBuilder {
		o := options.ChangeStream().SetMaxAwaitTime(50 * time.Millisecond)
		if lookup {
			o.SetFullDocument(options.UpdateLookup)
		}
		if token != nil {
			o.SetResumeAfter(token)
		}
		return o
	}
	split, err := coll.Watch(cx, splitStage, opts())
	must(t, err)
	whole, err = coll.Watch(cx, mongo.Pipeline{}, opts())
	must(t, err)
	t.Cleanup(func() { _ = split.Close(context.Background()); _ = whole.Close(context.Background()) })
	return split, whole
}

// TestEventUpToLimitIsWhole: the insert of a 16 MiB document makes an event
// a little over 16 MiB, under 16 MiB + 8 KiB: whole on both streams.
func TestEventUpToLimitIsWhole(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("max")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 0}})
	must(t, err)
	split, whole := streams(t, coll, nil, false)
	_, err = coll.InsertOne(cx, sizedDoc(t, 1, 16*mib))
	must(t, err)
	for name, cs := range map[string]*mongo.ChangeStream{"with the split stage": split, "without": whole} {
		ev := next(t, cs)
		if len(ev) <= 16*mib || len(ev) > maxEventToSplit || ev.Lookup("splitEvent").Type != 0 {
			t.Fatalf("%s: event of %d bytes (splitEvent %v), want it whole, over 16 MiB", name, len(ev), ev.Lookup("splitEvent"))
		}
	}
}

// TestEventBetweenLimits: an event between 16 MiB + 8 KiB and 16 MiB + 16 KiB
// is whole without the stage and split with it.
func TestEventBetweenLimits(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("between")
	b := strings.Repeat("b", 14<<10)
	_, err := coll.InsertOne(cx, sizedDoc(t, 1, 16*mib-4<<10-len(mustBSON(bson.D{{Key: "b", Value: b}}))+5))
	must(t, err)
	split, whole := streams(t, coll, nil, true)
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "b", Value: b}}}})
	must(t, err)
	ev := next(t, whole)
	if len(ev) <= maxEventToSplit || len(ev) > maxEventWhole {
		t.Fatalf("the update event is %d bytes: the test needs one between the limits", len(ev))
	}
	fragments := readFragments(t, split)
	if len(fragments) != 2 {
		t.Fatalf("%d fragments, want 2", len(fragments))
	}
}

// readFragments reads the fragments of one split event.
func readFragments(t *testing.T, cs *mongo.ChangeStream) []bson.Raw {
	t.Helper()
	var out []bson.Raw
	for {
		f := next(t, cs)
		n, of := f.Lookup("splitEvent", "fragment").Int32(), f.Lookup("splitEvent", "of").Int32()
		if int(n) != len(out)+1 {
			t.Fatalf("fragment %d after %d fragments: %v", n, len(out), f.Lookup("splitEvent"))
		}
		if len(f) > maxEventToSplit {
			t.Fatalf("fragment %d is %d bytes, over 16 MiB + 8 KiB", n, len(f))
		}
		out = append(out, f)
		if n == of {
			return out
		}
	}
}

// TestSplitEventPacking: fragments hold the event's fields smallest first,
// as many as fit; resuming after a fragment gives the next ones; resuming
// from one without the stage is refused (280); the unsplit event is too
// large for a stream without the stage (10334).
func TestSplitEventPacking(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("big")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: strings.Repeat("a", 4*mib)}})
	must(t, err)
	start, err := coll.Watch(cx, mongo.Pipeline{})
	must(t, err)
	startToken := append(bson.Raw(nil), start.ResumeToken()...)
	must(t, start.Close(cx))
	split, whole := streams(t, coll, startToken, true)
	// fullDocument (~10.5 MiB) and updateDescription (~6.5 MiB): an event of ~17 MiB.
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "b", Value: strings.Repeat("b", 13*mib/2)}}}})
	must(t, err)
	fragments := readFragments(t, split)
	if len(fragments) != 2 {
		t.Fatalf("%d fragments, want 2", len(fragments))
	}
	first, second := fragments[0], fragments[1]
	// The small fields come first, with the smaller of the two large ones.
	for _, f := range []string{"operationType", "clusterTime", "ns", "documentKey", "updateDescription"} {
		if first.Lookup(f).Type == 0 {
			t.Errorf("the first fragment lacks %s: %v", f, first)
		}
	}
	if second.Lookup("fullDocument").Type != bson.TypeEmbeddedDocument || second.Lookup("operationType").Type != 0 {
		t.Errorf("the second fragment should hold fullDocument alone: %v", second.Lookup("splitEvent"))
	}
	for i, f := range fragments {
		if _, err := f.LookupErr("_id", "_data"); err != nil || i > 0 && f.Lookup("_id").Equal(fragments[i-1].Lookup("_id")) {
			t.Fatalf("fragment %d has no token of its own", i+1)
		}
	}
	rs, err := coll.Watch(cx, splitStage, options.ChangeStream().SetFullDocument(options.UpdateLookup).SetResumeAfter(first.Lookup("_id").Document()))
	must(t, err)
	defer rs.Close(cx)
	if r := next(t, rs); r.Lookup("splitEvent", "fragment").Int32() != 2 {
		t.Fatalf("resumed after fragment 1 at %v", r.Lookup("splitEvent"))
	}
	_, err = coll.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(first.Lookup("_id").Document()))
	if codeOf(err) != 280 {
		t.Fatalf("resuming from a fragment without the stage: err = %v, want 280", err)
	}
	if whole.Next(cx) || codeOf(whole.Err()) != 10334 {
		t.Fatalf("the unsplit event: err = %v, want 10334 BSONObjectTooLarge", whole.Err())
	}
}

// TestInsertTooLarge: a document over 16 MiB is refused with code 2, as
// mongod's "object to insert too large" (the command is sent whole: the
// driver refuses such a document itself).
func TestInsertTooLarge(t *testing.T) {
	db, cx := setup(t)
	err := db.RunCommand(cx, bson.D{{Key: "insert", Value: "big"}, {Key: "documents", Value: bson.A{sizedDoc(t, 1, 16*mib+1)}}}).Err()
	if codeOf(err) != 2 || !strings.Contains(err.Error(), "object to insert too large") {
		t.Fatalf("err = %v, want write error 2 BadValue", err)
	}
	if n, _ := db.Collection("big").CountDocuments(cx, bson.D{}); n != 0 {
		t.Fatalf("%d documents stored", n)
	}
}

// TestSplitEventFragmentsOfOneRendering: the fragments of a split event come from one
// rendering of the event, however many getMores return them, as mongod's split stage
// queues them in the cursor: a write between two getMores changes updateLookup's
// document, and must change neither the fragments still to come nor their count. (A
// stream that rendered the event again at each getMore would, here, skip its second
// fragment: the event, now small, is no longer split.)
func TestSplitEventFragmentsOfOneRendering(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("rendered")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: strings.Repeat("a", 4*mib)}})
	must(t, err)
	cs, err := coll.Watch(cx, splitStage, options.ChangeStream().SetFullDocument(options.UpdateLookup).
		SetBatchSize(1).SetMaxAwaitTime(50*time.Millisecond))
	must(t, err)
	defer cs.Close(cx)
	// fullDocument (~10.5 MiB) and updateDescription (~6.5 MiB): two fragments.
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "b", Value: strings.Repeat("b", 13*mib/2)}}}})
	must(t, err)
	first := next(t, cs)
	if k, n := splitOf(first); k != 1 || n != 2 || cs.RemainingBatchLength() != 0 {
		t.Fatalf("first document: splitEvent %v, %d more in its batch; want fragment 1 of 2, alone", first.Lookup("splitEvent"), cs.RemainingBatchLength())
	}
	// The document shrinks before the next getMore.
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$unset", Value: bson.D{{Key: "a", Value: ""}, {Key: "b", Value: ""}}}})
	must(t, err)
	second := next(t, cs)
	if k, n := splitOf(second); k != 2 || n != 2 {
		t.Fatalf("after fragment 1 of 2, the stream returned %s event %v, splitEvent %v: want fragment 2 of 2", opType(second), second.Lookup("_id"), second.Lookup("splitEvent"))
	}
	if b, ok := second.Lookup("fullDocument", "b").StringValueOK(); !ok || len(b) != 13*mib/2 {
		t.Fatalf("fragment 2's fullDocument is not the one of the first rendering (b of %d bytes)", len(b))
	}
	if third := next(t, cs); opType(third) != "update" || third.Lookup("splitEvent").Type != 0 {
		t.Fatalf("after the split event: %s, splitEvent %v; want the $unset, whole", opType(third), third.Lookup("splitEvent"))
	}
}

// splitOf is an event's splitEvent {fragment, of}; 0, 0 when it has none.
func splitOf(ev bson.Raw) (fragment, of int32) {
	fragment, _ = ev.Lookup("splitEvent", "fragment").Int32OK()
	of, _ = ev.Lookup("splitEvent", "of").Int32OK()
	return fragment, of
}

// TestResumeAtAFragmentOfAnEventNoLongerSplit: a stream opened at a fragment's token
// renders the event again, with updateLookup's document as it is now; when the event
// is no longer split, or splits into fewer fragments than the token's, mongod's split
// stage fails the stream with 280 (change_stream_split_large_event_stage.cpp), from the
// first fragment's token and from the last one's alike.
func TestResumeAtAFragmentOfAnEventNoLongerSplit(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("shrunk")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: strings.Repeat("a", 4*mib)}})
	must(t, err)
	cs, err := coll.Watch(cx, splitStage, options.ChangeStream().SetFullDocument(options.UpdateLookup).SetMaxAwaitTime(50*time.Millisecond))
	must(t, err)
	defer cs.Close(cx)
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "b", Value: strings.Repeat("b", 13*mib/2)}}}})
	must(t, err)
	fragments := readFragments(t, cs)
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$unset", Value: bson.D{{Key: "a", Value: ""}, {Key: "b", Value: ""}}}})
	must(t, err)
	for i, f := range fragments {
		// The event is in the opening aggregate's first batch: it fails there.
		rs, err := coll.Watch(cx, splitStage, options.ChangeStream().SetFullDocument(options.UpdateLookup).
			SetMaxAwaitTime(50*time.Millisecond).SetResumeAfter(f.Lookup("_id").Document()))
		if err == nil {
			rs.Next(cx)
			err = rs.Err()
			_ = rs.Close(cx)
		}
		if codeOf(err) != 280 || !strings.Contains(err.Error(), "not large enough to be split") {
			t.Errorf("resumed at fragment %d of %d of an event no longer split: err %v; want 280", i+1, len(fragments), err)
		}
	}
}
