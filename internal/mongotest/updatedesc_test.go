package mongotest_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Update descriptions as mongod derives them from its oplog diffs
// (https://www.mongodb.com/docs/manual/reference/change-events/update/):
// each operator's change at the path it wrote, not a diff of the documents.

// describeUpdates applies each update to a fresh copy of start and returns
// the updateDescription of its event (nil when the update made none).
func describeUpdates(t *testing.T, start bson.D, expanded bool, updates ...bson.D) []bson.Raw {
	t.Helper()
	db, cx := setup(t)
	coll := db.Collection("desc")
	cs, err := coll.Database().Watch(cx, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "operationType", Value: "update"}}}}},
		options.ChangeStream().SetMaxAwaitTime(50*time.Millisecond).SetShowExpandedEvents(expanded))
	must(t, err)
	defer cs.Close(context.Background())
	var out []bson.Raw
	for i, u := range updates {
		doc := append(bson.D{{Key: "_id", Value: i}}, start...)
		_, err := coll.InsertOne(cx, doc)
		must(t, err)
		res, err := coll.UpdateOne(cx, bson.D{{Key: "_id", Value: i}}, u)
		must(t, err)
		if res.ModifiedCount == 0 {
			out = append(out, nil)
			continue
		}
		out = append(out, next(t, cs).Lookup("updateDescription").Document())
	}
	if !quiet(t, cs) {
		t.Fatalf("an event for a no-op update: %v", cs.Current)
	}
	return out
}

func set(f string, v any) bson.D { return bson.D{{Key: "$set", Value: bson.D{{Key: f, Value: v}}}} }

func TestUpdateDescriptionFollowsOperators(t *testing.T) {
	start := bson.D{
		{Key: "a", Value: bson.D{{Key: "x", Value: 1}, {Key: "y", Value: 1}}},
		{Key: "b", Value: bson.D{}},
		{Key: "n", Value: 1},
		{Key: "z", Value: true},
		{Key: "nul", Value: nil},
		{Key: "arr", Value: bson.A{1, 2}},
	}
	cases := []struct {
		name    string
		update  bson.D
		updated bson.D   // updatedFields, in order
		removed []string // removedFields
	}{
		{"$set of a subdocument reports the whole field", set("a", bson.D{{Key: "x", Value: 1}, {Key: "y", Value: 2}}),
			bson.D{{Key: "a", Value: bson.D{{Key: "x", Value: 1}, {Key: "y", Value: 2}}}}, nil},
		{"$set of a nested field", set("a.y", 3), bson.D{{Key: "a.y", Value: 3}}, nil},
		{"$set creates from the first missing part", set("b.c.d", 1), bson.D{{Key: "b.c", Value: bson.D{{Key: "d", Value: 1}}}}, nil},
		{"$set creates a top-level field", set("new.deep", 1), bson.D{{Key: "new", Value: bson.D{{Key: "deep", Value: 1}}}}, nil},
		{"$set of a null field", set("nul", 5), bson.D{{Key: "nul", Value: 5}}, nil},
		{"$set of an array element", set("arr.1", 9), bson.D{{Key: "arr.1", Value: 9}}, nil},
		{"$unset", bson.D{{Key: "$unset", Value: bson.D{{Key: "z", Value: ""}}}}, bson.D{}, []string{"z"}},
		{"$unset of an array element leaves null", bson.D{{Key: "$unset", Value: bson.D{{Key: "arr.0", Value: ""}}}}, bson.D{{Key: "arr.0", Value: nil}}, nil},
		{"$inc", bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 2}, {Key: "m", Value: 1}}}}, bson.D{{Key: "n", Value: 3}, {Key: "m", Value: 1}}, nil},
		{"$push appends element by element", bson.D{{Key: "$push", Value: bson.D{{Key: "arr", Value: bson.D{{Key: "$each", Value: bson.A{3, 4}}}}}}},
			bson.D{{Key: "arr.2", Value: 3}, {Key: "arr.3", Value: 4}}, nil},
		{"$push at a position rewrites the array", bson.D{{Key: "$push", Value: bson.D{{Key: "arr", Value: bson.D{{Key: "$each", Value: bson.A{0}}, {Key: "$position", Value: 0}}}}}},
			bson.D{{Key: "arr", Value: bson.A{0, 1, 2}}}, nil},
		{"$push with $slice rewrites the array", bson.D{{Key: "$push", Value: bson.D{{Key: "arr", Value: bson.D{{Key: "$each", Value: bson.A{3}}, {Key: "$slice", Value: -2}}}}}},
			bson.D{{Key: "arr", Value: bson.A{2, 3}}}, nil},
		{"$push with $sort rewrites the array", bson.D{{Key: "$push", Value: bson.D{{Key: "arr", Value: bson.D{{Key: "$each", Value: bson.A{0}}, {Key: "$sort", Value: -1}}}}}},
			bson.D{{Key: "arr", Value: bson.A{2, 1, 0}}}, nil},
		{"$push to a missing field creates it", bson.D{{Key: "$push", Value: bson.D{{Key: "tags", Value: "t"}}}}, bson.D{{Key: "tags", Value: bson.A{"t"}}}, nil},
		{"several operators", bson.D{{Key: "$set", Value: bson.D{{Key: "a.x", Value: 5}, {Key: "k", Value: 1}}}, {Key: "$unset", Value: bson.D{{Key: "z", Value: 1}}}},
			bson.D{{Key: "k", Value: 1}, {Key: "a.x", Value: 5}}, []string{"z"}},
	}
	var updates []bson.D
	for _, c := range cases {
		updates = append(updates, c.update)
	}
	descs := describeUpdates(t, start, false, updates...)
	for i, c := range cases {
		d := descs[i]
		if d == nil {
			t.Errorf("%s: no update event", c.name)
			continue
		}
		if got, want := d.Lookup("updatedFields"), rawDoc(t, c.updated); !got.Equal(want) {
			t.Errorf("%s: updatedFields %v, want %v", c.name, got, want)
		}
		removed := bson.A{}
		for _, r := range c.removed {
			removed = append(removed, r)
		}
		if got, want := d.Lookup("removedFields"), rawArray(t, removed); !got.Equal(want) {
			t.Errorf("%s: removedFields %v, want %v", c.name, got, want)
		}
		if arr, _ := d.Lookup("truncatedArrays").ArrayOK(); len(arr) != 5 { // an empty array: operators never truncate
			t.Errorf("%s: truncatedArrays %v", c.name, d.Lookup("truncatedArrays"))
		}
		if d.Lookup("disambiguatedPaths").Type != 0 {
			t.Errorf("%s: disambiguatedPaths without showExpandedEvents", c.name)
		}
	}
}

func TestNoOpUpdateHasNoEvent(t *testing.T) {
	descs := describeUpdates(t, bson.D{{Key: "v", Value: 1}, {Key: "arr", Value: bson.A{1}}}, false,
		set("v", 1), bson.D{{Key: "$unset", Value: bson.D{{Key: "missing", Value: ""}}}},
		bson.D{{Key: "$push", Value: bson.D{{Key: "arr", Value: bson.D{{Key: "$each", Value: bson.A{}}}}}}})
	for i, d := range descs {
		if d != nil {
			t.Errorf("no-op update %d described %v", i, d)
		}
	}
}

// TestDisambiguatedPaths: with showExpandedEvents (MongoDB 6.1+), a path
// with a numeric field name (not an array index) is also given as its
// list of parts.
func TestDisambiguatedPaths(t *testing.T) {
	start := bson.D{
		{Key: "m", Value: bson.D{{Key: "1", Value: bson.D{{Key: "b", Value: 0}}}}},
		{Key: "arr", Value: bson.A{bson.D{{Key: "q", Value: 0}}}},
		{Key: "1", Value: 0},
	}
	descs := describeUpdates(t, start, true, set("m.1.b", 1), set("arr.0.q", 1), set("1", 1))
	want := []bson.D{
		{{Key: "m.1.b", Value: bson.A{"m", "1", "b"}}},
		{}, // an array index is no ambiguity
		{}, // nor a numeric first part
	}
	for i, d := range descs {
		if got := d.Lookup("disambiguatedPaths"); !got.Equal(rawDoc(t, want[i])) {
			t.Errorf("update %d: disambiguatedPaths %v, want %v", i, got, want[i])
		}
	}
	// An array index among the parts is given as a number.
	descs = describeUpdates(t, bson.D{{Key: "arr", Value: bson.A{bson.D{{Key: "7", Value: 0}}}}}, true, set("arr.0.7", 1))
	if got, want := descs[0].Lookup("disambiguatedPaths"), rawDoc(t, bson.D{{Key: "arr.0.7", Value: bson.A{"arr", int32(0), "7"}}}); !got.Equal(want) {
		t.Errorf("disambiguatedPaths %v, want %v", got, want)
	}
}

func TestPushModifiers(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("push")
	push := func(spec bson.D) bson.A {
		t.Helper()
		_, err := coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: bson.A{5, 1, 3}}}}}, options.UpdateOne().SetUpsert(true))
		must(t, err)
		_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$push", Value: bson.D{{Key: "a", Value: spec}}}})
		must(t, err)
		var doc struct{ A bson.A }
		must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: 1}}).Decode(&doc))
		return doc.A
	}
	each := func(v ...any) bson.E { return bson.E{Key: "$each", Value: bson.A(v)} }
	for _, c := range []struct {
		name string
		spec bson.D
		want bson.A
	}{
		{"$each", bson.D{each(7, 8)}, bson.A{int32(5), int32(1), int32(3), int32(7), int32(8)}},
		{"$position", bson.D{each(7), {Key: "$position", Value: 1}}, bson.A{int32(5), int32(7), int32(1), int32(3)}},
		{"negative $position", bson.D{each(7), {Key: "$position", Value: -1}}, bson.A{int32(5), int32(1), int32(7), int32(3)}},
		{"$slice", bson.D{each(7), {Key: "$slice", Value: 2}}, bson.A{int32(5), int32(1)}},
		{"negative $slice", bson.D{each(7), {Key: "$slice", Value: -2}}, bson.A{int32(3), int32(7)}},
		{"$sort", bson.D{each(2), {Key: "$sort", Value: 1}}, bson.A{int32(1), int32(2), int32(3), int32(5)}},
		{"$sort and $slice", bson.D{each(9), {Key: "$sort", Value: -1}, {Key: "$slice", Value: 3}}, bson.A{int32(9), int32(5), int32(3)}},
	} {
		if got := push(c.spec); !rawArray(t, got).Equal(rawArray(t, c.want)) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	_, err := coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "$set", Value: bson.D{{Key: "d", Value: bson.A{bson.D{{Key: "k", Value: 2}}, bson.D{{Key: "k", Value: 1}}}}}}}, options.UpdateOne().SetUpsert(true))
	must(t, err)
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "$push", Value: bson.D{{Key: "d", Value: bson.D{each(bson.D{{Key: "k", Value: 0}}), {Key: "$sort", Value: bson.D{{Key: "k", Value: 1}}}}}}}})
	must(t, err)
	var doc struct{ D []struct{ K int32 } }
	must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: 2}}).Decode(&doc))
	if len(doc.D) != 3 || doc.D[0].K != 0 || doc.D[1].K != 1 || doc.D[2].K != 2 {
		t.Fatalf("$sort by field: %+v", doc.D)
	}
	// $push into a non-array is refused (2), as are unknown modifiers.
	for _, u := range []bson.D{
		{{Key: "$push", Value: bson.D{{Key: "_id", Value: 1}}}},
		{{Key: "$push", Value: bson.D{{Key: "a", Value: bson.D{each(1), {Key: "$bogus", Value: 1}}}}}},
	} {
		if _, err := coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, u); codeOf(err) != 2 && codeOf(err) != 66 {
			t.Errorf("%v: err = %v, want 2", u, err)
		}
	}
}

// TestRenameOverTarget: renameCollection with dropTarget replaces the target
// in one event that names it (operationDescription.dropTarget), and a
// stream on the target sees the rename, then its invalidate.
func TestRenameOverTarget(t *testing.T) {
	db, cx := setup(t)
	for _, name := range []string{"src", "dst"} {
		_, err := db.Collection(name).InsertOne(cx, bson.D{{Key: "_id", Value: name}})
		must(t, err)
	}
	var info struct {
		Info struct {
			UUID bson.Binary `bson:"uuid"`
		} `bson:"info"`
	}
	cur, err := db.ListCollections(cx, bson.D{{Key: "name", Value: "dst"}})
	must(t, err)
	if !cur.Next(cx) {
		t.Fatal("no dst")
	}
	must(t, cur.Decode(&info))
	dbStream, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	must(t, err)
	defer dbStream.Close(cx)
	dstStream, err := db.Collection("dst").Watch(cx, mongo.Pipeline{})
	must(t, err)
	defer dstStream.Close(cx)
	must(t, db.Client().Database("admin").RunCommand(cx, bson.D{
		{Key: "renameCollection", Value: db.Name() + ".src"}, {Key: "to", Value: db.Name() + ".dst"}, {Key: "dropTarget", Value: true},
	}).Err())
	ev := next(t, dbStream)
	if opType(ev) != "rename" || ev.Lookup("ns", "coll").StringValue() != "src" || ev.Lookup("to", "coll").StringValue() != "dst" {
		t.Fatalf("first event after the rename: %v (a drop of the target is not a separate event)", ev)
	}
	if sub, data, ok := ev.Lookup("operationDescription", "dropTarget").BinaryOK(); !ok || sub != 4 || string(data) != string(info.Info.UUID.Data) {
		t.Fatalf("operationDescription %v, want dropTarget: the UUID of the replaced collection", ev.Lookup("operationDescription"))
	}
	if ev := next(t, dstStream); opType(ev) != "rename" {
		t.Fatalf("the target's stream: %v, want the rename", ev)
	}
	if ev := next(t, dstStream); opType(ev) != "invalidate" {
		t.Fatalf("the target's stream: %v, want invalidate", ev)
	}
}

func rawDoc(t *testing.T, d bson.D) bson.RawValue {
	t.Helper()
	if d == nil {
		d = bson.D{}
	}
	return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: mustBSON(d)}
}

func rawArray(t *testing.T, a bson.A) bson.RawValue {
	t.Helper()
	typ, data, err := bson.MarshalValue(a)
	must(t, err)
	return bson.RawValue{Type: typ, Value: data}
}
