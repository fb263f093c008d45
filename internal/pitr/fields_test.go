package pitr

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Documents whose field names start with $ (legal since MongoDB 5.0, at the top level
// too) or hold dots: replayed once, then again over the result, then from the start onto
// the final state, they give the source's state each time.
func TestReplayOfDollarAndDottedFieldNamesIsIdempotent(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	coll := w.source.Database("app").Collection("odd")
	_, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "$d", Value: 1}},
		bson.D{{Key: "_id", Value: 2}, {Key: "a.b", Value: 1}, {Key: "n", Value: bson.D{{Key: "$e", Value: 2}, {Key: "x.y", Value: 3}}}},
		bson.D{{Key: "_id", Value: 3}, {Key: "$price", Value: 5}, {Key: "q", Value: 1}},
	})
	must(t, err)
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 3}}, bson.D{{Key: "$set", Value: bson.D{{Key: "q", Value: 2}}}})
	must(t, err)
	want, at := w.cut()

	w.replay(w.target, Options{To: at})
	expect(t, w.target, want, "after one replay")
	w.replayNeeding(w.target, Options{To: at})
	expect(t, w.target, want, "after a second replay of the same range")
}

// A pipeline update that replaces a document by one with a new field before fields it
// had (here with $-prefixed and dotted names, so replay reads, changes and replaces the
// document) moves those fields after the new one: mongod's diff lists them, after the
// new field, among the fields it inserts at the end of the document. Replayed onto an
// empty target, then again onto the result, the fields keep the source's order.
func TestReplayMovesTheFieldsAPipelineUpdateInsertsAfterANewOne(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	coll := w.source.Database("app").Collection("moved")
	big := strings.Repeat("x", 200) // unchanged, so the diff is smaller than the document: an update event
	doc := func(id int, extra ...bson.E) bson.D {
		d := bson.D{{Key: "_id", Value: id}, {Key: "big", Value: big}, {Key: "sq", Value: int64(id)}}
		d = append(d, extra...)
		return append(d,
			bson.E{Key: "$price", Value: 7},
			bson.E{Key: "a.b", Value: bson.A{nil, 0.5}},
			bson.E{Key: "nest", Value: bson.D{{Key: "$q", Value: 7}, {Key: "c.d", Value: "dotted"}}})
	}
	loc := bson.E{Key: "loc", Value: bson.D{{Key: "type", Value: "Point"}, {Key: "coordinates", Value: bson.A{-80.3, 71.6}}}}
	_, err := coll.InsertMany(ctx, []any{doc(1), doc(2)})
	must(t, err)
	for id, extra := range map[int][]bson.E{1: {loc}, 2: {loc, {Key: "n", Value: 3}}} {
		replacement := mongo.Pipeline{{{Key: "$replaceWith", Value: bson.D{{Key: "$literal", Value: doc(id, extra...)}}}}}
		_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, replacement)
		must(t, err)
	}
	want, at := w.cut()

	if s := w.replay(w.target, Options{To: at}); s.ClientSideUpdates != 2 {
		t.Fatalf("the updates went to the target %d times of 2 by read-modify-replace", s.ClientSideUpdates)
	}
	expect(t, w.target, want, "after one replay")
	w.replay(w.target, Options{To: at})
	expect(t, w.target, want, "after a second replay of the same range")
}
