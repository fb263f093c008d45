package pitr

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/mongotest/query"
	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// The change events mongod emits, in the shapes MongoDB documents them (the change events
// reference, https://www.mongodb.com/docs/manual/reference/change-events/, and mongod's
// own tests of them, mongodb/mongo jstests/change_streams/: expanded_update_description.js,
// ddl_create_event.js, ddl_create_drop_index_events.js, ddl_coll_mod_event.js,
// ddl_view_events.js, ddl_rename_cross_db.js), written into a store and replayed twice:
// both times the target must be what the source's server made of them.
//
// The store and the target are on MONGODB_URI's server when it is set (a real one), else
// on a test server of their own; a shape whose writes the test server does not run yet
// (it answers 115 CommandNotSupported) is skipped, naming what it needs.

// shapeEvent is one stored event: its fields as extended JSON, as the collector stores
// them. coll names the collection, whose UUID is derived from it.
type shapeEvent struct {
	op, ns, coll string
	key, doc     string // doc_key and full_document
	update       string // update_description
	description  string // operation_description
	to           string
}

func collUUID(name string) []byte {
	sum := sha256.Sum256([]byte(name))
	return sum[:16]
}

func extJSON(t testing.TB, s string) bson.Raw {
	t.Helper()
	var raw bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(s), false, &raw); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return raw
}

// storeShapeEvents writes events into the store of source, one cluster time each, with
// a position past the last; it returns the last one's time.
func storeShapeEvents(t *testing.T, store *mongo.Database, source string, events []shapeEvent) bson.Timestamp {
	t.Helper()
	var ts bson.Timestamp
	for i, e := range events {
		ts = bson.Timestamp{T: 1_800_000_000, I: uint32(i + 1)}
		doc := storeDocument(source, ts, time.Now(), e.op, e.ns)
		for _, f := range []struct{ key, value string }{
			{oplogstore.FieldDocumentKey, e.key}, {oplogstore.FieldFullDocument, e.doc},
			{oplogstore.FieldUpdateDescription, e.update}, {oplogstore.FieldOperationDescription, e.description}, {oplogstore.FieldTo, e.to},
		} {
			if f.value != "" {
				doc = append(doc, bson.E{Key: f.key, Value: extJSON(t, f.value)})
			}
		}
		if e.coll != "" {
			doc = append(doc, bson.E{Key: oplogstore.FieldCollectionUUID, Value: bson.Binary{Subtype: bson.TypeBinaryUUID, Data: collUUID(e.coll)}})
		}
		_, err := store.Collection(oplogstore.EventsCollection(source)).InsertOne(t.Context(), doc)
		must(t, err)
	}
	_, err := store.Collection(oplogstore.TokensCollection(source)).InsertOne(t.Context(), bson.D{
		{Key: oplogstore.FieldID, Value: oplogstore.TokenID(source)},
		{Key: oplogstore.TokenFieldToken, Value: bson.D{{Key: "_data", Value: fmt.Sprintf("82%08X%08XFF", ts.T, ts.I)}}},
		{Key: oplogstore.TokenFieldClusterTime, Value: ts},
	})
	must(t, err)
	return ts
}

// shapeCase is a sequence of events and what the target must hold after them: the
// documents of coll (in _id order), and, per index name, fields its specification
// must have (null: the index must not exist), and fields of the collection's options.
type shapeCase struct {
	name    string
	events  []shapeEvent
	ns      string
	docs    []string
	indexes map[string]string
	options string
	// skipped: the reason every event but the first is left out, if any
	skipped string
}

// replayShapes runs each case on a store and a target of its own: replayed, then
// replayed again over the result.
func replayShapes(t *testing.T, cases []shapeCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The store and the target on one server: a fresh test server, or MONGODB_URI's.
			target := testsupport.Connect(t, mongotest.URI(t))
			for _, db := range []string{"s", "s2", ReplayDatabase, oplogstore.DefaultDatabase} {
				must(t, target.Database(db).Drop(t.Context()))
			}
			store := target.Database(oplogstore.DefaultDatabase)
			to := storeShapeEvents(t, store, "shapes", c.events)
			for run := 1; run <= 2; run++ {
				s, err := Replay(t.Context(), store, target, Options{Source: "shapes", To: to})
				if mongoerr.HasCode(err, query.CodeCommandNotSupported) {
					t.Skipf("replay %d needs what the test server does not run yet (%v); runs against MongoDB with MONGODB_URI set", run, err)
				}
				if err != nil {
					t.Fatalf("replay %d: %v", run, err)
				}
				if c.skipped != "" && s.Skipped[c.skipped] == 0 {
					t.Errorf("replay %d skipped %v, want %q", run, s.Skipped, c.skipped)
				}
				checkShape(t, target, &c, run)
			}
		})
	}
}

func checkShape(t *testing.T, target *mongo.Client, c *shapeCase, run int) {
	t.Helper()
	db, coll, _ := strings.Cut(c.ns, ".")
	handle := target.Database(db).Collection(coll)
	if c.docs != nil {
		cursor, err := handle.Find(t.Context(), bson.D{}, nil)
		must(t, err)
		var got []bson.Raw
		must(t, cursor.All(t.Context(), &got))
		if len(got) != len(c.docs) {
			t.Fatalf("replay %d: %s holds %d documents %v, want %d %v", run, c.ns, len(got), got, len(c.docs), c.docs)
		}
		for i, want := range c.docs {
			if w := extJSON(t, want); !bytes.Equal(got[i], w) {
				t.Errorf("replay %d: %s's document %d is\n  %s, want\n  %s", run, c.ns, i, got[i], w)
			}
		}
	}
	if c.indexes != nil {
		cursor, err := handle.Indexes().List(t.Context())
		must(t, err)
		var specs []bson.Raw
		must(t, cursor.All(t.Context(), &specs))
		byName := map[string]bson.Raw{}
		for _, s := range specs {
			byName[s.Lookup("name").StringValue()] = s
		}
		for name, want := range c.indexes {
			got, ok := byName[name]
			switch {
			case want == "null" && ok:
				t.Errorf("replay %d: %s has index %s, dropped in the events: %s", run, c.ns, name, got)
			case want != "null" && !ok:
				t.Errorf("replay %d: %s lacks index %s: %v", run, c.ns, name, specs)
			case want != "null":
				hasFields(t, fmt.Sprintf("replay %d: %s's index %s", run, c.ns, name), got, extJSON(t, want))
			}
		}
	}
	if c.options != "" {
		specs, err := target.Database(db).ListCollectionSpecifications(t.Context(), bson.D{{Key: "name", Value: coll}})
		must(t, err)
		if len(specs) != 1 {
			t.Fatalf("replay %d: %s is not on the target", run, c.ns)
		}
		got := specs[0].Options
		if specs[0].Type == "view" {
			got, _ = bson.Marshal(bson.D{{Key: "type", Value: "view"}, {Key: "options", Value: specs[0].Options}})
		}
		hasFields(t, fmt.Sprintf("replay %d: %s's options", run, c.ns), got, extJSON(t, c.options))
	}
}

// hasFields fails unless got has each field of want, with the same value (numbers of
// any type compared as numbers).
func hasFields(t *testing.T, what string, got, want bson.Raw) {
	t.Helper()
	elements, _ := want.Elements()
	for _, w := range elements {
		g := got.Lookup(w.Key())
		if g.Type == 0 {
			t.Errorf("%s lacks %s: %s", what, w.Key(), got)
			continue
		}
		gn, gok := g.AsFloat64OK()
		wn, wok := w.Value().AsFloat64OK()
		if (gok && wok && gn != wn) || (!(gok && wok) && !g.Equal(w.Value())) {
			t.Errorf("%s has %s %s, want %s", what, w.Key(), g, w.Value())
		}
	}
}

const key1 = `{"_id": 1}`

// createC is the event of s.c's creation, which a server with showExpandedEvents emits
// before the first write to it, explicit or not.
var createC = shapeEvent{op: "create", ns: "s.c", coll: "c", description: `{"idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}`}

// Updates in every form update events take.
func TestUpdateEventShapesApplyExactlyTwice(t *testing.T) {
	insert := func(doc string) shapeEvent {
		return shapeEvent{op: "insert", ns: "s.c", coll: "c", key: key1, doc: doc}
	}
	update := func(ud string) shapeEvent {
		return shapeEvent{op: "update", ns: "s.c", coll: "c", key: key1, update: ud}
	}
	replayShapes(t, []shapeCase{
		{name: "array index paths", ns: "s.c", events: []shapeEvent{createC,
			insert(`{"_id": 1, "a": [1, 2, 3], "o": {"k": [{"x": 1}]}}`),
			update(`{"updatedFields": {"a.1": 5, "o.k.0.x": 2}, "removedFields": [], "truncatedArrays": [], "disambiguatedPaths": {}}`),
		}, docs: []string{`{"_id": 1, "a": [1, 5, 3], "o": {"k": [{"x": 2}]}}`}},
		{name: "a whole array", ns: "s.c", events: []shapeEvent{createC,
			insert(`{"_id": 1, "a": [1, 2, 3]}`),
			update(`{"updatedFields": {"a": [3, 1]}, "removedFields": [], "truncatedArrays": [], "disambiguatedPaths": {}}`),
		}, docs: []string{`{"_id": 1, "a": [3, 1]}`}},
		{name: "truncated arrays ($pull, $pop, pipeline $slice)", ns: "s.c", events: []shapeEvent{createC,
			insert(`{"_id": 1, "a": [1, 2, 3, 4], "b": {"c": [5, 6, 7]}}`),
			update(`{"updatedFields": {"a.0": 2, "a.1": 4}, "removedFields": [], "truncatedArrays": [{"field": "a", "newSize": 2}, {"field": "b.c", "newSize": 1}], "disambiguatedPaths": {}}`),
		}, docs: []string{`{"_id": 1, "a": [2, 4], "b": {"c": [5]}}`}},
		{name: "new fields in the order a pipeline made them, not by name", ns: "s.c", events: []shapeEvent{createC,
			insert(`{"_id": 1, "a": 1, "o": {"k": 1}, "arr": [1]}`),
			update(`{"updatedFields": {"z": 1, "m": {"x": 2}, "a": 2, "o.y": 3, "o.b": 4, "arr.2": 5, "arr.10": 6}, "removedFields": [], "truncatedArrays": [], "disambiguatedPaths": {}}`),
		}, docs: []string{`{"_id": 1, "a": 2, "o": {"k": 1, "y": 3, "b": 4}, "arr": [1, null, 5, null, null, null, null, null, null, null, 6], "z": 1, "m": {"x": 2}}`}},
		{name: "removed fields ($unset, $rename)", ns: "s.c", events: []shapeEvent{createC,
			insert(`{"_id": 1, "old": 1, "b": {"c": 1, "d": 2}, "a": [1, 2]}`),
			update(`{"updatedFields": {"new": 1}, "removedFields": ["old", "b.c", "a.1"], "truncatedArrays": [], "disambiguatedPaths": {}}`),
		}, docs: []string{`{"_id": 1, "b": {"d": 2}, "a": [1, null], "new": 1}`}},
		{name: "a dotted top-level field name", ns: "s.c", events: []shapeEvent{createC,
			insert(`{"_id": 1, "a.b": 1, "a": {"b": 1}}`),
			update(`{"updatedFields": {"a.b": 2, "new.Field.": 1}, "removedFields": [], "truncatedArrays": [], "disambiguatedPaths": {"a.b": ["a.b"], "new.Field.": ["new.Field."]}}`),
		}, docs: []string{`{"_id": 1, "a.b": 2, "a": {"b": 1}, "new.Field.": 1}`}},
		{name: "numeric field names and array indexes", ns: "s.c", events: []shapeEvent{createC,
			insert(`{"_id": 1, "o": {"0": {"1": "x"}}, "arr": [[{"0": "numeric"}]]}`),
			update(`{"updatedFields": {"o.0.1": "y", "arr.0.0.1": {"b.c": 1}}, "removedFields": [], "truncatedArrays": [], "disambiguatedPaths": {"o.0.1": ["o", "0", "1"], "arr.0.0.1": ["arr", 0, 0, "1"]}}`),
		}, docs: []string{`{"_id": 1, "o": {"0": {"1": "y"}}, "arr": [[{"0": "numeric", "1": {"b.c": 1}}]]}`}},
		{name: "dotted names with array indexes and a truncation", ns: "s.c", events: []shapeEvent{createC,
			insert(`{"_id": 1, "obj": {"sub.obj": {"d.a..": [[{"a": {"b.c": 1}}, "truncated"]]}}}`),
			update(`{"updatedFields": {"obj.sub.obj.d.a...0.0.a.b.c": 2}, "removedFields": [], "truncatedArrays": [{"field": "obj.sub.obj.d.a...0", "newSize": 1}],
				"disambiguatedPaths": {"obj.sub.obj.d.a...0": ["obj", "sub.obj", "d.a..", 0], "obj.sub.obj.d.a...0.0.a.b.c": ["obj", "sub.obj", "d.a..", 0, 0, "a", "b.c"]}}`),
		}, docs: []string{`{"_id": 1, "obj": {"sub.obj": {"d.a..": [[{"a": {"b.c": 2}}]]}}}`}},
		{name: "a nested dollar field name", ns: "s.c", events: []shapeEvent{createC,
			insert(`{"_id": 1, "address": {"$street": "Elm Road", "$number": 1}}`),
			update(`{"updatedFields": {"address.$street": "Elm Ave"}, "removedFields": ["address.$number"], "truncatedArrays": [], "disambiguatedPaths": {}}`),
		}, docs: []string{`{"_id": 1, "address": {"$street": "Elm Ave"}}`}},
		{name: "a top-level dollar field name", ns: "s.c", events: []shapeEvent{createC,
			insert(`{"_id": 1, "$rooms": {"br": 2}, "q": 1}`),
			update(`{"updatedFields": {"$rooms": {"br": 3}}, "removedFields": [], "truncatedArrays": [], "disambiguatedPaths": {}}`),
		}, docs: []string{`{"_id": 1, "$rooms": {"br": 3}, "q": 1}`}},
		{name: "MongoDB 6.0: no disambiguatedPaths, no dotted names", ns: "s.c", events: []shapeEvent{createC,
			insert(`{"_id": 1, "a": {"b": 1}}`),
			update(`{"updatedFields": {"a.b": 2}, "removedFields": []}`),
		}, docs: []string{`{"_id": 1, "a": {"b": 2}}`}},
		{name: "MongoDB 6.0: no disambiguatedPaths, dotted names, the looked-up document", ns: "s.c", events: []shapeEvent{createC,
			insert(`{"_id": 1, "a.b": 1, "a": {"b": 1}}`),
			{op: "update", ns: "s.c", coll: "c", key: key1, update: `{"updatedFields": {"a.b": 2}, "removedFields": []}`, doc: `{"_id": 1, "a.b": 2, "a": {"b": 1}}`},
		}, docs: []string{`{"_id": 1, "a.b": 2, "a": {"b": 1}}`}},
	})
}

// Inserts and replaces of documents with field names that start with $ or hold dots.
func TestDocumentEventShapesWithOddFieldNamesApplyExactlyTwice(t *testing.T) {
	replayShapes(t, []shapeCase{
		{name: "insert", ns: "s.c", events: []shapeEvent{createC,
			{op: "insert", ns: "s.c", coll: "c", key: key1, doc: `{"_id": 1, "$price": 50, "a.b": 1, "loc": {"$db": "x", "c.d": 2}}`},
		}, docs: []string{`{"_id": 1, "$price": 50, "a.b": 1, "loc": {"$db": "x", "c.d": 2}}`}},
		{name: "replace", ns: "s.c", events: []shapeEvent{createC,
			{op: "insert", ns: "s.c", coll: "c", key: key1, doc: `{"_id": 1, "v": 1}`},
			{op: "replace", ns: "s.c", coll: "c", key: key1, doc: `{"_id": 1, "$v": "$notAPath", "x.y": {"$literal": 1}}`},
		}, docs: []string{`{"_id": 1, "$v": "$notAPath", "x.y": {"$literal": 1}}`}},
	})
}

// An update of MongoDB 6.0 (no disambiguatedPaths) with a dot in its path, on a document
// with dots in field names, and no looked-up document: replay cannot tell which field
// it changed, and stops there rather than guess.
func TestAnUndisambiguatedPathOnDottedNamesStopsTheReplay(t *testing.T) {
	store := testsupport.Connect(t, mongotest.New(t, "a store of the test's own", mongotest.Options{}).URI()).Database(oplogstore.DefaultDatabase)
	target := testsupport.Connect(t, mongotest.New(t, "a target of the test's own", mongotest.Options{}).URI())
	to := storeShapeEvents(t, store, "shapes", []shapeEvent{createC,
		{op: "insert", ns: "s.c", coll: "c", key: key1, doc: `{"_id": 1, "a.b": 1, "a": {"b": 1}}`},
		{op: "update", ns: "s.c", coll: "c", key: key1, update: `{"updatedFields": {"a.b": 2}, "removedFields": []}`},
	})
	_, err := Replay(t.Context(), store, target, Options{Source: "shapes", To: to})
	if !errors.Is(err, errAmbiguousPath) || !strings.Contains(err.Error(), "disambiguatedPaths") || !strings.Contains(err.Error(), "a base backup taken after") {
		t.Fatalf("replay of an undisambiguated dotted path on a document with dotted names: %v; want it refused, saying why and what to do", err)
	}
	var doc bson.Raw
	must(t, target.Database("s").Collection("c").FindOne(t.Context(), bson.D{}).Decode(&doc))
	if v := doc.Lookup("a.b"); v.Int32() != 1 {
		t.Errorf("the refused update changed the document: %s", doc)
	}
}

// createIndexEvent is a createIndexes event of s.c for the index specifications specs.
func createIndexEvent(specs string) shapeEvent {
	return shapeEvent{op: "createIndexes", ns: "s.c", coll: "c", description: `{"indexes": [` + specs + `]}`}
}

// modifyEvent is a collMod event of s.c with this operationDescription.
func modifyEvent(description string) shapeEvent {
	return shapeEvent{op: "modify", ns: "s.c", coll: "c", description: description}
}

// wantIndex is a shapeCase's expected index name and specification.
func wantIndex(name, spec string) map[string]string { return map[string]string{name: spec} }

// collation is a collation as mongod reports it in a create event, every field filled.
const collation = `{"locale": "en_US", "caseLevel": false, "caseFirst": "off", "strength": 3, "numericOrdering": false,
	"alternate": "non-ignorable", "maxVariable": "punct", "normalization": false, "backwards": false, "version": "57.1"}`

// Index events, with every option mongod reports in them, and the changes collMod makes
// to an index.
func TestIndexEventShapesApplyExactlyTwice(t *testing.T) {
	create := createC
	replayShapes(t, []shapeCase{
		{name: "index: partial, hidden, TTL, storage engine", ns: "s.c", events: []shapeEvent{create, createIndexEvent(
			`{"v": 2, "key": {"a": 1}, "name": "a_1", "hidden": true, "partialFilterExpression": {"a": {"$gte": 0}}, "expireAfterSeconds": 86400, "storageEngine": {"wiredTiger": {}}}`)},
			indexes: wantIndex("a_1", `{"key": {"a": 1}, "hidden": true, "partialFilterExpression": {"a": {"$gte": 0}}, "expireAfterSeconds": 86400}`)},
		{name: "index: collation", ns: "s.c", events: []shapeEvent{create, createIndexEvent(`{"v": 2, "key": {"e": 1}, "name": "e_1", "collation": ` + collation + `}`)},
			indexes: wantIndex("e_1", `{"key": {"e": 1}, "collation": `+collation+`}`)},
		{name: "index: wildcard", ns: "s.c", events: []shapeEvent{create, createIndexEvent(`{"v": 2, "key": {"$**": 1}, "name": "wi", "wildcardProjection": {"a": true, "b": true, "_id": false}}`)},
			indexes: wantIndex("wi", `{"key": {"$**": 1}, "wildcardProjection": {"a": true, "b": true, "_id": false}}`)},
		{name: "index: text", ns: "s.c", events: []shapeEvent{create, createIndexEvent(
			`{"v": 2, "key": {"_fts": "text", "_ftsx": 1}, "name": "text", "weights": {"e": 1}, "default_language": "english", "language_override": "language", "textIndexVersion": 3}`)},
			indexes: wantIndex("text", `{"key": {"_fts": "text", "_ftsx": 1}, "weights": {"e": 1}, "default_language": "english", "textIndexVersion": 3}`)},
		{name: "index: 2dsphere", ns: "s.c", events: []shapeEvent{create,
			createIndexEvent(`{"v": 2, "key": {"g": "2dsphere"}, "name": "2dsphere", "2dsphereIndexVersion": 3}`)},
			indexes: map[string]string{"2dsphere": `{"key": {"g": "2dsphere"}, "2dsphereIndexVersion": 3}`}},
		{name: "index: 2d (legacy: the test server refuses it)", ns: "s.c", events: []shapeEvent{create,
			createIndexEvent(`{"v": 2, "key": {"f": "2d"}, "name": "2d", "min": -150.0, "max": 150.0, "bits": 26}`)},
			indexes: map[string]string{"2d": `{"key": {"f": "2d"}, "min": -150.0, "bits": 26}`}},
		{name: "index: sparse compound, hashed, unique, dropped", ns: "s.c", events: []shapeEvent{create,
			createIndexEvent(`{"v": 2, "key": {"b": 1, "c": -1}, "name": "b_1_c_-1", "sparse": true}, {"v": 2, "key": {"d": "hashed"}, "name": "d_hashed", "sparse": true}`),
			createIndexEvent(`{"v": 2, "key": {"u": 1}, "name": "u_1", "unique": true}`),
			{op: "dropIndexes", ns: "s.c", coll: "c", description: `{"indexes": [{"v": 2, "key": {"d": "hashed"}, "name": "d_hashed", "sparse": true}]}`}},
			indexes: map[string]string{"b_1_c_-1": `{"key": {"b": 1, "c": -1}, "sparse": true}`, "u_1": `{"unique": true}`, "d_hashed": "null"}},
		{name: "index changes by collMod: hidden, TTL, unique", ns: "s.c", events: []shapeEvent{create,
			createIndexEvent(`{"v": 2, "key": {"c": 1}, "name": "c_1", "expireAfterSeconds": 100000}`),
			modifyEvent(`{"index": {"name": "c_1", "hidden": true}}`),
			modifyEvent(`{"index": {"name": "c_1", "expireAfterSeconds": {"$numberLong": "60"}}}`),
			modifyEvent(`{"index": {"name": "c_1", "prepareUnique": true}}`),
			modifyEvent(`{"index": {"name": "c_1", "unique": true}}`)},
			indexes: wantIndex("c_1", `{"hidden": true, "expireAfterSeconds": 60, "unique": true}`)},
		{name: "index changes by collMod naming the key pattern, on a target ahead", ns: "s.c", events: []shapeEvent{create,
			createIndexEvent(`{"v": 2, "key": {"k": 1}, "name": "k_1"}`),
			modifyEvent(`{"index": {"keyPattern": {"k": 1}, "hidden": true}}`),
			modifyEvent(`{"index": {"keyPattern": {"k": 1}, "prepareUnique": true}}`),
			modifyEvent(`{"index": {"keyPattern": {"k": 1}, "unique": true}}`),
			modifyEvent(`{"index": {"keyPattern": {"k": 1}, "hidden": false}}`)},
			indexes: wantIndex("k_1", `{"key": {"k": 1}, "unique": true}`)},
	})
}

// Collection events, with every option mongod reports in them.
func TestCollectionEventShapesApplyExactlyTwice(t *testing.T) {
	create := createC
	replayShapes(t, []shapeCase{
		{name: "capped, the oldest documents deleted as the source logs it", ns: "s.c", events: []shapeEvent{
			{op: "create", ns: "s.c", coll: "c", description: `{"capped": true, "size": 100000, "max": 2, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}`},
			{op: "insert", ns: "s.c", coll: "c", key: key1, doc: `{"_id": 1}`},
			{op: "insert", ns: "s.c", coll: "c", key: `{"_id": 2}`, doc: `{"_id": 2}`},
			{op: "insert", ns: "s.c", coll: "c", key: `{"_id": 3}`, doc: `{"_id": 3}`},
			{op: "delete", ns: "s.c", coll: "c", key: key1},
			{op: "insert", ns: "s.c", coll: "c", key: `{"_id": 4}`, doc: `{"_id": 4}`},
			{op: "delete", ns: "s.c", coll: "c", key: `{"_id": 2}`}},
			docs: []string{`{"_id": 3}`, `{"_id": 4}`}, options: `{"capped": true, "size": 100000, "max": 2}`},
		{name: "capped, a document deleted on a full collection", ns: "s.c", skipped: skipCappedDeletedLater, events: []shapeEvent{
			{op: "create", ns: "s.c", coll: "c", description: `{"capped": true, "size": 100000, "max": 2, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}`},
			{op: "insert", ns: "s.c", coll: "c", key: key1, doc: `{"_id": 1}`},
			{op: "insert", ns: "s.c", coll: "c", key: `{"_id": 2}`, doc: `{"_id": 2}`},
			{op: "delete", ns: "s.c", coll: "c", key: `{"_id": 2}`},
			{op: "insert", ns: "s.c", coll: "c", key: `{"_id": 3}`, doc: `{"_id": 3}`}},
			docs: []string{`{"_id": 1}`, `{"_id": 3}`}},
		{name: "validator, level, action", ns: "s.c", events: []shapeEvent{
			{op: "create", ns: "s.c", coll: "c", description: `{"idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}, "validator": {"a": 1}, "validationLevel": "off", "validationAction": "warn"}`},
			modifyEvent(`{"validator": {"$jsonSchema": {"bsonType": "object", "properties": {"a": {"bsonType": "number"}}}}}`),
			modifyEvent(`{"validationLevel": "moderate"}`),
			modifyEvent(`{"validationAction": "error"}`)},
			options: `{"validator": {"$jsonSchema": {"bsonType": "object", "properties": {"a": {"bsonType": "number"}}}}, "validationLevel": "moderate", "validationAction": "error"}`},
		{name: "capped", ns: "s.c", events: []shapeEvent{
			{op: "create", ns: "s.c", coll: "c", description: `{"idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}, "capped": true, "size": 4096, "max": 1000}`}},
			options: `{"capped": true, "size": 4096, "max": 1000}`},
		{name: "collation", ns: "s.c", events: []shapeEvent{
			{op: "create", ns: "s.c", coll: "c", description: `{"collation": ` + collation + `, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_", "collation": ` + collation + `}}`}},
			options: `{"collation": ` + collation + `}`},
		{name: "clustered, with a TTL", ns: "s.c", events: []shapeEvent{
			{op: "create", ns: "s.c", coll: "c", description: `{"clusteredIndex": {"v": 2, "key": {"_id": 1}, "name": "newName", "unique": true}, "expireAfterSeconds": {"$numberLong": "10"}}`}},
			options: `{"clusteredIndex": {"v": 2, "key": {"_id": 1}, "name": "newName", "unique": true}, "expireAfterSeconds": 10}`},
		{name: "a view, its pipeline changed", ns: "s.v", events: []shapeEvent{create,
			{op: "create", ns: "s.v", description: `{"viewOn": "c", "pipeline": [{"$match": {"a": 2}}, {"$project": {"a": 1}}]}`},
			{op: "modify", ns: "s.v", description: `{"viewOn": "c", "pipeline": [{"$match": {"a": 1}}, {"$project": {"a": 1}}]}`}},
			options: `{"type": "view", "options": {"viewOn": "c", "pipeline": [{"$match": {"a": 1}}, {"$project": {"a": 1}}]}}`},
		{name: "a view dropped", ns: "s.v", events: []shapeEvent{create,
			{op: "create", ns: "s.v", description: `{"viewOn": "c", "pipeline": []}`},
			{op: "drop", ns: "s.v"}},
			docs: []string{}},
		{name: "a name going from view to collection", ns: "s.c", events: []shapeEvent{
			{op: "create", ns: "s.c", description: `{"viewOn": "d", "pipeline": []}`},
			{op: "drop", ns: "s.c"},
			createC,
			{op: "insert", ns: "s.c", coll: "c", key: key1, doc: `{"_id": 1}`}},
			docs: []string{`{"_id": 1}`}, options: `{}`},
		{name: "a time-series collection, skipped", ns: "s.ts", skipped: skipTimeseries, events: []shapeEvent{
			{op: "create", ns: "s.ts", description: `{"viewOn": "system.buckets.ts", "pipeline": [{"$_internalUnpackBucket": {"timeField": "time", "bucketMaxSpanSeconds": 3600}}]}`},
			{op: "modify", ns: "s.ts", description: `{"viewOn": "system.buckets.ts", "pipeline": [{"$_internalUnpackBucket": {"timeField": "time", "bucketMaxSpanSeconds": 86400}}]}`}},
			docs: []string{}},
		{name: "a rename across databases, as the source's stream shows it", ns: "s2.target", events: []shapeEvent{
			{op: "create", ns: "s.source", coll: "source", description: `{"idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}`},
			{op: "insert", ns: "s.source", coll: "source", key: key1, doc: `{"_id": 1, "Key0": "Val0"}`},
			{op: "createIndexes", ns: "s.source", coll: "source", description: `{"indexes": [{"v": 2, "key": {"Key0": 1}, "name": "Key0_1"}]}`},
			{op: "create", ns: "s2.tmpAb1cD.renameCollection", coll: "tmp", description: `{"idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}`},
			{op: "createIndexes", ns: "s2.tmpAb1cD.renameCollection", coll: "tmp", description: `{"indexes": [{"v": 2, "key": {"Key0": 1}, "name": "Key0_1"}]}`},
			{op: "insert", ns: "s2.tmpAb1cD.renameCollection", coll: "tmp", key: key1, doc: `{"_id": 1, "Key0": "Val0"}`},
			{op: "rename", ns: "s2.tmpAb1cD.renameCollection", coll: "tmp", to: `{"db": "s2", "coll": "target"}`, description: `{"to": {"db": "s2", "coll": "target"}}`},
			{op: "drop", ns: "s.source", coll: "source"}},
			docs: []string{`{"_id": 1, "Key0": "Val0"}`}, indexes: wantIndex("Key0_1", `{"key": {"Key0": 1}}`)},
	})
}

// A rename across databases whose copy the source's change stream leaves out
// (SERVER-107688: only the rename of the staging collection shows) cannot be rebuilt:
// replay refuses before it writes, in a dry run too, unless the target is past it.
func TestARenameAcrossDatabasesWithoutItsCopyIsRefused(t *testing.T) {
	store := testsupport.Connect(t, mongotest.New(t, "a store of the test's own", mongotest.Options{}).URI()).Database(oplogstore.DefaultDatabase)
	to := storeShapeEvents(t, store, "shapes", []shapeEvent{
		{op: "create", ns: "s.source", coll: "source", description: `{"idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}`},
		{op: "insert", ns: "s.source", coll: "source", key: key1, doc: `{"_id": 1}`},
		{op: "rename", ns: "s2.tmpXy9Zw.renameCollection", coll: "tmp", to: `{"db": "s2", "coll": "target"}`, description: `{"to": {"db": "s2", "coll": "target"}}`},
		{op: "drop", ns: "s.source", coll: "source"},
		{op: "insert", ns: "s2.target", coll: "tmp", key: `{"_id": 2}`, doc: `{"_id": 2}`},
	})
	target := testsupport.Connect(t, mongotest.New(t, "a target of the test's own", mongotest.Options{}).URI())
	for _, dryRun := range []bool{true, false} {
		_, err := Replay(t.Context(), store, target, Options{Source: "shapes", To: to, DryRun: dryRun})
		var refusal *Refusal
		if !errors.As(err, &refusal) || !strings.Contains(err.Error(), "s2.target") || !strings.Contains(err.Error(), "base backup taken after") {
			t.Fatalf("dry run %v: %v; want a refusal naming the rename", dryRun, err)
		}
	}
	if names, _ := target.ListDatabaseNames(t.Context(), bson.D{}); slices.ContainsFunc(names, func(n string) bool { return n == "s" || n == "s2" }) {
		t.Errorf("the refused replay wrote: the target has databases %v", names)
	}
	// A target restored after the rename holds its result: the range's start is before
	// the base, and replay goes on.
	_, err := target.Database("s2").Collection("target").InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	if _, err := Replay(t.Context(), store, target, Options{Source: "shapes", To: to}); err != nil {
		t.Fatal(err)
	}
	n, err := target.Database("s2").Collection("target").CountDocuments(t.Context(), bson.D{})
	must(t, err)
	if n != 2 {
		t.Errorf("s2.target holds %d documents after the replay, want 2", n)
	}
}

// A dropDatabase takes the database's system.views with it on the source; replay drops
// the database's collections and views one by one, and then system.views, which a
// server keeps (empty) after the last view goes.
func TestADropDatabaseTakesItsViewsCollection(t *testing.T) {
	replayTwiceOntoANewTarget(t, "s", nil, []shapeEvent{createC,
		{op: "create", ns: "s.v", description: `{"viewOn": "c", "pipeline": []}`},
		{op: "drop", ns: "s.c", coll: "c"},
		{op: "dropDatabase", ns: "s"},
	})
}

// A view made and dropped after a dropDatabase leaves the source's database an empty
// system.views. A second replay skips the view's events (its name holds a collection
// the range makes later) but applies the dropDatabase: that must not take system.views,
// which nothing would bring back.
func TestAViewMadeAfterADropDatabaseLeavesItsViewsCollection(t *testing.T) {
	replayTwiceOntoANewTarget(t, "s", []string{"system.views", "v"}, []shapeEvent{createC,
		{op: "drop", ns: "s.c", coll: "c"},
		{op: "dropDatabase", ns: "s"},
		{op: "create", ns: "s.v", description: `{"viewOn": "c", "pipeline": []}`},
		{op: "drop", ns: "s.v"},
		{op: "create", ns: "s.v", coll: "v", description: `{"idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}`},
	})
}

// replayTwiceOntoANewTarget replays events twice onto a new target, which must hold,
// after each replay, the collections want (in name order) in database db.
func replayTwiceOntoANewTarget(t *testing.T, db string, want []string, events []shapeEvent) {
	t.Helper()
	store := testsupport.Connect(t, mongotest.New(t, "a store of the test's own", mongotest.Options{}).URI()).Database(oplogstore.DefaultDatabase)
	to := storeShapeEvents(t, store, "shapes", events)
	target := testsupport.Connect(t, mongotest.New(t, "a target of the test's own", mongotest.Options{}).URI())
	for run := 1; run <= 2; run++ {
		if _, err := Replay(t.Context(), store, target, Options{Source: "shapes", To: to}); err != nil {
			t.Fatalf("replay %d: %v", run, err)
		}
		names, err := target.Database(db).ListCollectionNames(t.Context(), bson.D{})
		must(t, err)
		slices.Sort(names)
		if !slices.Equal(names, want) {
			t.Fatalf("replay %d: the target's database %s holds %v, want %v (as the source's)", run, db, names, want)
		}
	}
}
