package mongotest_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

func TestAggregation(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("verification_tasks")
	var docs []any
	for i := 0; i < 10; i++ {
		docs = append(docs, bson.D{
			{Key: "_id", Value: i}, {Key: "generation", Value: int32(i % 2)}, {Key: "status", Value: []string{"added", "completed", "failed"}[i%3]},
			{Key: "documents_count", Value: int64(i)}, {Key: "query_filter", Value: bson.D{{Key: "namespace", Value: []string{"db.a", "db.b"}[i%2]}}},
			{Key: "tags", Value: bson.A{"x", "y"}},
		})
	}
	_, err := coll.InsertMany(cx, docs)
	must(t, err)
	cur, err := coll.Aggregate(cx, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "generation", Value: 0}}}},
		{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: "$query_filter.namespace"},
			{Key: "docs", Value: bson.D{{Key: "$sum", Value: "$documents_count"}}},
			{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
			{Key: "done", Value: bson.D{{Key: "$sum", Value: bson.D{{Key: "$cond", Value: bson.A{bson.D{{Key: "$in", Value: bson.A{"$status", bson.A{"completed", "failed"}}}}, 1, 0}}}}}},
			{Key: "max", Value: bson.D{{Key: "$max", Value: "$documents_count"}}},
			{Key: "min", Value: bson.D{{Key: "$min", Value: "$documents_count"}}},
			{Key: "first", Value: bson.D{{Key: "$first", Value: "$_id"}}},
			{Key: "last", Value: bson.D{{Key: "$last", Value: "$_id"}}},
			{Key: "ids", Value: bson.D{{Key: "$push", Value: "$_id"}}},
		}}},
		{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}},
	})
	must(t, err)
	var got []bson.M
	must(t, cur.All(cx, &got))
	// generation 0: _id 0,2,4,6,8, all namespace db.a; statuses added,failed,completed,added,failed.
	if len(got) != 1 || got[0]["_id"] != "db.a" || got[0]["docs"] != int64(20) || got[0]["n"] != int32(5) ||
		got[0]["done"] != int32(3) || got[0]["max"] != int64(8) || got[0]["min"] != int64(0) ||
		got[0]["first"] != int32(0) || got[0]["last"] != int32(8) || len(got[0]["ids"].(bson.A)) != 5 {
		t.Fatalf("group: %v", got)
	}
	// countDocuments is an aggregate with $match and $group.
	n, err := coll.CountDocuments(cx, bson.D{{Key: "status", Value: "added"}})
	must(t, err)
	if n != 4 {
		t.Fatalf("countDocuments = %d", n)
	}
	cur, err = coll.Aggregate(cx, mongo.Pipeline{
		{{Key: "$facet", Value: bson.D{
			{Key: "count", Value: bson.A{bson.D{{Key: "$count", Value: "n"}}}},
			{Key: "top", Value: bson.A{bson.D{{Key: "$sort", Value: bson.D{{Key: "documents_count", Value: -1}}}}, bson.D{{Key: "$skip", Value: 1}}, bson.D{{Key: "$limit", Value: 2}},
				bson.D{{Key: "$project", Value: bson.D{{Key: "_id", Value: 0}, {Key: "c", Value: "$documents_count"}, {Key: "big", Value: bson.D{{Key: "$gte", Value: bson.A{"$documents_count", 8}}}}}}}}},
			{Key: "unwound", Value: bson.A{bson.D{{Key: "$unwind", Value: "$tags"}}, bson.D{{Key: "$count", Value: "n"}}}},
		}}},
		{{Key: "$addFields", Value: bson.D{{Key: "extra.flag", Value: true}}}},
	})
	must(t, err)
	var facet []struct {
		Count []struct{ N int32 }
		Top   []struct {
			C   int64
			Big bool
		}
		Unwound []struct{ N int32 }
		Extra   struct{ Flag bool }
	}
	must(t, cur.All(cx, &facet))
	f := facet[0]
	if f.Count[0].N != 10 || len(f.Top) != 2 || f.Top[0].C != 8 || !f.Top[0].Big || f.Top[1].C != 7 || f.Top[1].Big || f.Unwound[0].N != 20 || !f.Extra.Flag {
		t.Fatalf("facet: %+v", facet)
	}
	// Unknown and unsupported stages are refused.
	if _, err := coll.Aggregate(cx, mongo.Pipeline{{{Key: "$nonsense", Value: 1}}}); codeOf(err) != 40324 {
		t.Fatalf("unknown stage: err = %v", err)
	}
	if _, err := coll.Aggregate(cx, mongo.Pipeline{{{Key: "$lookup", Value: bson.D{}}}}); err == nil {
		t.Fatal("$lookup accepted")
	}
}
