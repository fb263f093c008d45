package mongotest_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// notSupported is what mongotest deliberately leaves out, each with a
// command that uses it: the command must fail with 115 CommandNotSupported
// naming it, never answer wrongly. README.md lists the same names.
var notSupported = []struct {
	name string
	run  func(cx context.Context, db *mongo.Database) error
}{
	{"distinct", cmd(bson.D{{Key: "distinct", Value: "c"}, {Key: "key", Value: "a"}})},
	{"count with query", cmd(bson.D{{Key: "count", Value: "c"}, {Key: "query", Value: bson.D{{Key: "a", Value: 1}}}})},
	{"hint", cmd(bson.D{{Key: "find", Value: "c"}, {Key: "hint", Value: "_id_"}})},
	{"$skip", aggregate(bson.D{{Key: "$skip", Value: 1}})},
	{"explain", cmd(bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: "c"}}}})},
	{"collation", cmd(bson.D{{Key: "find", Value: "c"}, {Key: "collation", Value: bson.D{{Key: "locale", Value: "fr"}}}})},
	{"let", cmd(bson.D{{Key: "find", Value: "c"}, {Key: "let", Value: bson.D{{Key: "x", Value: 1}}}})},
	{"tailable", cmd(bson.D{{Key: "find", Value: "c"}, {Key: "tailable", Value: true}})},
	{"regular expressions", find(bson.D{{Key: "a", Value: bson.Regex{Pattern: "x"}}})},
	{"$regex", find(bson.D{{Key: "a", Value: bson.D{{Key: "$regex", Value: "x"}}}})},
	{"$size", find(bson.D{{Key: "a", Value: bson.D{{Key: "$size", Value: 1}}}})},
	{"$all", find(bson.D{{Key: "a", Value: bson.D{{Key: "$all", Value: bson.A{1}}}}})},
	{"$elemMatch", find(bson.D{{Key: "a", Value: bson.D{{Key: "$elemMatch", Value: bson.D{{Key: "$gt", Value: 1}}}}}})},
	{"$mod", find(bson.D{{Key: "a", Value: bson.D{{Key: "$mod", Value: bson.A{2, 0}}}}})},
	{"$expr", find(bson.D{{Key: "$expr", Value: true}})},
	{"$where", find(bson.D{{Key: "$where", Value: "true"}})},
	{"$text", find(bson.D{{Key: "$text", Value: bson.D{{Key: "$search", Value: "x"}}}})},
	{"the $jsonSchema keyword pattern", find(bson.D{{Key: "$jsonSchema", Value: bson.D{{Key: "properties", Value: bson.D{{Key: "a", Value: bson.D{{Key: "pattern", Value: "^x"}}}}}}}})},
	{"$geoWithin", find(bson.D{{Key: "a", Value: bson.D{{Key: "$geoWithin", Value: bson.D{}}}}})},
	{"$facet", aggregate(bson.D{{Key: "$facet", Value: bson.D{}}})},
	{"$unwind", aggregate(bson.D{{Key: "$unwind", Value: "$a"}})},
	{"$lookup", aggregate(bson.D{{Key: "$lookup", Value: bson.D{}}})},
	{"$out", aggregate(bson.D{{Key: "$out", Value: "other"}})},
	{"$merge", aggregate(bson.D{{Key: "$merge", Value: "other"}})},
	{"$sample", aggregate(bson.D{{Key: "$sample", Value: bson.D{{Key: "size", Value: 1}}}})},
	{"$mergeObjects", aggregate(bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "f", Value: bson.D{{Key: "$mergeObjects", Value: "$a"}}}}}})},
	{"$toUpper", aggregate(bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$toUpper", Value: "$a"}}}}}})},
	{"$$CLUSTER_TIME", aggregate(bson.D{{Key: "$set", Value: bson.D{{Key: "t", Value: "$$CLUSTER_TIME"}}}})},
	{"Decimal128 arithmetic", aggregate(bson.D{{Key: "$set", Value: bson.D{{Key: "t", Value: bson.D{{Key: "$add", Value: bson.A{bson.NewDecimal128(0, 1), 1}}}}}}})},
	{"$slice", cmd(bson.D{{Key: "find", Value: "c"}, {Key: "projection", Value: bson.D{{Key: "a", Value: bson.D{{Key: "$slice", Value: 1}}}}}})},
	{"2d", index(bson.D{{Key: "a", Value: "2d"}}, nil)},
	{"unique 2dsphere indexes", index(bson.D{{Key: "g", Value: "2dsphere"}}, options.Index().SetUnique(true))},
	{"unique indexes with a collation under which strings of other bytes are equal", index(bson.D{{Key: "u", Value: 1}}, options.Index().SetUnique(true).SetCollation(&options.Collation{Locale: "fr", Strength: 2}))},
	{"a collation under which strings of other bytes are equal", cmd(bson.D{{Key: "create", Value: "ci"}, {Key: "collation", Value: bson.D{{Key: "locale", Value: "en"}, {Key: "strength", Value: 2}}}})},
	{"an index with the simple collation on a collection with a default collation", func(cx context.Context, db *mongo.Database) error {
		if err := db.RunCommand(cx, bson.D{{Key: "create", Value: "en"}, {Key: "collation", Value: bson.D{{Key: "locale", Value: "en"}}}}).Err(); err != nil {
			return err
		}
		_, err := db.Collection("en").Indexes().CreateOne(cx, mongo.IndexModel{Keys: bson.D{{Key: "s", Value: 1}}, Options: options.Index().SetCollation(&options.Collation{Locale: "simple"})})
		return err
	}},
	{"collMod option", cmd(bson.D{{Key: "collMod", Value: "c"}, {Key: "cappedSize", Value: 8192}})},
	{"collMod index option", cmd(bson.D{{Key: "collMod", Value: "c"}, {Key: "index", Value: bson.D{{Key: "name", Value: "_id_"}, {Key: "forceNonUnique", Value: true}}}})},
	{"validator operator", cmd(bson.D{{Key: "create", Value: "v"}, {Key: "validator", Value: bson.D{{Key: "$expr", Value: true}}}})},
	{"clusteredIndex", cmd(bson.D{{Key: "create", Value: "buckets"}, {Key: "clusteredIndex", Value: true}})},
	{"timeseries", cmd(bson.D{{Key: "create", Value: "ts"}, {Key: "timeseries", Value: bson.D{{Key: "timeField", Value: "t"}}}})},
	{"readConcern level snapshot outside transactions", cmd(bson.D{{Key: "find", Value: "c"}, {Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}}}})},
	{"across databases", func(cx context.Context, db *mongo.Database) error {
		return db.Client().Database("admin").RunCommand(cx, bson.D{{Key: "renameCollection", Value: db.Name() + ".c"}, {Key: "to", Value: "elsewhere.c"}}).Err()
	}},
	{"showSystemEvents", aggregate(bson.D{{Key: "$changeStream", Value: bson.D{{Key: "showSystemEvents", Value: true}}}})},
	{"collection UUIDs", cmd(bson.D{{Key: "find", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}})},
	{"failpoint", cmd(bson.D{{Key: "configureFailPoint", Value: "hangBeforeSomething"}, {Key: "mode", Value: "off"}})},
	{"local.oplog.rs", func(cx context.Context, db *mongo.Database) error {
		return db.Client().Database("local").Collection("oplog.rs").FindOne(cx, bson.D{{Key: "op", Value: "i"}}).Err()
	}},
}

func cmd(c bson.D) func(context.Context, *mongo.Database) error {
	return func(cx context.Context, db *mongo.Database) error {
		if c[0].Key == "configureFailPoint" {
			db = db.Client().Database("admin")
		}
		return db.RunCommand(cx, c).Err()
	}
}

func find(filter bson.D) func(context.Context, *mongo.Database) error {
	return cmd(bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: filter}})
}

func aggregate(stage bson.D) func(context.Context, *mongo.Database) error {
	return cmd(bson.D{{Key: "aggregate", Value: "c"}, {Key: "pipeline", Value: bson.A{stage}}, {Key: "cursor", Value: bson.D{}}})
}

func index(keys bson.D, opts *options.IndexOptionsBuilder) func(context.Context, *mongo.Database) error {
	return func(cx context.Context, db *mongo.Database) error {
		_, err := db.Collection("c").Indexes().CreateOne(cx, mongo.IndexModel{Keys: keys, Options: opts})
		return err
	}
}

func TestNotSupportedIsRefused(t *testing.T) {
	srv := mongotest.New(t, "the features mongotest refuses", mongotest.Options{})
	db := testDB(t, connect(t, srv.URI()))
	cx := ctx(t)
	_, err := db.Collection("c").InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: bson.A{1, 2}}})
	must(t, err)
	for _, f := range notSupported {
		err := f.run(cx, db)
		if codeOf(err) != 115 || !strings.Contains(err.Error(), f.name) {
			t.Errorf("%s: err = %v, want 115 CommandNotSupported naming it", f.name, err)
		}
	}
}

// TestReadmeListsWhatIsNotSupported keeps README.md's list and the refusals
// in step.
func TestReadmeListsWhatIsNotSupported(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	must(t, err)
	_, list, ok := strings.Cut(string(readme), "## Not supported")
	if !ok {
		t.Fatal(`README.md has no "## Not supported" section`)
	}
	list, _, _ = strings.Cut(list, "\n## ")
	list = strings.Join(strings.Fields(list), " ") // as it reads, whatever the line breaks
	for _, f := range notSupported {
		if !strings.Contains(list, f.name) {
			t.Errorf("README.md's Not supported section does not name %q", f.name)
		}
	}
}
