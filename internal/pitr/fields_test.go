package pitr

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
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
