package mongotest_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

func TestInsertFindRoundTrip(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("docs", options.Collection().SetWriteConcern(writeconcern.Majority()))
	oid := bson.NewObjectID()
	in := bson.D{
		{Key: "_id", Value: "a"}, {Key: "i32", Value: int32(1)}, {Key: "i64", Value: int64(1 << 40)},
		{Key: "f", Value: 1.5}, {Key: "s", Value: "x"}, {Key: "oid", Value: oid},
		{Key: "ts", Value: bson.Timestamp{T: 5, I: 6}}, {Key: "date", Value: bson.NewDateTimeFromTime(time.UnixMilli(1700000000000))},
		{Key: "nested", Value: bson.D{{Key: "a", Value: bson.A{int32(1), "two", bson.D{{Key: "b", Value: true}}}}}},
		{Key: "bin", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}, {Key: "null", Value: nil},
	}
	_, err := coll.InsertOne(cx, in)
	must(t, err)
	raw, err := coll.FindOne(cx, bson.D{{Key: "_id", Value: "a"}}).Raw()
	must(t, err)
	want, _ := bson.Marshal(in)
	if string(raw) != string(want) {
		t.Fatalf("stored document changed:\n got %v\nwant %v", raw, bson.Raw(want))
	}
	res, err := coll.InsertOne(cx, bson.D{{Key: "x", Value: 1}})
	must(t, err)
	if _, ok := res.InsertedID.(bson.ObjectID); !ok {
		t.Fatalf("generated _id %T, want ObjectID", res.InsertedID)
	}
}

func TestDuplicateKeys(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("dups")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	// 11000 DuplicateKey on _id, with keyPattern/keyValue.
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1.0}})
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("duplicate _id (1 vs 1.0 compare equal): err = %v", err)
	}
	// Unordered: every document is tried, each failure reported with its index.
	_, err = coll.InsertMany(cx, []any{
		bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 3}}, bson.D{{Key: "_id", Value: 2}},
	}, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || len(bwe.WriteErrors) != 2 || bwe.WriteErrors[0].Index != 1 || bwe.WriteErrors[1].Index != 3 {
		t.Fatalf("unordered insert err = %v", err)
	}
	if n, _ := coll.CountDocuments(cx, bson.D{}); n != 3 {
		t.Fatalf("count = %d, want 3", n)
	}
	// Ordered: stops at the first failure.
	_, err = coll.InsertMany(cx, []any{bson.D{{Key: "_id", Value: 4}}, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 5}}})
	if !errors.As(err, &bwe) || len(bwe.WriteErrors) != 1 || bwe.WriteErrors[0].Index != 1 {
		t.Fatalf("ordered insert err = %v", err)
	}
	if n, _ := coll.CountDocuments(cx, bson.D{}); n != 4 {
		t.Fatalf("count = %d, want 4", n)
	}
	// An update cannot change _id (66), so it cannot duplicate one.
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 4}}, bson.D{{Key: "$set", Value: bson.D{{Key: "_id", Value: 1}}}})
	if codeOf(err) != 66 {
		t.Fatalf("update of _id: err = %v, want 66", err)
	}
}

func TestFindOptions(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("find")
	var docs []any
	for i := 0; i < 250; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "mod", Value: i % 7}, {Key: "sub", Value: bson.D{{Key: "v", Value: 250 - i}}}})
	}
	_, err := coll.InsertMany(cx, docs)
	must(t, err)
	// Batches and getMore: all 250 come back through several batches.
	cur, err := coll.Find(cx, bson.D{}, options.Find().SetBatchSize(30))
	must(t, err)
	var all []bson.M
	must(t, cur.All(cx, &all))
	if len(all) != 250 {
		t.Fatalf("got %d docs, want 250", len(all))
	}
	// Sort on a nested field, skip, limit, projection.
	cur, err = coll.Find(cx, bson.D{{Key: "mod", Value: bson.D{{Key: "$in", Value: bson.A{1, 2}}}}},
		options.Find().SetSort(bson.D{{Key: "sub.v", Value: 1}}).SetSkip(2).SetLimit(3).SetProjection(bson.D{{Key: "sub.v", Value: 1}, {Key: "_id", Value: 0}}))
	must(t, err)
	var got []bson.D
	must(t, cur.All(cx, &got))
	if len(got) != 3 {
		t.Fatalf("got %v", got)
	}
	// mod 1 or 2 with smallest sub.v: i = 248 (v=2), 247 (v=3), 240 (v=10), 241, 233 ...
	wantV := []int32{10, 11, 17}
	for i, d := range got {
		if len(d) != 1 || d[0].Key != "sub" {
			t.Fatalf("projection kept %v", d)
		}
		if v := d[0].Value.(bson.D)[0].Value; v != wantV[i] {
			t.Fatalf("doc %d: sub.v = %v, want %d (%v)", i, v, wantV[i], got)
		}
	}
	// Exclusion projection.
	var one bson.M
	must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: 5}}, options.FindOne().SetProjection(bson.D{{Key: "sub", Value: 0}})).Decode(&one))
	if _, has := one["sub"]; has || one["mod"] != int32(5) {
		t.Fatalf("exclusion projection: %v", one)
	}
	// Mixing inclusion and exclusion is refused (31254).
	err = coll.FindOne(cx, bson.D{}, options.FindOne().SetProjection(bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 0}})).Err()
	if codeOf(err) != 31254 {
		t.Fatalf("mixed projection: err = %v", err)
	}
}

func TestQueryOperators(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("ops")
	_, err := coll.InsertMany(cx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: int32(5)}, {Key: "tags", Value: bson.A{"a", "b"}}, {Key: "o", Value: bson.D{{Key: "x", Value: 1}}}},
		bson.D{{Key: "_id", Value: 2}, {Key: "n", Value: 5.5}, {Key: "tags", Value: bson.A{"c"}}, {Key: "arr", Value: bson.A{bson.D{{Key: "k", Value: 1}}, bson.D{{Key: "k", Value: 2}}}}},
		bson.D{{Key: "_id", Value: 3}, {Key: "n", Value: int64(7)}, {Key: "s", Value: "abc"}},
		bson.D{{Key: "_id", Value: 4}, {Key: "n", Value: "5"}, {Key: "nul", Value: nil}},
		bson.D{{Key: "_id", Value: 5}},
	})
	must(t, err)
	cases := []struct {
		name   string
		filter bson.D
		want   []int32
	}{
		{"eq number across types", bson.D{{Key: "n", Value: 5.0}}, []int32{1}},
		{"gt brackets by type", bson.D{{Key: "n", Value: bson.D{{Key: "$gt", Value: 5}}}}, []int32{2, 3}},
		{"lte", bson.D{{Key: "n", Value: bson.D{{Key: "$lte", Value: int64(5)}}}}, []int32{1}},
		{"string compare", bson.D{{Key: "n", Value: bson.D{{Key: "$gte", Value: ""}}}}, []int32{4}},
		{"array element equality", bson.D{{Key: "tags", Value: "b"}}, []int32{1}},
		{"whole array equality", bson.D{{Key: "tags", Value: bson.A{"c"}}}, []int32{2}},
		{"in", bson.D{{Key: "tags", Value: bson.D{{Key: "$in", Value: bson.A{"a", "c"}}}}}, []int32{1, 2}},
		{"nin", bson.D{{Key: "tags", Value: bson.D{{Key: "$nin", Value: bson.A{"a", "c"}}}}}, []int32{3, 4, 5}},
		{"ne", bson.D{{Key: "n", Value: bson.D{{Key: "$ne", Value: 5}}}}, []int32{2, 3, 4, 5}},
		{"nested field", bson.D{{Key: "o.x", Value: 1}}, []int32{1}},
		{"embedded document equality", bson.D{{Key: "o", Value: bson.D{{Key: "x", Value: 1}}}}, []int32{1}},
		{"path through array", bson.D{{Key: "arr.k", Value: 2}}, []int32{2}},
		{"array index path", bson.D{{Key: "arr.1.k", Value: 2}}, []int32{2}},
		{"exists true", bson.D{{Key: "s", Value: bson.D{{Key: "$exists", Value: true}}}}, []int32{3}},
		{"exists false", bson.D{{Key: "n", Value: bson.D{{Key: "$exists", Value: false}}}}, []int32{5}},
		// {field: null} matches null and missing fields.
		{"null matches missing", bson.D{{Key: "nul", Value: nil}}, []int32{1, 2, 3, 4, 5}},
		{"type string", bson.D{{Key: "n", Value: bson.D{{Key: "$type", Value: "string"}}}}, []int32{4}},
		{"type number", bson.D{{Key: "n", Value: bson.D{{Key: "$type", Value: "number"}}}}, []int32{1, 2, 3}},
		{"type code", bson.D{{Key: "n", Value: bson.D{{Key: "$type", Value: 18}}}}, []int32{3}},
		{"several conditions on one field", bson.D{{Key: "n", Value: bson.D{{Key: "$gt", Value: 1}, {Key: "$lt", Value: 6}}}}, []int32{1, 2}},
		{"minKey compares across types", bson.D{{Key: "n", Value: bson.D{{Key: "$gt", Value: bson.MinKey{}}}}}, []int32{1, 2, 3, 4}},
		// $not matches what its operators do not, missing fields included.
		{"not", bson.D{{Key: "n", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gt", Value: 5}}}}}}, []int32{1, 4, 5}},
		{"or", bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "s", Value: "abc"}}, bson.D{{Key: "tags", Value: "c"}}}}}, []int32{2, 3}},
		{"nor", bson.D{{Key: "$nor", Value: bson.A{bson.D{{Key: "n", Value: bson.D{{Key: "$exists", Value: true}}}}, bson.D{{Key: "_id", Value: 1}}}}}, []int32{5}},
		{"and with a field", bson.D{{Key: "$and", Value: bson.A{bson.D{{Key: "n", Value: bson.D{{Key: "$type", Value: "number"}}}}}}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: 1}}}}, []int32{2, 3}},
	}
	for _, tc := range cases {
		cur, err := coll.Find(cx, tc.filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		must(t, err)
		var got []struct {
			ID int32 `bson:"_id"`
		}
		must(t, cur.All(cx, &got))
		ids := make([]int32, len(got))
		for i, g := range got {
			ids[i] = g.ID
		}
		if !equalInts(ids, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, ids, tc.want)
		}
	}
	// Unknown operators are errors, never silent mismatches; real ones not
	// implemented here are refused naming them (115).
	if err := coll.FindOne(cx, bson.D{{Key: "n", Value: bson.D{{Key: "$bogus", Value: 1}}}}).Err(); codeOf(err) != 2 {
		t.Fatalf("unknown operator: err = %v, want BadValue", err)
	}
	if err := coll.FindOne(cx, bson.D{{Key: "$or", Value: bson.A{}}}).Err(); codeOf(err) != 2 {
		t.Fatalf("$or of nothing: err = %v, want BadValue", err)
	}
	for _, f := range []bson.D{
		{{Key: "s", Value: bson.Regex{Pattern: "^A", Options: "i"}}},
		{{Key: "tags", Value: bson.D{{Key: "$size", Value: 2}}}},
		{{Key: "$expr", Value: bson.D{{Key: "$eq", Value: bson.A{"$n", 5}}}}},
	} {
		if err := coll.FindOne(cx, f).Err(); codeOf(err) != 115 || !strings.Contains(err.Error(), "$") && !strings.Contains(err.Error(), "regular") {
			t.Errorf("%v: err = %v, want 115 naming the operator", f, err)
		}
	}
}

func equalInts(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSortFollowsBSONTypeOrder checks the documented comparison order
// (https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/):
// MinKey < Null < Numbers < String < Object < Array < BinData < ObjectId <
// Boolean < Date < Timestamp < Regex < MaxKey. (Arrays sort by their
// elements, so they are left out.)
func TestSortFollowsBSONTypeOrder(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("order")
	ordered := []any{
		bson.MinKey{}, nil, math.Inf(-1), int32(-3), int64(2), 2.5, "", "a", "b",
		bson.D{{Key: "a", Value: 1}}, bson.Binary{Data: []byte{1}}, bson.NewObjectID(), false, true,
		bson.NewDateTimeFromTime(time.UnixMilli(1)), bson.Timestamp{T: 1, I: 1}, bson.Regex{Pattern: "x"}, bson.MaxKey{},
	}
	var docs []any
	for i := len(ordered) - 1; i >= 0; i-- {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: ordered[i]}})
	}
	_, err := coll.InsertMany(cx, docs)
	must(t, err)
	cur, err := coll.Find(cx, bson.D{}, options.Find().SetSort(bson.D{{Key: "v", Value: 1}}))
	must(t, err)
	var got []struct {
		ID int32 `bson:"_id"`
	}
	must(t, cur.All(cx, &got))
	for i, g := range got {
		if int(g.ID) != i {
			t.Fatalf("position %d holds value #%d (%v); want #%d (%v)", i, g.ID, ordered[g.ID], i, ordered[i])
		}
	}
}

func TestUpdates(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("upd")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: int32(1)}, {Key: "gone", Value: true}, {Key: "s", Value: bson.D{{Key: "status", Value: "old"}}}})
	must(t, err)
	res, err := coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{
		{Key: "$set", Value: bson.D{{Key: "s.status", Value: "running"}, {Key: "s.pid", Value: 42}, {Key: "new.deep.field", Value: "x"}}},
		{Key: "$unset", Value: bson.D{{Key: "gone", Value: ""}}},
		{Key: "$inc", Value: bson.D{{Key: "n", Value: 2}, {Key: "counter", Value: int64(5)}}},
		{Key: "$setOnInsert", Value: bson.D{{Key: "created", Value: true}}},
	})
	must(t, err)
	if res.MatchedCount != 1 || res.ModifiedCount != 1 {
		t.Fatalf("update result %+v", res)
	}
	raw, err := coll.FindOne(cx, bson.D{{Key: "_id", Value: 1}}).Raw()
	must(t, err)
	want := map[string]any{
		"s.status": "running", "s.pid": int32(42), "n": int32(3), "counter": int64(5), "new.deep.field": "x",
	}
	for path, w := range want {
		v, err := raw.LookupErr(strings.Split(path, ".")...)
		if err != nil {
			t.Fatalf("after update: no %s in %v", path, raw)
		}
		var g any
		must(t, v.Unmarshal(&g))
		if g != w {
			t.Fatalf("after update: %s = %v, want %v (%v)", path, g, w, raw)
		}
	}
	for _, absent := range []string{"gone", "created"} {
		if _, err := raw.LookupErr(absent); err == nil {
			t.Fatalf("after update: %s should be absent ($unset / $setOnInsert on update): %v", absent, raw)
		}
	}
	var got bson.M
	// Upsert: query equality fields + update + $setOnInsert.
	res, err = coll.UpdateOne(cx, bson.D{{Key: "name", Value: "c1"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}, {Key: "$setOnInsert", Value: bson.D{{Key: "created", Value: true}}}}, options.UpdateOne().SetUpsert(true))
	must(t, err)
	if res.UpsertedCount != 1 || res.UpsertedID == nil {
		t.Fatalf("upsert result %+v", res)
	}
	must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: res.UpsertedID}}).Decode(&got))
	if got["name"] != "c1" || got["x"] != int32(1) || got["created"] != true {
		t.Fatalf("upserted doc %v", got)
	}
	// Multi update.
	_, err = coll.InsertMany(cx, []any{bson.D{{Key: "g", Value: 1}}, bson.D{{Key: "g", Value: 1}}})
	must(t, err)
	res, err = coll.UpdateMany(cx, bson.D{{Key: "g", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "seen", Value: true}}}})
	must(t, err)
	if res.MatchedCount != 2 || res.ModifiedCount != 2 {
		t.Fatalf("multi update %+v", res)
	}
	// Replacement keeps _id; changing _id is refused (66 ImmutableField).
	_, err = coll.ReplaceOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "only", Value: 1}})
	must(t, err)
	got = nil
	must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: 1}}).Decode(&got))
	if len(got) != 2 || got["only"] != int32(1) {
		t.Fatalf("replacement: %v", got)
	}
	_, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "_id", Value: 2}}}})
	if codeOf(err) != 66 {
		t.Fatalf("changing _id: err = %v, want 66", err)
	}
	// Unknown update operators fail (9 FailedToParse).
	_, err = coll.UpdateOne(cx, bson.D{}, bson.D{{Key: "$frobnicate", Value: bson.D{{Key: "a", Value: 1}}}})
	if codeOf(err) != 9 {
		t.Fatalf("unknown modifier: err = %v", err)
	}
	// A no-op update matches but modifies nothing.
	res, err = coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "only", Value: 1}}}})
	must(t, err)
	if res.MatchedCount != 1 || res.ModifiedCount != 0 {
		t.Fatalf("no-op update %+v", res)
	}
}

func TestDeleteAndFindAndModify(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("del")
	for i := 0; i < 5; i++ {
		_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: i}, {Key: "even", Value: i%2 == 0}})
		must(t, err)
	}
	dr, err := coll.DeleteOne(cx, bson.D{{Key: "even", Value: true}})
	must(t, err)
	if dr.DeletedCount != 1 {
		t.Fatalf("deleteOne %+v", dr)
	}
	dr, err = coll.DeleteMany(cx, bson.D{{Key: "even", Value: true}})
	must(t, err)
	if dr.DeletedCount != 2 {
		t.Fatalf("deleteMany %+v", dr)
	}
	var got bson.M
	must(t, coll.FindOneAndUpdate(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&got))
	if got["v"] != int32(1) {
		t.Fatalf("findAndModify new: %v", got)
	}
	must(t, coll.FindOneAndUpdate(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}}).Decode(&got))
	if got["v"] != int32(1) {
		t.Fatalf("findAndModify old: %v", got)
	}
	must(t, coll.FindOneAndDelete(cx, bson.D{{Key: "_id", Value: 3}}).Decode(&got))
	if got["_id"] != int32(3) {
		t.Fatalf("findAndDelete: %v", got)
	}
	if err := coll.FindOneAndDelete(cx, bson.D{{Key: "_id", Value: 3}}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
		t.Fatalf("second findAndDelete: %v", err)
	}
	must(t, coll.FindOneAndReplace(cx, bson.D{{Key: "_id", Value: 9}}, bson.D{{Key: "r", Value: 1}},
		options.FindOneAndReplace().SetUpsert(true).SetReturnDocument(options.After)).Decode(&got))
	if got["_id"] != int32(9) || got["r"] != int32(1) {
		t.Fatalf("findAndReplace upsert: %v", got)
	}
	n, err := coll.CountDocuments(cx, bson.D{})
	must(t, err)
	if n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}
}

// A filter {_id: <value>} finds its document through the _id index (mongod's IDHACK):
// values equal as MongoDB compares them, and, for a document a transaction holds, the
// version each reader sees.
func TestFindByID(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("ids")
	_, err := coll.InsertMany(cx, []any{bson.D{{Key: "_id", Value: int64(1)}, {Key: "v", Value: "one"}}, bson.D{{Key: "_id", Value: "s"}}})
	must(t, err)
	var got bson.M
	must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: 1.0}}).Decode(&got))
	if got["v"] != "one" {
		t.Fatalf("find {_id: 1.0}: %v, want the document of _id NumberLong(1)", got)
	}
	res, err := coll.UpdateOne(cx, bson.D{{Key: "_id", Value: int32(1)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "uno"}}}})
	must(t, err)
	if res.ModifiedCount != 1 {
		t.Fatalf("update {_id: 1}: %+v", res)
	}
	if n, err := coll.CountDocuments(cx, bson.D{{Key: "_id", Value: "missing"}}); err != nil || n != 0 {
		t.Fatalf("count of a missing _id: %d, %v", n, err)
	}
	// A transaction deletes the document and inserts it again: until it commits,
	// others read the committed version, the transaction its own.
	sess, err := db.Client().StartSession()
	must(t, err)
	defer sess.EndSession(cx)
	must(t, sess.StartTransaction())
	tx := mongo.NewSessionContext(cx, sess)
	_, err = coll.DeleteOne(tx, bson.D{{Key: "_id", Value: int64(1)}})
	must(t, err)
	_, err = coll.InsertOne(tx, bson.D{{Key: "_id", Value: int64(1)}, {Key: "v", Value: "new"}})
	must(t, err)
	must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: 1}}).Decode(&got))
	if got["v"] != "uno" {
		t.Fatalf("outside the transaction: %v, want the committed version", got)
	}
	must(t, coll.FindOne(tx, bson.D{{Key: "_id", Value: 1}}).Decode(&got))
	if got["v"] != "new" {
		t.Fatalf("inside the transaction: %v, want its own version", got)
	}
	must(t, sess.AbortTransaction(cx))
}
