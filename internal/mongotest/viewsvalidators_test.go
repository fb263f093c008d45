package mongotest_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Views (https://www.mongodb.com/docs/manual/core/views/) and document
// validation (https://www.mongodb.com/docs/manual/core/schema-validation/),
// with their create and modify events
// (https://www.mongodb.com/docs/manual/reference/change-events/create/,
// .../modify/): an event's operationDescription is its oplog entry's
// command without the command name, the collection options mongod records.

func TestViews(t *testing.T) {
	db, cx := setup(t)
	src := db.Collection("orders")
	_, err := src.InsertMany(cx, []any{
		d("_id", 1, "status", "A", "a", 1, "b", 2), d("_id", 2, "status", "B", "a", 5, "b", 5), d("_id", 3, "status", "A", "a", 10, "b", 1),
	})
	must(t, err)
	cs, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	must(t, err)
	defer cs.Close(cx)

	pipeline := a(d("$match", d("status", "A")), d("$project", d("total", d("$add", a("$a", "$b")))))
	must(t, db.RunCommand(cx, d("create", "totals", "viewOn", "orders", "pipeline", pipeline)).Err())
	ev := next(t, cs)
	if opType(ev) != "create" || ev.Lookup("ns", "coll").StringValue() != "totals" || ev.Lookup("collectionUUID").Type != 0 ||
		!ev.Lookup("operationDescription").Equal(rawDoc(t, d("viewOn", "orders", "pipeline", pipeline))) {
		t.Fatalf("a view's create event %v, want {viewOn, pipeline} and no collectionUUID", ev)
	}

	cur, err := db.ListCollections(cx, d())
	must(t, err)
	var infos []bson.Raw
	must(t, cur.All(cx, &infos))
	kinds := map[string]string{}
	for _, info := range infos {
		kinds[info.Lookup("name").StringValue()] = info.Lookup("type").StringValue()
		if info.Lookup("name").StringValue() == "totals" {
			if !info.Lookup("options").Equal(rawDoc(t, d("viewOn", "orders", "pipeline", pipeline))) || !info.Lookup("info").Equal(rawDoc(t, d("readOnly", true))) {
				t.Errorf("the view's listCollections entry %v", info)
			}
		}
	}
	if kinds["totals"] != "view" || kinds["orders"] != "collection" || kinds["system.views"] != "collection" {
		t.Fatalf("listCollections: %v", kinds)
	}
	var def bson.Raw
	must(t, db.Collection("system.views").FindOne(cx, d()).Decode(&def))
	if want := d("_id", db.Name()+".totals", "viewOn", "orders", "pipeline", pipeline); !rawDoc(t, want).Equal(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: def}) {
		t.Fatalf("system.views holds %v, want %v", def, want)
	}
	// A client may not write system.views: mongod refuses with InvalidNamespace.
	sv := db.Collection("system.views")
	for what, write := range map[string]func() error{
		"insert": func() error {
			_, err := sv.InsertOne(cx, d("_id", db.Name()+".v", "viewOn", "orders", "pipeline", bson.A{}))
			return err
		},
		"update":        func() error { _, err := sv.UpdateMany(cx, d(), d("$set", d("x", 1))); return err },
		"findAndModify": func() error { return sv.FindOneAndUpdate(cx, d(), d("$set", d("x", 1))).Err() },
		"delete":        func() error { _, err := sv.DeleteMany(cx, d()); return err },
	} {
		if err := write(); codeOf(err) != 73 {
			t.Errorf("%s in system.views: %v, want code 73 (InvalidNamespace)", what, err)
		}
	}

	view := db.Collection("totals")
	find, err := view.Find(cx, d("total", d("$gt", 5)), options.Find().SetSort(d("total", -1)))
	must(t, err)
	var found []bson.D
	must(t, find.All(cx, &found))
	if len(found) != 1 || !rawDoc(t, found[0]).Equal(rawDoc(t, d("_id", 3, "total", 11))) {
		t.Fatalf("find on the view: %v", found)
	}
	agg, err := view.Aggregate(cx, mongo.Pipeline{d("$group", d("_id", nil, "sum", d("$sum", "$total")))})
	must(t, err)
	var sums []bson.M
	must(t, agg.All(cx, &sums))
	if len(sums) != 1 || sums[0]["sum"] != int32(14) {
		t.Fatalf("aggregate on the view: %v", sums)
	}
	if n, err := view.EstimatedDocumentCount(cx); err != nil || n != 2 {
		t.Fatalf("count of the view: %d, %v", n, err)
	}
	// A view on a view.
	must(t, db.RunCommand(cx, d("create", "big", "viewOn", "totals", "pipeline", a(d("$match", d("total", d("$gte", 10)))))).Err())
	if n, err := db.Collection("big").CountDocuments(cx, d()); err != nil || n != 1 {
		t.Fatalf("a view on a view: %d, %v", n, err)
	}
	if ev := next(t, cs); opType(ev) != "create" || ev.Lookup("ns", "coll").StringValue() != "big" {
		t.Fatalf("event %v", ev)
	}

	// Writes are refused as mongod refuses them: 166 CommandNotSupportedOnView.
	for name, write := range map[string]func() error{
		"insert":        func() error { _, err := view.InsertOne(cx, d("x", 1)); return err },
		"update":        func() error { _, err := view.UpdateOne(cx, d(), op("$set", "x", 1)); return err },
		"delete":        func() error { _, err := view.DeleteOne(cx, d()); return err },
		"findAndModify": func() error { return view.FindOneAndDelete(cx, d()).Err() },
		"createIndexes": func() error { _, err := view.Indexes().CreateOne(cx, mongo.IndexModel{Keys: d("x", 1)}); return err },
		"watch":         func() error { _, err := view.Watch(cx, mongo.Pipeline{}); return err },
	} {
		if err := write(); codeOf(err) != 166 {
			t.Errorf("%s on a view: err = %v, want 166", name, err)
		}
	}
	if err := db.RunCommand(cx, d("create", "totals", "viewOn", "orders")).Err(); codeOf(err) != 48 {
		t.Errorf("a view over an existing name: err = %v, want 48", err)
	}
	if err := db.RunCommand(cx, d("collMod", "orders", "viewOn", "totals")).Err(); codeOf(err) != 72 {
		t.Errorf("viewOn on a collection: err = %v, want 72", err)
	}
	if err := db.RunCommand(cx, d("collMod", "totals", "viewOn", "big")).Err(); codeOf(err) != 5 {
		t.Errorf("a view cycle: err = %v, want 5 GraphContainsCycle", err)
	}

	// collMod changes the definition: a modify event with the change and the
	// options before it.
	newPipeline := a(d("$match", d("status", "B")))
	must(t, db.RunCommand(cx, d("collMod", "totals", "pipeline", newPipeline)).Err())
	ev = next(t, cs)
	if opType(ev) != "modify" || !ev.Lookup("operationDescription").Equal(rawDoc(t, d("pipeline", newPipeline))) ||
		!ev.Lookup("stateBeforeChange").Equal(rawDoc(t, d("collectionOptions", d("viewOn", "orders", "pipeline", pipeline)))) {
		t.Fatalf("a view's modify event %v", ev)
	}
	if n, _ := view.CountDocuments(cx, d()); n != 1 {
		t.Fatalf("the view after collMod counts %d", n)
	}
	must(t, view.Drop(cx))
	if ev := next(t, cs); opType(ev) != "drop" || ev.Lookup("ns", "coll").StringValue() != "totals" {
		t.Fatalf("a view's drop event %v", ev)
	}
	if names, _ := db.ListCollectionNames(cx, d("name", "totals")); len(names) != 0 {
		t.Fatalf("dropped view still listed: %v", names)
	}
	// A stage this server does not run is refused when the view is created.
	if err := db.RunCommand(cx, d("create", "unwound", "viewOn", "orders", "pipeline", a(d("$unwind", "$a")))).Err(); codeOf(err) != 115 {
		t.Errorf("a view with $unwind: err = %v, want 115", err)
	}
}

func TestValidators(t *testing.T) {
	db, cx := setup(t)
	cs, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	must(t, err)
	defer cs.Close(cx)
	validator := d("qty", d("$gte", 0))
	must(t, db.RunCommand(cx, d("create", "stock", "validator", validator)).Err())
	ev := next(t, cs)
	idIndex := d("v", 2, "key", d("_id", 1), "name", "_id_")
	if opType(ev) != "create" || !ev.Lookup("operationDescription").Equal(rawDoc(t, d("validator", validator, "idIndex", idIndex))) {
		t.Fatalf("create event %v, want the validator in operationDescription", ev)
	}
	coll := db.Collection("stock")
	_, err = coll.InsertOne(cx, d("_id", 1, "qty", 5))
	must(t, err)
	_, err = coll.InsertOne(cx, d("_id", 2, "qty", -1))
	var we mongo.WriteException
	if codeOf(err) != 121 || !asWriteException(err, &we) || !we.WriteErrors[0].Details.Lookup("failingDocumentId").Equal(rawValue(t, 2)) {
		t.Fatalf("an invalid insert: err = %v, want 121 naming the document", err)
	}
	if _, err := coll.UpdateOne(cx, d("_id", 1), op("$inc", "qty", -10)); codeOf(err) != 121 {
		t.Fatalf("an update making the document invalid: err = %v, want 121", err)
	}
	// bypassDocumentValidation lets it in.
	_, err = coll.InsertOne(cx, d("_id", 3, "qty", -3), options.InsertOne().SetBypassDocumentValidation(true))
	must(t, err)
	next(t, cs) // insert 1
	next(t, cs) // insert 3

	// moderate: updates of documents already invalid are not checked.
	must(t, db.RunCommand(cx, d("collMod", "stock", "validationLevel", "moderate")).Err())
	ev = next(t, cs)
	if opType(ev) != "modify" || !ev.Lookup("operationDescription").Equal(rawDoc(t, d("validationLevel", "moderate"))) ||
		!ev.Lookup("stateBeforeChange", "collectionOptions", "validator").Equal(rawDoc(t, validator)) {
		t.Fatalf("modify event %v", ev)
	}
	if _, err := coll.UpdateOne(cx, d("_id", 3), op("$inc", "qty", -1)); err != nil {
		t.Fatalf("moderate: an update of an invalid document: %v", err)
	}
	if _, err := coll.UpdateOne(cx, d("_id", 1), op("$set", "qty", -1)); codeOf(err) != 121 {
		t.Fatalf("moderate: an update making a valid document invalid: err = %v, want 121", err)
	}
	next(t, cs) // the update of 3
	// warn lets everything through.
	must(t, db.RunCommand(cx, d("collMod", "stock", "validationAction", "warn")).Err())
	next(t, cs)
	if _, err := coll.InsertOne(cx, d("_id", 4, "qty", -4)); err != nil {
		t.Fatalf("validationAction warn: %v", err)
	}
	next(t, cs)
	cur, err := db.ListCollections(cx, d("name", "stock"))
	must(t, err)
	var infos []bson.Raw
	must(t, cur.All(cx, &infos))
	if len(infos) != 1 || !infos[0].Lookup("options").Equal(rawDoc(t, d("validator", validator, "validationLevel", "moderate", "validationAction", "warn"))) {
		t.Fatalf("listCollections: %v", infos)
	}
	// collMod with a new validator, then with none: each a modify event.
	must(t, db.RunCommand(cx, d("collMod", "stock", "validator", d("qty", d("$type", "number")), "validationAction", "error")).Err())
	if ev := next(t, cs); !ev.Lookup("operationDescription").Equal(rawDoc(t, d("validator", d("qty", d("$type", "number")), "validationAction", "error"))) {
		t.Fatalf("modify event %v", ev)
	}
	if _, err := coll.InsertOne(cx, d("_id", 5, "qty", "many")); codeOf(err) != 121 {
		t.Fatalf("the new validator: err = %v, want 121", err)
	}
	must(t, db.RunCommand(cx, d("collMod", "stock", "validator", d())).Err())
	next(t, cs)
	if _, err := coll.InsertOne(cx, d("_id", 5, "qty", "many")); err != nil {
		t.Fatalf("no validator: %v", err)
	}
	next(t, cs)
	// A bare collMod writes its oplog entry: a modify event with nothing in
	// its operationDescription.
	must(t, db.RunCommand(cx, d("collMod", "stock")).Err())
	if ev := next(t, cs); opType(ev) != "modify" || !ev.Lookup("operationDescription").Equal(rawDoc(t, d())) {
		t.Fatalf("a bare collMod's event %v", ev)
	}
}

func asWriteException(err error, we *mongo.WriteException) bool {
	e, ok := err.(mongo.WriteException)
	if ok {
		*we = e
	}
	return ok && len(e.WriteErrors) > 0
}

// A $jsonSchema validator, and $jsonSchema in a query
// (https://www.mongodb.com/docs/manual/core/schema-validation/specify-json-schema/,
// https://www.mongodb.com/docs/manual/reference/operator/query/jsonSchema/):
// keywords about a kind of value hold for values of other kinds, and a
// property's schema for a missing field; keywords left out are refused.
func TestJSONSchema(t *testing.T) {
	db, cx := setup(t)
	schema := d("bsonType", "object", "required", a("name"), "additionalProperties", false, "properties", d(
		"_id", d(),
		"name", d("bsonType", "string", "minLength", 2, "maxLength", 5),
		"age", d("bsonType", a("int", "long"), "minimum", 0, "maximum", 150, "exclusiveMaximum", true),
		"kind", d("enum", a("a", "b", 1)),
		"tags", d("bsonType", "array", "items", d("type", "string"), "minItems", 1, "uniqueItems", true),
		"pos", d("items", a(d("type", "number"), d("type", "number")), "additionalItems", false),
		"ratio", d("type", "number", "multipleOf", 0.5),
		"meta", d("anyOf", a(d("type", "null"), d("bsonType", "object", "minProperties", 1))),
		"flag", d("not", d("type", "string")),
	))
	must(t, db.RunCommand(cx, d("create", "people", "validator", d("$jsonSchema", schema))).Err())
	people := db.Collection("people")
	for i, doc := range []bson.D{
		d("_id", 1, "name", "ann"),
		d("_id", 2, "name", "bo", "age", int64(30), "kind", 1.0, "tags", a("x", "y"), "pos", a(1, 2.5), "ratio", 1.5, "meta", nil, "flag", true),
		d("_id", 3, "name", "cy", "meta", d("k", 1)),
	} {
		if _, err := people.InsertOne(cx, doc); err != nil {
			t.Fatalf("valid document %d: %v", i, err)
		}
	}
	for _, c := range []struct {
		why string
		doc bson.D
	}{
		{"no name", d("_id", 10)},
		{"a name too short", d("_id", 10, "name", "a")},
		{"a name of 6 characters", d("_id", 10, "name", "abcdéf")},
		{"an age that is a double", d("_id", 10, "name", "al", "age", 3.0)},
		{"an age at the exclusive maximum", d("_id", 10, "name", "al", "age", 150)},
		{"a kind not in the enum", d("_id", 10, "name", "al", "kind", "c")},
		{"a tag that is a number", d("_id", 10, "name", "al", "tags", a("x", 1))},
		{"no tags", d("_id", 10, "name", "al", "tags", a())},
		{"a tag twice", d("_id", 10, "name", "al", "tags", a("x", "x"))},
		{"a third position", d("_id", 10, "name", "al", "pos", a(1, 2, 3))},
		{"a ratio not a multiple of 0.5", d("_id", 10, "name", "al", "ratio", 0.7)},
		{"an empty meta", d("_id", 10, "name", "al", "meta", d())},
		{"a string flag", d("_id", 10, "name", "al", "flag", "yes")},
		{"a field not in properties", d("_id", 10, "name", "al", "extra", 1)},
	} {
		if _, err := people.InsertOne(cx, c.doc); codeOf(err) != 121 {
			t.Errorf("%s: err = %v, want 121 DocumentValidationFailure", c.why, err)
		}
	}
	// In a query, with the other conditions of a filter.
	cur, err := people.Find(cx, d("$jsonSchema", d("required", a("meta")), "_id", d("$gt", 1)))
	must(t, err)
	var found []bson.M
	must(t, cur.All(cx, &found))
	if len(found) != 2 {
		t.Fatalf("find with $jsonSchema: %v, want 2 and 3", found)
	}
	for _, c := range []struct {
		why    string
		schema bson.D
		code   int
	}{
		{"pattern", d("properties", d("a", d("pattern", "^x"))), 115},
		{"an unknown keyword", d("bogus", 1), 9},
		{"type integer", d("type", "integer"), 9},
		{"type and bsonType", d("type", "string", "bsonType", "string"), 9},
		{"an unknown bsonType", d("bsonType", "bogus"), 2},
		{"exclusiveMinimum alone", d("exclusiveMinimum", true), 9},
	} {
		if err := db.RunCommand(cx, d("create", "bad", "validator", d("$jsonSchema", c.schema))).Err(); codeOf(err) != c.code {
			t.Errorf("%s: err = %v, want %d", c.why, err, c.code)
		}
	}
}
