package mongotest_test

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// TestAggregation runs the pipelines the exporter runs on
// migration-verifier's metadata, and checks the refusals of what is not
// implemented (https://www.mongodb.com/docs/manual/reference/operator/aggregation/group/).
func TestAggregation(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("verification_tasks")
	var docs []any
	for i := 0; i < 10; i++ {
		docs = append(docs, bson.D{
			{Key: "_id", Value: i}, {Key: "generation", Value: int32(i % 2)}, {Key: "status", Value: []string{"added", "completed", "failed"}[i%3]},
			{Key: "documents_count", Value: int64(i)}, {Key: "query_filter", Value: bson.D{{Key: "namespace", Value: []string{"db.a", "db.b"}[i%2]}}},
		})
	}
	_, err := coll.InsertMany(cx, docs)
	must(t, err)
	cur, err := coll.Aggregate(cx, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "generation", Value: 0}, {Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{"completed", "failed"}}}}}}},
		{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: bson.D{{Key: "ns", Value: "$query_filter.namespace"}, {Key: "status", Value: "$status"}}},
			{Key: "docs", Value: bson.D{{Key: "$sum", Value: "$documents_count"}}},
			{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
			{Key: "count", Value: bson.D{{Key: "$count", Value: bson.D{}}}},
			{Key: "avg", Value: bson.D{{Key: "$avg", Value: "$documents_count"}}},
		}}},
		{{Key: "$sort", Value: bson.D{{Key: "_id.status", Value: 1}}}},
		{{Key: "$project", Value: bson.D{{Key: "docs", Value: 1}, {Key: "n", Value: 1}, {Key: "count", Value: 1}, {Key: "avg", Value: 1}}}},
	})
	must(t, err)
	var got []bson.M
	must(t, cur.All(cx, &got))
	// generation 0 completed: 4; failed: 2, 8.
	completed, failed := got[0], got[1]
	if len(got) != 2 || completed["docs"] != int64(4) || completed["n"] != int32(1) || completed["count"] != int32(1) ||
		failed["docs"] != int64(10) || failed["n"] != int32(2) || failed["avg"] != 5.0 {
		t.Fatalf("group: %v", got)
	}
	// countDocuments is an aggregate with $match and $group.
	n, err := coll.CountDocuments(cx, bson.D{{Key: "status", Value: "added"}})
	must(t, err)
	if n != 4 {
		t.Fatalf("countDocuments = %d", n)
	}
	// Unknown stages: 40324. Real stages, accumulators, expressions and
	// Decimal128 sums not implemented here: 115, naming them.
	if _, err := coll.Aggregate(cx, mongo.Pipeline{{{Key: "$nonsense", Value: 1}}}); codeOf(err) != 40324 {
		t.Fatalf("unknown stage: err = %v", err)
	}
	for name, p := range map[string]mongo.Pipeline{
		"$lookup":    {{{Key: "$lookup", Value: bson.D{}}}},
		"$facet":     {{{Key: "$facet", Value: bson.D{}}}},
		"$stdDevPop": {{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "m", Value: bson.D{{Key: "$stdDevPop", Value: "$x"}}}}}}},
		"$toUpper":   {{{Key: "$group", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$toUpper", Value: "$x"}}}}}}},
	} {
		if _, err := coll.Aggregate(cx, p); codeOf(err) != 115 || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want 115 naming it", name, err)
		}
	}
	_, err = coll.InsertOne(cx, bson.D{{Key: "documents_count", Value: bson.NewDecimal128(0, 1)}})
	must(t, err)
	for _, op := range []string{"$sum", "$avg"} {
		cur, err := coll.Aggregate(cx, mongo.Pipeline{{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "s", Value: bson.D{{Key: op, Value: "$documents_count"}}}}}}})
		if err == nil {
			cur.Next(cx)
			err = cur.Err()
		}
		if codeOf(err) != 115 || !strings.Contains(err.Error(), "Decimal128") {
			t.Errorf("%s over a Decimal128: err = %v, want 115: a float sum would be wrong", op, err)
		}
	}
}

// $limit keeps the first n documents of the stage before it, and refuses n <= 0.
func TestAggregationLimit(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("limited")
	for i := range 5 {
		_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: i}})
		must(t, err)
	}
	cur, err := coll.Aggregate(cx, mongo.Pipeline{
		{{Key: "$sort", Value: bson.D{{Key: "_id", Value: -1}}}},
		{{Key: "$limit", Value: 2}},
	})
	must(t, err)
	var got []struct {
		ID int32 `bson:"_id"`
	}
	must(t, cur.All(cx, &got))
	if len(got) != 2 || got[0].ID != 4 || got[1].ID != 3 {
		t.Fatalf("$limit 2 after $sort: %v", got)
	}
	if _, err := coll.Aggregate(cx, mongo.Pipeline{{{Key: "$limit", Value: 0}}}); codeOf(err) != 15958 {
		t.Fatalf("$limit 0: %v", err)
	}
}

// TestAggregationExpressions: the $group accumulators, computed fields of
// $project and $addFields, $unset and $replaceWith, and the expression
// operators (https://www.mongodb.com/docs/manual/reference/operator/aggregation/),
// each with the result mongod gives.
func TestAggregationExpressions(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("expr")
	_, err := coll.InsertMany(cx, []any{
		d("_id", 1, "g", "a", "n", 3, "tags", a("x", "y"), "sub", d("k", 1)),
		d("_id", 2, "g", "a", "n", 7, "tags", a("y"), "sub", d("k", 2)),
		d("_id", 3, "g", "b", "n", 5, "tags", a(), "opt", nil),
	})
	must(t, err)
	run := func(p mongo.Pipeline) []bson.Raw {
		t.Helper()
		cur, err := coll.Aggregate(cx, p)
		must(t, err)
		var out []bson.Raw
		must(t, cur.All(cx, &out))
		return out
	}
	expect := func(name string, got []bson.Raw, want ...bson.D) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", name, got, want)
			return
		}
		for i := range want {
			if !rawDoc(t, want[i]).Equal(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: got[i]}) {
				t.Errorf("%s: document %d %v, want %v", name, i, got[i], want[i])
			}
		}
	}
	expect("accumulators", run(mongo.Pipeline{d("$group", d("_id", "$g",
		"max", d("$max", "$n"), "min", d("$min", "$n"), "first", d("$first", "$_id"), "last", d("$last", "$_id"),
		"ids", d("$push", "$_id"), "groups", d("$addToSet", "$g")))}),
		d("_id", "a", "max", 7, "min", 3, "first", 1, "last", 2, "ids", a(1, 2), "groups", a("a")),
		d("_id", "b", "max", 5, "min", 5, "first", 3, "last", 3, "ids", a(3), "groups", a("b")))
	expect("computed $project", run(mongo.Pipeline{d("$match", d("_id", 1)), d("$project", d(
		"sum", d("$add", a("$n", 10)), "sub.k", 1, "sub.double", d("$multiply", a("$sub.k", 2)), "label", "fixed",
		"first", d("$arrayElemAt", a("$tags", 0)), "two", d("$slice", a("$tags", -1)), "all", d("$concatArrays", a("$tags", a("z"))),
		"size", d("$size", "$tags"), "big", d("$cond", a(d("$gt", a("$n", 2)), "yes", "no")), "def", d("$ifNull", a("$opt", "none")),
		"up", d("$map", d("input", "$tags", "as", "t", "in", d("$concat", a("$$t", "!")))),
		"ys", d("$filter", d("input", "$tags", "cond", d("$eq", a("$$this", "y")))),
		"lit", d("$literal", "$n"), "got", d("$getField", "n"), "let", d("$let", d("vars", d("v", 2), "in", d("$mod", a("$n", "$$v")))),
		"sw", d("$switch", d("branches", a(d("case", d("$lt", a("$n", 0)), "then", "neg")), "default", "pos")),
		"merged", d("$mergeObjects", a("$sub", d("extra", true))), "type", d("$type", "$tags"), "in", d("$in", a("x", "$tags")),
	))}),
		d("_id", 1, "sub", d("k", 1, "double", 2), "sum", 13, "label", "fixed", "first", "x", "two", a("y"), "all", a("x", "y", "z"),
			"size", 2, "big", "yes", "def", "none", "up", a("x!", "y!"), "ys", a("y"), "lit", "$n", "got", 3, "let", 1,
			"sw", "pos", "merged", d("k", 1, "extra", true), "type", "array", "in", true))
	expect("$addFields, $unset, $replaceWith", run(mongo.Pipeline{d("$match", d("_id", 2)),
		d("$addFields", d("sub.more", 1, "n", "$$REMOVE", "z", d("$subtract", a(10, "$sub.k")))), d("$unset", a("tags", "g")),
		d("$replaceWith", d("$mergeObjects", a("$$ROOT", d("w", 1))))}),
		d("_id", 2, "sub", d("k", 2, "more", 1), "z", 8, "w", 1))
	if _, err := coll.Aggregate(cx, mongo.Pipeline{d("$project", d("x", d("$nope", 1)))}); codeOf(err) != 168 {
		t.Errorf("an unknown expression: err = %v, want 168", err)
	}
	if _, err := coll.Aggregate(cx, mongo.Pipeline{d("$project", d("a", 0, "x", "$n"))}); codeOf(err) != 31252 {
		t.Errorf("a computed field in an exclusion: err = %v, want 31252", err)
	}
}
