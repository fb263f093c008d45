package pitr

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/pitr/pitrtest"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// The server's own update events, applied to the document before them, give the
// document after them: client-side (read-modify-replace) and through update operators
// (with the fallback for what the server refuses), for random updates of nested
// documents and arrays.
func TestUpdateDescriptionsRebuildTheServersDocuments(t *testing.T) {
	uri := mongotest.New(t, "random updates on a server of the test's own", mongotest.Options{}).URI()
	client := testsupport.Connect(t, uri)
	ctx := t.Context()
	coll := client.Database("u").Collection("docs")
	stream, err := coll.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close(ctx)
	scratch := &collection{db: "u", name: "scratch"}
	a := &applier{client: client, stats: &Summary{}, park: &parking{keys: map[parkKey]bool{}}}

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	updates := 0
	for doc := range 20 {
		base := bson.D{{Key: "_id", Value: doc}, {Key: "a", Value: pitrtest.RandomValue(rng, 1)}, {Key: "arr", Value: bson.A{1, "two", bson.D{{Key: "k0", Value: 3}}}}}
		_, err := coll.InsertOne(ctx, base)
		must(t, err)
		for range 30 {
			var before bson.Raw
			must(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: doc}}).Decode(&before))
			update := pitrtest.RandomUpdate(rng)
			if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: doc}}, update); err != nil {
				continue // an update the server refuses (a $push onto a non-array) makes no event
			}
			var after bson.Raw
			must(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: doc}}).Decode(&after))
			if bytes.Equal(before, after) {
				continue // a no-op makes no event
			}
			for stream.Next(ctx) {
				if stream.Current.Lookup("operationType").StringValue() == "update" {
					break
				}
			}
			raw := stream.Current.Lookup("updateDescription").Document()
			ud, err := parseUpdateDescription(raw)
			if err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			updates++

			var current bson.D
			must(t, bson.Unmarshal(before, &current))
			got, err := bson.Marshal(ud.applyTo(current))
			must(t, err)
			if !bytes.Equal(got, after) {
				t.Fatalf("update %s: client-side\n  from %s\n  with %s\n   got %s\n  want %s", update, before, raw, bson.Raw(got), after)
			}

			_, err = client.Database("u").Collection("scratch").ReplaceOne(ctx, bson.D{{Key: "_id", Value: doc}}, before, options.Replace().SetUpsert(true))
			must(t, err)
			key, _ := bson.Marshal(bson.D{{Key: "_id", Value: doc}})
			e := &oplogstore.Event{OpType: "update", DocKey: key, UpdateDescription: raw}
			must(t, a.writeAlone(ctx, scratch, e, ud, false))
			var viaOperators bson.Raw
			must(t, client.Database("u").Collection("scratch").FindOne(ctx, bson.D{{Key: "_id", Value: doc}}).Decode(&viaOperators))
			if !bytes.Equal(viaOperators, after) {
				t.Fatalf("update %s: through operators\n  from %s\n  with %s\n   got %s\n  want %s", update, before, raw, viaOperators, after)
			}
		}
	}
	if updates < 200 {
		t.Fatalf("only %d update events to check; the generator is off", updates)
	}
	t.Logf("%d update events rebuilt, %d of them read-modify-replace through operators' fallback", updates, a.stats.ClientSideUpdates)
}

func TestApplyToPathsAndShapes(t *testing.T) {
	doc := func(s string) bson.D {
		var d bson.D
		if err := bson.UnmarshalExtJSON([]byte(s), false, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	cases := []struct {
		name, from, update, want string
	}{
		{"nested set creates documents", `{"_id":1}`, `{"updatedFields":{"a.b.c":1}}`, `{"_id":1,"a":{"b":{"c":1}}}`},
		{"numeric component of a missing field is a field name", `{"_id":1}`, `{"updatedFields":{"a.0":1}}`, `{"_id":1,"a":{"0":1}}`},
		{"set past an array's end pads with nulls", `{"_id":1,"a":[1]}`, `{"updatedFields":{"a.3":4}}`, `{"_id":1,"a":[1,null,null,4]}`},
		{"truncation before new values", `{"_id":1,"a":[1,2,3]}`, `{"updatedFields":{"a.0":2,"a.1":3},"truncatedArrays":[{"field":"a","newSize":2}]}`, `{"_id":1,"a":[2,3]}`},
		{"removing an element leaves null", `{"_id":1,"a":[1,2]}`, `{"removedFields":["a.0"]}`, `{"_id":1,"a":[null,2]}`},
		{"a value in the way of a set is left", `{"_id":1,"a":5,"c":0}`, `{"updatedFields":{"a.b":1,"c":2}}`, `{"_id":1,"a":5,"c":2}`},
		{"a field name on an array is left", `{"_id":1,"a":[1]}`, `{"updatedFields":{"a.x":1}}`, `{"_id":1,"a":[1]}`},
		{"removing below a value does nothing", `{"_id":1,"a":5}`, `{"removedFields":["a.b"]}`, `{"_id":1,"a":5}`},
		{"a field name with a dot", `{"_id":1,"a.b":1,"a":{"b":1}}`,
			`{"updatedFields":{"a.b":2},"disambiguatedPaths":{"a.b":["a.b"]}}`, `{"_id":1,"a.b":2,"a":{"b":1}}`},
		{"a numeric field name", `{"_id":1,"a":{"0":1}}`,
			`{"updatedFields":{"a.0":2},"disambiguatedPaths":{"a.0":["a","0"]}}`, `{"_id":1,"a":{"0":2}}`},
		{"an index on a document is left", `{"_id":1,"a":{"0":1}}`,
			`{"updatedFields":{"a.0":2},"disambiguatedPaths":{"a.0":["a",{"$numberInt":"0"}]}}`, `{"_id":1,"a":{"0":1}}`},
		{"a dollar field name", `{"_id":1,"a":{"$x":1}}`,
			`{"updatedFields":{"a.$x":2},"disambiguatedPaths":{"a.$x":["a","$x"]}}`, `{"_id":1,"a":{"$x":2}}`},
		{"fields after a new one go after it", `{"_id":1,"p":1,"q":2,"r":3}`,
			`{"updatedFields":{"p":5,"n":0,"q":2}}`, `{"_id":1,"p":5,"r":3,"n":0,"q":2}`},
		{"in their own document", `{"_id":1,"d":{"q":2,"r":3},"z":1}`,
			`{"updatedFields":{"z":2,"d.n":0,"d.q":2}}`, `{"_id":1,"d":{"r":3,"n":0,"q":2},"z":2}`},
		{"not in an array", `{"_id":1,"a":[1],"z":1}`,
			`{"updatedFields":{"a.1":2,"a.0":1}}`, `{"_id":1,"a":[1,2],"z":1}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, err := bson.Marshal(doc(c.update))
			must(t, err)
			ud, err := parseUpdateDescription(raw)
			must(t, err)
			got, _ := bson.Marshal(ud.applyTo(doc(c.from)))
			want, _ := bson.Marshal(doc(c.want))
			if !bytes.Equal(got, want) {
				t.Errorf("got %s, want %s", bson.Raw(got), bson.Raw(want))
			}
		})
	}
}

func TestOperatorsExpressOnlyPlainPaths(t *testing.T) {
	for update, want := range map[string]bool{
		`{"updatedFields":{"a.b":1,"c.0":2},"removedFields":["d"]}`:                                     true,
		`{"updatedFields":{"a.0":1},"disambiguatedPaths":{"a.0":["a","0"]}}`:                            true,
		`{"updatedFields":{"a.b":1},"disambiguatedPaths":{"a.b":["a.b"]}}`:                              false,
		`{"removedFields":["a.$b"],"disambiguatedPaths":{"a.$b":["a","$b"]}}`:                           false,
		`{"truncatedArrays":[{"field":"a..b","newSize":1}],"disambiguatedPaths":{"a..b":["a","","b"]}}`: false,
	} {
		var d bson.D
		must(t, bson.UnmarshalExtJSON([]byte(update), false, &d))
		raw, _ := bson.Marshal(d)
		ud, err := parseUpdateDescription(raw)
		must(t, err)
		if got := ud.operatorsExpress(); got != want {
			t.Errorf("%s: operatorsExpress = %v, want %v", update, got, want)
		}
	}
	for _, bad := range []string{
		`{"updatedFields":5}`,
		`{"removedFields":[1]}`,
		`{"truncatedArrays":[{"field":"a"}]}`,
		`{"updatedFields":{"a":1},"disambiguatedPaths":{"a":[true]}}`,
	} {
		var d bson.D
		must(t, bson.UnmarshalExtJSON([]byte(bad), false, &d))
		raw, _ := bson.Marshal(d)
		if _, err := parseUpdateDescription(raw); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// An update event that records no change (another tool's store may hold one) writes
// nothing, alone or in a batch.
func TestAnEmptyUpdateWritesNothing(t *testing.T) {
	client := testsupport.Connect(t, mongotest.New(t, "a target of the test's own", mongotest.Options{}).URI())
	coll := client.Database("u").Collection("c")
	_, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 1}})
	must(t, err)
	key, _ := bson.Marshal(bson.D{{Key: "_id", Value: 1}})
	empty, _ := bson.Marshal(bson.D{{Key: "updatedFields", Value: bson.D{}}, {Key: "removedFields", Value: bson.A{}}})
	e := &oplogstore.Event{OpType: "update", DB: "u", Coll: "c", DocKey: key, UpdateDescription: empty}
	ud, err := parseUpdateDescription(empty)
	must(t, err)
	a := &applier{client: client, stats: &Summary{}, park: &parking{keys: map[parkKey]bool{}}}
	c := &collection{db: "u", name: "c"}
	must(t, a.writeAlone(t.Context(), c, e, ud, false))
	must(t, a.write(t.Context(), c, e))
	must(t, a.flush(t.Context()))
	var got bson.D
	must(t, coll.FindOne(t.Context(), bson.D{}).Decode(&got))
	if len(got) != 2 || got[1].Value != int32(1) {
		t.Errorf("the document is %v after an empty update", got)
	}
}
