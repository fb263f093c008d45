package mongotest_test

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// Index kinds and options (https://www.mongodb.com/docs/manual/core/indexes/index-types/,
// https://www.mongodb.com/docs/manual/reference/command/createIndexes/):
// each is listed as mongod lists it, its createIndexes event carries the
// same specification (https://www.mongodb.com/docs/manual/reference/change-events/createIndexes/),
// and the rules mongod enforces at write time hold.

func TestIndexKindsListedAndInEvents(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("kinds")
	must(t, db.CreateCollection(cx, "kinds"))
	cs, err := coll.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	must(t, err)
	defer cs.Close(cx)
	cases := []struct {
		model mongo.IndexModel
		want  bson.D // as listIndexes shows it
	}{
		{mongo.IndexModel{Keys: d("title", "text")},
			d("v", 2, "key", d("_fts", "text", "_ftsx", 1), "name", "title_text", "weights", d("title", 1),
				"default_language", "english", "language_override", "language", "textIndexVersion", 3)},
		{mongo.IndexModel{Keys: d("h", "hashed")}, d("v", 2, "key", d("h", "hashed"), "name", "h_hashed")},
		{mongo.IndexModel{Keys: d("loc", "2dsphere")}, d("v", 2, "key", d("loc", "2dsphere"), "name", "loc_2dsphere", "2dsphereIndexVersion", 3)},
		{mongo.IndexModel{Keys: d("$**", 1), Options: options.Index().SetWildcardProjection(d("meta", 1))},
			d("v", 2, "key", d("$**", 1), "name", "$**_1", "wildcardProjection", d("meta", 1))},
		{mongo.IndexModel{Keys: d("p", 1), Options: options.Index().SetUnique(true).SetPartialFilterExpression(d("p", d("$gt", 5)))},
			d("v", 2, "key", d("p", 1), "name", "p_1", "unique", true, "partialFilterExpression", d("p", d("$gt", 5)))},
		{mongo.IndexModel{Keys: d("s", -1), Options: options.Index().SetUnique(true).SetSparse(true)},
			d("v", 2, "key", d("s", -1), "name", "s_-1", "sparse", true, "unique", true)}, // options in the order given
		{mongo.IndexModel{Keys: d("c", 1), Options: options.Index().SetCollation(&options.Collation{Locale: "fr", Strength: 2})},
			d("v", 2, "key", d("c", 1), "name", "c_1", "collation", d("locale", "fr", "caseLevel", false, "caseFirst", "off", "strength", 2,
				"numericOrdering", false, "alternate", "non-ignorable", "maxVariable", "punct", "normalization", false, "backwards", false, "version", "57.1"))},
		{mongo.IndexModel{Keys: d("at", 1), Options: options.Index().SetExpireAfterSeconds(3600)},
			d("v", 2, "key", d("at", 1), "name", "at_1", "expireAfterSeconds", 3600)},
		{mongo.IndexModel{Keys: d("hid", 1), Options: options.Index().SetHidden(true)}, d("v", 2, "key", d("hid", 1), "name", "hid_1", "hidden", true)},
	}
	for _, c := range cases {
		_, err := coll.Indexes().CreateOne(cx, c.model)
		must(t, err)
	}
	cur, err := coll.Indexes().List(cx)
	must(t, err)
	var listed []bson.Raw
	must(t, cur.All(cx, &listed))
	if len(listed) != len(cases)+1 {
		t.Fatalf("listIndexes: %v", listed)
	}
	for i, c := range cases {
		if got := (bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: listed[i+1]}); !got.Equal(rawDoc(t, c.want)) {
			t.Errorf("listed %v, want %v", listed[i+1], c.want)
		}
		ev := next(t, cs)
		if opType(ev) != "createIndexes" || !ev.Lookup("operationDescription").Equal(rawDoc(t, d("indexes", a(c.want)))) {
			t.Errorf("createIndexes event %v, want operationDescription {indexes: [%v]}", ev, c.want)
		}
	}
	// A second text index is the same key pattern with other options.
	if _, err := coll.Indexes().CreateOne(cx, mongo.IndexModel{Keys: d("body", "text")}); codeOf(err) != 85 {
		t.Errorf("a second text index: err = %v, want 85 IndexOptionsConflict", err)
	}
}

func TestIndexOptionErrors(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("bad")
	for _, c := range []struct {
		name  string
		model mongo.IndexModel
		code  int
	}{
		{"unique text", mongo.IndexModel{Keys: d("t", "text"), Options: options.Index().SetUnique(true)}, 67},
		{"unique wildcard", mongo.IndexModel{Keys: d("$**", 1), Options: options.Index().SetUnique(true)}, 67},
		{"unique hashed", mongo.IndexModel{Keys: d("h", "hashed"), Options: options.Index().SetUnique(true)}, 16764},
		{"$ne in a partial filter", mongo.IndexModel{Keys: d("p", 1), Options: options.Index().SetPartialFilterExpression(d("p", d("$ne", 1)))}, 67},
		{"sparse and partial", mongo.IndexModel{Keys: d("p", 1), Options: options.Index().SetSparse(true).SetPartialFilterExpression(d("p", 1))}, 67},
		{"two index types", mongo.IndexModel{Keys: d("a", "text", "b", "hashed")}, 67},
		{"an unknown type", mongo.IndexModel{Keys: d("a", "bogus")}, 67},
		{"unique with a collation that makes strings of other bytes equal (not implemented here)", mongo.IndexModel{Keys: d("c", 1), Options: options.Index().SetUnique(true).SetCollation(&options.Collation{Locale: "fr", Strength: 1})}, 115},
	} {
		if _, err := coll.Indexes().CreateOne(cx, c.model); codeOf(err) != c.code {
			t.Errorf("%s: err = %v, want %d", c.name, err, c.code)
		}
	}
}

// TestUniqueWithinPartialAndSparse: a partial unique index constrains the
// documents matching its filter, a sparse one those having the field
// (https://www.mongodb.com/docs/manual/core/index-partial/#partial-index-with-unique-constraint,
// https://www.mongodb.com/docs/manual/core/index-sparse/#sparse-compound-indexes).
func TestUniqueWithinPartialAndSparse(t *testing.T) {
	db, cx := setup(t)
	partial, sparse := db.Collection("partial"), db.Collection("sparse")
	_, err := partial.InsertMany(cx, []any{d("_id", 1, "email", "a", "active", false), d("_id", 2, "email", "a", "active", false)})
	must(t, err)
	_, err = partial.Indexes().CreateOne(cx, mongo.IndexModel{Keys: d("email", 1), Options: options.Index().SetUnique(true).SetPartialFilterExpression(d("active", true))})
	must(t, err) // the duplicates are outside the filter
	_, err = partial.InsertOne(cx, d("_id", 3, "email", "a", "active", true))
	must(t, err)
	if _, err := partial.InsertOne(cx, d("_id", 4, "email", "a", "active", true)); codeOf(err) != 11000 {
		t.Fatalf("a duplicate inside the filter: err = %v, want 11000", err)
	}
	if _, err := partial.UpdateOne(cx, d("_id", 1), op("$set", "active", true)); codeOf(err) != 11000 {
		t.Fatalf("an update moving a duplicate into the filter: err = %v, want 11000", err)
	}

	_, err = sparse.Indexes().CreateOne(cx, mongo.IndexModel{Keys: d("sku", 1), Options: options.Index().SetUnique(true).SetSparse(true)})
	must(t, err)
	_, err = sparse.InsertMany(cx, []any{d("_id", 1), d("_id", 2), d("_id", 3, "sku", nil)})
	must(t, err) // documents without the field are not in the index; null is a value
	if _, err := sparse.InsertOne(cx, d("_id", 4, "sku", nil)); codeOf(err) != 11000 {
		t.Fatalf("a second null in a sparse unique index: err = %v, want 11000", err)
	}
}

func TestHashedAndGeoWriteRules(t *testing.T) {
	db, cx := setup(t)
	hashed, geo := db.Collection("hashed"), db.Collection("geo")
	_, err := hashed.Indexes().CreateOne(cx, mongo.IndexModel{Keys: d("h", "hashed")})
	must(t, err)
	_, err = hashed.InsertOne(cx, d("_id", 1, "h", d("x", 1)))
	must(t, err)
	if _, err := hashed.InsertOne(cx, d("_id", 2, "h", a(1, 2))); codeOf(err) != 16766 {
		t.Fatalf("an array under a hashed key: err = %v, want 16766", err)
	}
	_, err = hashed.InsertOne(cx, d("_id", 3, "k", a(1)))
	must(t, err)
	if _, err := hashed.Indexes().CreateOne(cx, mongo.IndexModel{Keys: d("k", "hashed")}); codeOf(err) != 16766 {
		t.Fatalf("building a hashed index over an array: err = %v, want 16766", err)
	}

	_, err = geo.Indexes().CreateOne(cx, mongo.IndexModel{Keys: d("loc", "2dsphere")})
	must(t, err)
	for i, ok := range []bson.D{
		d("loc", d("type", "Point", "coordinates", a(2.35, 48.85))),
		d("loc", a(2.35, 48.85)), // a legacy coordinate pair
		d("loc", d("type", "Polygon", "coordinates", a(a(a(0, 0), a(1, 0), a(1, 1), a(0, 0))))),
		d("other", 1), // not in the index
	} {
		_, err := geo.InsertOne(cx, append(d("_id", i), ok...))
		must(t, err)
	}
	for _, bad := range []bson.D{
		d("loc", "Paris"),
		d("loc", d("type", "Point", "coordinates", a(200, 0))),
		d("loc", d("type", "Polygon", "coordinates", a(a(a(0, 0), a(1, 0), a(1, 1))))),
	} {
		if _, err := geo.InsertOne(cx, bad); codeOf(err) != 16755 {
			t.Errorf("%v under a 2dsphere key: err = %v, want 16755", bad, err)
		}
	}
}

// TestTTLPartialIndex: a TTL index with a partial filter expires only the
// documents matching it (https://www.mongodb.com/docs/manual/core/index-ttl/).
func TestTTLPartialIndex(t *testing.T) {
	c, cx := fake(t, "a 50 ms TTL monitor", mongotest.Options{TTLInterval: 50 * time.Millisecond})
	coll := c.Database("ttl").Collection("partial")
	_, err := coll.Indexes().CreateOne(cx, mongo.IndexModel{Keys: d("at", 1),
		Options: options.Index().SetExpireAfterSeconds(1).SetPartialFilterExpression(d("kind", "temp"))})
	must(t, err)
	old := time.Now().Add(-time.Hour)
	_, err = coll.InsertMany(cx, []any{d("_id", 1, "at", old, "kind", "temp"), d("_id", 2, "at", old, "kind", "keep")})
	must(t, err)
	for {
		n, err := coll.CountDocuments(cx, d())
		must(t, err)
		if n == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, _ := coll.CountDocuments(cx, d("_id", 2)); n != 1 {
		t.Fatal("the document outside the partial filter expired")
	}
}

// A text index made again from its listed specification (what mongorestore and a
// replay send) is listed as the original.
func TestTextIndexFromItsListedKey(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("again")
	listed := d("_fts", "text", "_ftsx", 1)
	_, err := coll.Indexes().CreateOne(cx, mongo.IndexModel{Keys: listed,
		Options: options.Index().SetName("title_text").SetWeights(d("title", 1))})
	must(t, err)
	cur, err := coll.Indexes().List(cx)
	must(t, err)
	var specs []bson.Raw
	must(t, cur.All(cx, &specs))
	if len(specs) != 2 {
		t.Fatalf("listIndexes: %v", specs)
	}
	if got := specs[1].Lookup("key"); !got.Equal(rawDoc(t, listed)) {
		t.Errorf("key listed as %v, want %v", got, listed)
	}
	if got := specs[1].Lookup("weights"); !got.Equal(rawDoc(t, d("title", 1))) {
		t.Errorf("weights listed as %v, want {title: 1}", got)
	}
}
