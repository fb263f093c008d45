package mongotest_test

import (
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The update forms applications use, each as mongod runs it and logs it:
// the write's counts, the document after, and the change event
// (https://www.mongodb.com/docs/manual/reference/operator/update/,
// https://www.mongodb.com/docs/manual/reference/change-events/update/).
//
// How an update is described follows from how mongod logs it in its oplog's
// $v:2 diff, which change streams read (src/mongo/db/update/*_node.cpp,
// document_diff_calculator.cpp, change_stream_document_diff_parser.cpp):
//   - operators log what they change at the path they change it; an array
//     $addToSet, $pull, $pullAll or $pop changes is logged whole, and
//     operators never truncate arrays;
//   - $[] and $[<id>] log each change where it is when they select at most
//     one element; when they select several, the whole array if several
//     changed, the one element if one did (update_array_node.cpp);
//   - a pipeline's change is the diff of the documents: a shorter array is
//     a truncation, elements past the old end are updates, and when the
//     diff would be no smaller than the new document the change is logged
//     as the document: a replace event.

// pad makes a document large enough that a pipeline's diff is smaller than
// it (see above).
var pad = strings.Repeat("p", 50)

type formCase struct {
	name         string
	start        bson.D // without _id
	filter       bson.D // besides _id
	update       any
	arrayFilters []any
	after        bson.D // without _id
	// event is "update", "replace" or "" (no-op: nothing modified, no event).
	event     string
	updated   bson.D
	removed   bson.A
	truncated bson.A
	// disambiguated is disambiguatedPaths (showExpandedEvents), when not empty.
	disambiguated bson.D
}

func a(v ...any) bson.A { return append(bson.A{}, v...) }

func d(kv ...any) bson.D {
	out := bson.D{}
	for i := 0; i < len(kv); i += 2 {
		out = append(out, bson.E{Key: kv[i].(string), Value: kv[i+1]})
	}
	return out
}

func op(name string, kv ...any) bson.D { return d(name, d(kv...)) }

var updateForms = []formCase{
	{name: "$addToSet adds a value", start: d("tags", a("a")), update: op("$addToSet", "tags", "b"),
		after: d("tags", a("a", "b")), event: "update", updated: d("tags", a("a", "b"))},
	{name: "$addToSet $each adds what is missing, once", start: d("tags", a("a")), update: op("$addToSet", "tags", d("$each", a("a", "c", "c"))),
		after: d("tags", a("a", "c")), event: "update", updated: d("tags", a("a", "c"))},
	{name: "$addToSet of a present value is a no-op", start: d("tags", a("a")), update: op("$addToSet", "tags", "a"),
		after: d("tags", a("a"))},
	{name: "$addToSet creates the array", start: d(), update: op("$addToSet", "tags", d("$each", a("x", "y"))),
		after: d("tags", a("x", "y")), event: "update", updated: d("tags", a("x", "y"))},
	{name: "$pull a value", start: d("n", a(1, 2, 3, 2)), update: op("$pull", "n", 2),
		after: d("n", a(1, 3)), event: "update", updated: d("n", a(1, 3))},
	{name: "$pull by a condition", start: d("n", a(1, 5, 8)), update: op("$pull", "n", d("$gte", 5)),
		after: d("n", a(1)), event: "update", updated: d("n", a(1))},
	{name: "$pull by a query on documents", start: d("items", a(d("k", 1, "v", "a"), d("k", 2, "v", "b"))), update: op("$pull", "items", d("k", 2)),
		after: d("items", a(d("k", 1, "v", "a"))), event: "update", updated: d("items", a(d("k", 1, "v", "a")))},
	{name: "$pullAll", start: d("n", a(1, 2, 3, 1)), update: op("$pullAll", "n", a(1, 3)),
		after: d("n", a(2)), event: "update", updated: d("n", a(2))},
	{name: "$pop the last element logs the array, no truncation", start: d("n", a(1, 2, 3)), update: op("$pop", "n", 1),
		after: d("n", a(1, 2)), event: "update", updated: d("n", a(1, 2))},
	{name: "$pop the first element", start: d("n", a(1, 2, 3)), update: op("$pop", "n", -1),
		after: d("n", a(2, 3)), event: "update", updated: d("n", a(2, 3))},
	{name: "$mul, and a missing field becomes 0", start: d("p", 5), update: op("$mul", "q", 3, "p", 2),
		after: d("p", 10, "q", 0), event: "update", updated: d("p", 10, "q", 0)},
	{name: "$bit and, or, xor in order; a long makes a long", start: d("f", int32(12)), update: op("$bit", "f", d("and", int32(10), "or", int32(1), "xor", int64(4))),
		after: d("f", int64(13)), event: "update", updated: d("f", int64(13))},
	{name: "$bit on a missing field starts from 0", start: d(), update: op("$bit", "f", d("or", int32(5))),
		after: d("f", int32(5)), event: "update", updated: d("f", int32(5))},
	{name: "$bit that changes nothing is a no-op", start: d("f", int32(7)), update: op("$bit", "f", d("or", int32(1))), after: d("f", int32(7))},
	{name: "$min lowers", start: d("lo", 5), update: op("$min", "lo", 3),
		after: d("lo", 3), event: "update", updated: d("lo", 3)},
	{name: "$min above the value is a no-op", start: d("lo", 5), update: op("$min", "lo", 7), after: d("lo", 5)},
	{name: "$max raises", start: d("hi", 5), update: op("$max", "hi", 9),
		after: d("hi", 9), event: "update", updated: d("hi", 9)},
	{name: "$rename sets the destination and removes the source", start: d("a", 1, "b", d("c", 2)), update: op("$rename", "a", "z", "b.c", "b.d"),
		after: d("b", d("d", 2), "z", 1), event: "update", updated: d("z", 1, "b.d", 2), removed: a("a", "b.c")},
	{name: "fields are processed by name, numbers by number", start: d("arr", a(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), update: op("$set", "y", 1, "arr.10", 1, "arr.2", 1, "x", 1),
		after: d("arr", a(0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1), "x", 1, "y", 1), event: "update", updated: d("x", 1, "y", 1, "arr.2", 1, "arr.10", 1)},
	{name: "positional $ at the matched element", start: d("grades", a(80, 85, 90)), filter: d("grades", 85), update: op("$set", "grades.$", 82),
		after: d("grades", a(80, 82, 90)), event: "update", updated: d("grades.1", 82)},
	{name: "positional $ in an array of documents", start: d("items", a(d("k", 1, "q", 1), d("k", 2, "q", 1))), filter: d("items.k", 2), update: op("$inc", "items.$.q", 5),
		after: d("items", a(d("k", 1, "q", 1), d("k", 2, "q", 6))), event: "update", updated: d("items.1.q", 6)},
	{name: "$[] changing several elements logs the array", start: d("n", a(1, 2, 3)), update: op("$inc", "n.$[]", 10),
		after: d("n", a(11, 12, 13)), event: "update", updated: d("n", a(11, 12, 13))},
	{name: "$[] on a one-element array logs the change's path", start: d("n", a(d("q", 1))), update: op("$inc", "n.$[].q", 1),
		after: d("n", a(d("q", 2))), event: "update", updated: d("n.0.q", 2)},
	{name: "$[<id>] changing several elements logs the array", start: d("n", a(1, 5, 9)), update: op("$set", "n.$[e]", 0), arrayFilters: []any{d("e", d("$gte", 5))},
		after: d("n", a(1, 0, 0)), event: "update", updated: d("n", a(1, 0, 0))},
	{name: "$[<id>] selecting several, changing one, logs that element", start: d("n", a(5, 0)), update: op("$max", "n.$[e]", 3), arrayFilters: []any{d("e", d("$gte", 0))},
		after: d("n", a(5, 3)), event: "update", updated: d("n.1", 3)},
	{name: "$[<id>] selecting one element logs the change's path", start: d("items", a(d("k", 1, "q", 1), d("k", 2, "q", 1))), update: op("$set", "items.$[i].q", 9), arrayFilters: []any{d("i.k", 2)},
		after: d("items", a(d("k", 1, "q", 1), d("k", 2, "q", 9))), event: "update", updated: d("items.1.q", 9)},
	{name: "pipeline $set with $add", start: d("a", 1, "b", 2, "pad", pad), update: a(op("$set", "c", d("$add", a("$a", "$b")))),
		after: d("a", 1, "b", 2, "pad", pad, "c", 3), event: "update", updated: d("c", 3)},
	{name: "pipeline $unset", start: d("a", 1, "b", 2, "pad", pad), update: a(d("$unset", "b")),
		after: d("a", 1, "pad", pad), event: "update", removed: a("b")},
	{name: "pipeline shortening an array truncates it", start: d("a", 1, "array", a("foo", d("a", "bar"), 1, 2, 3)), update: a(op("$set", "array", a("foo", d("a", "bar")))),
		after: d("a", 1, "array", a("foo", d("a", "bar"))), event: "update", truncated: a(d("field", "array", "newSize", 2))},
	{name: "pipeline $concatArrays appends elements", start: d("arr", a(1, 2), "pad", pad), update: a(op("$set", "arr", d("$concatArrays", a("$arr", a(3))))),
		after: d("arr", a(1, 2, 3), "pad", pad), event: "update", updated: d("arr.2", 3)},
	{name: "pipeline $slice keeps the first elements", start: d("arr", a(1, 2, 3, 4), "pad", pad), update: a(op("$set", "arr", d("$slice", a("$arr", 2)))),
		after: d("arr", a(1, 2), "pad", pad), event: "update", truncated: a(d("field", "arr", "newSize", 2))},
	{name: "pipeline $ifNull", start: d("pad", pad), update: a(op("$set", "x", d("$ifNull", a("$x", 0)))),
		after: d("pad", pad, "x", 0), event: "update", updated: d("x", 0)},
	{name: "pipeline changing a field of a subdocument logs that field", start: d("s", d("a", 1, "b", 2, "c", 3, "pad", pad)), update: a(op("$set", "s.a", 5)),
		after: d("s", d("a", 5, "b", 2, "c", 3, "pad", pad)), event: "update", updated: d("s.a", 5)},
	{name: "pipeline changing most of a subdocument logs it whole", start: d("s", d("a", 1, "b", 2), "pad", pad), update: a(op("$set", "s", d("$literal", d("a", 2, "b", 3)))),
		after: d("s", d("a", 2, "b", 3), "pad", pad), event: "update", updated: d("s", d("a", 2, "b", 3))},
	{name: "pipeline changing most of a small document is a replace", start: d("a", 1), update: a(op("$set", "a", 2, "b", 3)),
		after: d("a", 2, "b", 3), event: "replace"},
	{name: "pipeline $setField writes a $-prefixed field", start: d("pad", pad),
		update: a(d("$replaceWith", op("$setField", "field", d("$literal", "$price"), "input", "$$ROOT", "value", 5))),
		after:  d("pad", pad, "$price", 5), event: "update", updated: d("$price", 5)},
	// mongod's diff (document_diff_calculator.cpp, computeDocDiff) pairs the fields of
	// both documents in order; from the first it cannot pair, the new document's fields
	// are inserts, moved to the end: b and c, unchanged, come after the new n.
	{name: "pipeline replacement adding a field before others logs them as inserted after it", start: d("pad", pad, "b", 1, "c", 2),
		update: a(d("$replaceWith", d("$literal", d("pad", pad, "n", 0, "b", 1, "c", 2)))),
		after:  d("pad", pad, "n", 0, "b", 1, "c", 2), event: "update", updated: d("n", 0, "b", 1, "c", 2)},
	{name: "pipeline $setField writes a dotted field name", start: d("pad", pad),
		update: a(d("$replaceWith", op("$setField", "field", "a.b", "input", "$$ROOT", "value", 1))),
		after:  d("pad", pad, "a.b", 1), event: "update", updated: d("a.b", 1), disambiguated: d("a.b", a("a.b"))},
	{name: "pipeline $unsetField removes a $-prefixed field", start: d("pad", pad, "$d", 1),
		update: a(d("$replaceWith", op("$unsetField", "field", d("$literal", "$d"), "input", "$$ROOT"))),
		after:  d("pad", pad), event: "update", removed: a("$d")},
	{name: "pipeline $replaceWith $literal moving fields is a replace", start: d("pad", pad, "x", 1),
		update: a(d("$replaceWith", d("$literal", d("$d", 2, "pad", pad)))),
		after:  d("$d", 2, "pad", pad), event: "replace"},
}

func TestUpdateForms(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("forms")
	cs, err := coll.Watch(cx, mongo.Pipeline{{{Key: "$match", Value: d("operationType", d("$in", a("update", "replace")))}}},
		options.ChangeStream().SetMaxAwaitTime(50*time.Millisecond).SetShowExpandedEvents(true))
	must(t, err)
	defer cs.Close(cx)
	for i, c := range updateForms {
		id := bson.E{Key: "_id", Value: i}
		_, err := coll.InsertOne(cx, append(bson.D{id}, c.start...))
		must(t, err)
		opts := options.UpdateOne()
		if c.arrayFilters != nil {
			opts.SetArrayFilters(c.arrayFilters)
		}
		res, err := coll.UpdateOne(cx, append(bson.D{id}, c.filter...), c.update, opts)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var after bson.Raw
		must(t, coll.FindOne(cx, bson.D{id}).Decode(&after))
		if want := append(bson.D{id}, c.after...); !rawDoc(t, want).Equal(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: after}) {
			t.Errorf("%s: document after %v, want %v", c.name, after, want)
		}
		if res.MatchedCount != 1 || (res.ModifiedCount == 1) != (c.event != "") {
			t.Errorf("%s: matched %d, modified %d", c.name, res.MatchedCount, res.ModifiedCount)
		}
		if c.event == "" {
			continue
		}
		ev := next(t, cs)
		if opType(ev) != c.event || !ev.Lookup("documentKey", "_id").Equal(rawValue(t, i)) {
			t.Errorf("%s: event %v, want %s of %d", c.name, ev, c.event, i)
			continue
		}
		if c.event == "replace" {
			if !ev.Lookup("fullDocument").Equal(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: after}) {
				t.Errorf("%s: replace's fullDocument %v, want %v", c.name, ev.Lookup("fullDocument"), after)
			}
			continue
		}
		desc := ev.Lookup("updateDescription").Document()
		for _, f := range []struct {
			name string
			want bson.RawValue
		}{
			{"updatedFields", rawDoc(t, c.updated)},
			{"removedFields", rawArray(t, orEmpty(c.removed))},
			{"truncatedArrays", rawArray(t, orEmpty(c.truncated))},
			{"disambiguatedPaths", rawDoc(t, c.disambiguated)},
		} {
			if got := desc.Lookup(f.name); !got.Equal(f.want) {
				t.Errorf("%s: %s %v, want %v", c.name, f.name, got, f.want)
			}
		}
	}
	if !quiet(t, cs) {
		t.Fatalf("an event more than the updates': %v", cs.Current)
	}
}

func orEmpty(v bson.A) bson.A {
	if v == nil {
		return bson.A{}
	}
	return v
}

func rawValue(t *testing.T, v any) bson.RawValue {
	t.Helper()
	typ, data, err := bson.MarshalValue(v)
	must(t, err)
	return bson.RawValue{Type: typ, Value: data}
}

// TestUpdateFormErrors: what mongod refuses in these forms, with its codes.
func TestUpdateFormErrors(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("errors")
	_, err := coll.InsertOne(cx, d("_id", 1, "n", a(1, 2), "$d", 1, "pad", pad))
	must(t, err)
	for _, c := range []struct {
		name   string
		update any
		filter bson.D
		af     []any
		code   int
	}{
		{"$set of a top-level $-prefixed field", op("$set", "$d", 2), nil, nil, 52},
		{"positional $ without an array match", op("$set", "n.$", 0), nil, nil, 2},
		{"an array filter not used", op("$set", "n.$[]", 0), nil, []any{d("x", 1)}, 9},
		{"an array filter missing", op("$set", "n.$[x]", 0), nil, nil, 2},
		{"$[] on a missing path", op("$set", "m.$[]", 0), nil, nil, 2},
		{"two writes to one path", d("$set", d("n", 1), "$rename", d("pad", "n")), nil, nil, 40},
		{"$pull on a non-array", op("$pull", "pad", 1), nil, nil, 2},
		{"$pop on a non-array", op("$pop", "pad", 1), nil, nil, 14},
		{"$addToSet on a non-array", op("$addToSet", "pad", 1), nil, nil, 2},
		{"$mul of a non-number", op("$mul", "pad", 2), nil, nil, 14},
		{"$bit of a non-integer", op("$bit", "pad", d("and", int32(1))), nil, nil, 2},
		{"$bit with a double", op("$bit", "n", d("and", 1.0)), nil, nil, 2},
		{"$bit with an unknown operation", op("$bit", "n", d("nand", int32(1))), nil, nil, 2},
		{"$rename into an array", op("$rename", "pad", "n.0"), nil, nil, 2},
		{"a $match stage in an update pipeline", a(d("$match", d("a", 1))), nil, nil, 72},
		{"a pipeline changing _id", a(op("$set", "_id", 2)), nil, nil, 66},
		{"an expression not implemented", a(op("$set", "u", d("$toUpper", "$pad"))), nil, nil, 115},
	} {
		opts := options.UpdateOne()
		if c.af != nil {
			opts.SetArrayFilters(c.af)
		}
		_, err := coll.UpdateOne(cx, append(d("_id", 1), c.filter...), c.update, opts)
		if codeOf(err) != c.code {
			t.Errorf("%s: err = %v, want code %d", c.name, err, c.code)
		}
	}
	// The driver refuses a replacement with $-prefixed fields before sending
	// it; sent as the command, mongod refuses it (52), the error telling to
	// use $replaceWith.
	err = db.RunCommand(cx, d("update", "errors", "updates", a(d("q", d("_id", 1), "u", d("x", 1, "$d", 2))))).Err()
	if codeOf(err) != 52 || !strings.Contains(err.Error(), "$replaceWith") {
		t.Errorf("replacement with a $-prefixed field: err = %v, want 52 pointing at $replaceWith", err)
	}
	// An upsert that inserts is checked as an insert: $-prefixed fields are
	// allowed (https://www.mongodb.com/docs/manual/core/dot-dollar-considerations/dollar-prefix/).
	var res bson.Raw
	res, err = db.RunCommand(cx, d("update", "errors", "updates", a(d("q", d("_id", 2), "u", op("$set", "$hotel", 3), "upsert", true)))).Raw()
	must(t, err)
	var doc bson.Raw
	must(t, coll.FindOne(cx, d("_id", 2)).Decode(&doc))
	if n, _ := res.Lookup("n").AsInt64OK(); n != 1 || doc.Lookup("$hotel").Type == 0 {
		t.Errorf("upsert of a $-prefixed field: %v, document %v", res, doc)
	}
	var after bson.Raw
	must(t, coll.FindOne(cx, d("_id", 1)).Decode(&after))
	if !after.Lookup("n").Equal(rawArray(t, a(1, 2))) {
		t.Errorf("a refused update changed the document: %v", after)
	}
}

// TestDollarAndDottedFieldNames: documents with $-prefixed and dotted
// top-level field names (allowed since MongoDB 5.0) are inserted, read
// back and replaced through a pipeline, and their events carry them.
func TestDollarAndDottedFieldNames(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("names")
	cs, err := coll.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(50*time.Millisecond))
	must(t, err)
	defer cs.Close(cx)
	doc := d("_id", 1, "$price", 5, "a.b", 1, "nested", d("$x", 1, "y.z", 2))
	// Sent as a command: the driver checks keys of inserted documents itself.
	must(t, db.RunCommand(cx, d("insert", "names", "documents", a(doc))).Err())
	var got bson.Raw
	must(t, coll.FindOne(cx, d("_id", 1)).Decode(&got))
	if !rawDoc(t, doc).Equal(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: got}) {
		t.Fatalf("read back %v, want %v", got, doc)
	}
	if ev := next(t, cs); opType(ev) != "insert" || !ev.Lookup("fullDocument").Equal(rawDoc(t, doc)) {
		t.Fatalf("insert event %v", ev)
	}
	// A nested $-prefixed field may be set by an operator.
	_, err = coll.UpdateOne(cx, d("_id", 1), op("$set", "nested.$x", 2))
	must(t, err)
	if ev := next(t, cs); !ev.Lookup("updateDescription", "updatedFields").Equal(rawDoc(t, d("nested.$x", 2))) {
		t.Fatalf("update event %v", ev)
	}
	replacement := d("_id", 1, "$price", 6, "a.b", 2)
	_, err = coll.UpdateOne(cx, d("_id", 1), mongo.Pipeline{d("$replaceWith", d("$literal", replacement))})
	must(t, err)
	must(t, coll.FindOne(cx, d("_id", 1)).Decode(&got))
	if !rawDoc(t, replacement).Equal(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: got}) {
		t.Fatalf("after $replaceWith: %v, want %v", got, replacement)
	}
	if ev := next(t, cs); opType(ev) != "replace" || !ev.Lookup("fullDocument").Equal(rawDoc(t, replacement)) {
		t.Fatalf("the pipeline's event %v, want a replace with the document", ev)
	}
}
