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
		"$lookup": {{{Key: "$lookup", Value: bson.D{}}}},
		"$facet":  {{{Key: "$facet", Value: bson.D{}}}},
		"$max":    {{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "m", Value: bson.D{{Key: "$max", Value: "$x"}}}}}}},
		"$cond":   {{{Key: "$group", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$cond", Value: bson.A{true, 1, 0}}}}}}}},
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
