package pitr

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// everyKind writes every kind of event the collector captures onto the source.
func everyKind(t *testing.T, client *mongo.Client) {
	ctx := t.Context()
	shop := client.Database("shop")
	orders := shop.Collection("orders")
	_, err := orders.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "item", Value: "pen"}, {Key: "qty", Value: int32(2)},
			{Key: "tags", Value: bson.A{"a", "b", "c"}}, {Key: "ship", Value: bson.D{{Key: "city", Value: "Oslo"}, {Key: "zip", Value: "0150"}}}},
		bson.D{{Key: "_id", Value: 2}, {Key: "item", Value: "ink"}, {Key: "qty", Value: int32(5)}, {Key: "tags", Value: bson.A{}}},
		bson.D{{Key: "_id", Value: 3}, {Key: "item", Value: "pad"}, {Key: "qty", Value: int32(1)}},
	})
	must(t, err)
	update := func(filter, update bson.D) {
		t.Helper()
		_, err := orders.UpdateOne(ctx, filter, update)
		must(t, err)
	}
	id := func(n int) bson.D { return bson.D{{Key: "_id", Value: n}} }
	update(id(1), bson.D{{Key: "$set", Value: bson.D{{Key: "ship.city", Value: "Bergen"}, {Key: "ship.geo.lat", Value: 60.39}}}})
	update(id(1), bson.D{{Key: "$unset", Value: bson.D{{Key: "ship.zip", Value: ""}}}, {Key: "$inc", Value: bson.D{{Key: "qty", Value: 1}}}})
	update(id(1), bson.D{{Key: "$push", Value: bson.D{{Key: "tags", Value: "d"}}}})
	// What $pop makes: without the first element (a truncation and a shift), without the
	// last (a truncation).
	update(id(1), bson.D{{Key: "$push", Value: bson.D{{Key: "tags", Value: bson.D{{Key: "$each", Value: bson.A{}}, {Key: "$slice", Value: -3}}}}}})
	update(id(1), bson.D{{Key: "$push", Value: bson.D{{Key: "tags", Value: bson.D{{Key: "$each", Value: bson.A{}}, {Key: "$slice", Value: 2}}}}}})
	update(id(1), bson.D{{Key: "$set", Value: bson.D{{Key: "tags.1", Value: "B"}, {Key: "tags.5", Value: "far"}}}}) // pads with nulls
	update(id(2), bson.D{
		{Key: "$push", Value: bson.D{{Key: "tags", Value: bson.D{{Key: "$each", Value: bson.A{"x", "y"}}, {Key: "$position", Value: 0}}}}},
		{Key: "$set", Value: bson.D{{Key: "name", Value: "ink"}}}, {Key: "$unset", Value: bson.D{{Key: "item", Value: ""}}},
	})
	update(id(2), bson.D{{Key: "$push", Value: bson.D{{Key: "tags", Value: bson.D{{Key: "$each", Value: bson.A{"z"}}, {Key: "$sort", Value: 1}}}}}})
	_, err = orders.UpdateMany(ctx, bson.D{{Key: "qty", Value: bson.D{{Key: "$lt", Value: 5}}}}, bson.D{{Key: "$set", Value: bson.D{{Key: "low", Value: true}}}})
	must(t, err)
	_, err = orders.ReplaceOne(ctx, id(3), bson.D{{Key: "item", Value: "pad"}, {Key: "replaced", Value: true}})
	must(t, err)
	_, err = orders.DeleteOne(ctx, id(2))
	must(t, err)
	_, err = orders.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "item", Value: 1}}},
		{Keys: bson.D{{Key: "qty", Value: -1}, {Key: "low", Value: 1}}, Options: options.Index().SetName("by_qty")},
	})
	must(t, err)
	must(t, orders.Indexes().DropOne(ctx, "by_qty"))
	must(t, shop.CreateCollection(ctx, "audit"))
	_, err = shop.Collection("audit").InsertOne(ctx, bson.D{{Key: "_id", Value: "a1"}, {Key: "what", Value: "old audit"}})
	must(t, err)
	must(t, client.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "shop.audit"}, {Key: "to", Value: "shop.audit_2024"}}).Err())
	// A new collection under the old name: the old one's events must not land in it.
	_, err = shop.Collection("audit").InsertOne(ctx, bson.D{{Key: "_id", Value: "a2"}, {Key: "what", Value: "new audit"}})
	must(t, err)
	_, err = client.Database("scratch").Collection("tmp").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	must(t, client.Database("scratch").Collection("tmp").Drop(ctx))
	_, err = client.Database("gone").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	must(t, client.Database("gone").Drop(ctx))
}

// A replay into an empty target gives the source's state exactly, documents and
// indexes; replaying again changes nothing.
func TestReplayEveryEventKindIsExactAndIdempotent(t *testing.T) {
	w := newWorld(t)
	everyKind(t, w.source)
	want, at := w.cut()
	if n := want.Documents(); n != 4 {
		t.Fatalf("the workload left %d documents, want 4: the test itself is wrong", n)
	}

	s := w.replay(w.target, Options{To: at})
	expect(t, w.target, want, "after one replay")
	ops := s.ByOperation()
	for op, n := range map[string]int64{"insert": 7, "update": 10, "replace": 1, "delete": 1, "create": 5, "createIndexes": 2, "dropIndexes": 1, "rename": 1, "drop": 2, "dropDatabase": 1} {
		if ops[op] != n {
			t.Errorf("%s: %d applied, want %d (all: %v)", op, ops[op], n, ops)
		}
	}

	w.replay(w.target, Options{To: at})
	expect(t, w.target, want, "after a second replay of the same range")
}

// --to stops at a cut: the state then, not later; --from continues from there.
func TestReplayStopsAtTheCutAndChains(t *testing.T) {
	w := newWorld(t)
	coll := w.source.Database("app").Collection("c")
	_, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 1}})
	must(t, err)
	first, at1 := w.cut()
	_, err = coll.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 2}}}})
	must(t, err)
	_, err = coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	second, at2 := w.cut()

	w.replay(w.target, Options{To: at1})
	expect(t, w.target, first, "replayed to the first cut")
	s := w.replay(w.target, Options{From: &at1, To: at2})
	expect(t, w.target, second, "continued from the first cut to the second")
	if n := s.AppliedEvents(); n != 2 {
		t.Errorf("the continuation applied %d events, want the 2 after the first cut", n)
	}
}

// A target ahead of the range's start (a base backup taken after --from) converges on
// the state at --to, across renames onto a re-created name, drops and type changes of a
// field.
func TestReplayFromBeforeTheBackupConverges(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	db := w.source.Database("app")
	users := db.Collection("users")
	_, err := users.InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}, {Key: "email", Value: "a@example.com"}, {Key: "p", Value: bson.D{{Key: "q", Value: 1}}}})
	must(t, err)
	_, err = users.InsertOne(ctx, bson.D{{Key: "_id", Value: "y"}, {Key: "email", Value: "b@example.com"}})
	must(t, err)
	_, start := w.cut()
	// The key moves from x to y; a field turns from a document into a number.
	_, err = users.UpdateOne(ctx, bson.D{{Key: "_id", Value: "x"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: "c@example.com"}, {Key: "p.r", Value: 2}}}})
	must(t, err)
	_, err = users.UpdateOne(ctx, bson.D{{Key: "_id", Value: "y"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: "a@example.com"}}}})
	must(t, err)
	_, err = users.UpdateOne(ctx, bson.D{{Key: "_id", Value: "x"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "p", Value: 7}}}})
	must(t, err)
	_, err = db.Collection("log").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	must(t, w.source.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "app.log"}, {Key: "to", Value: "app.log_old"}}).Err())
	_, err = db.Collection("log").InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	_, backup := w.cut()
	_, err = users.InsertOne(ctx, bson.D{{Key: "_id", Value: "z"}, {Key: "email", Value: "b@example.com"}})
	must(t, err)
	_, err = db.Collection("log_old").InsertOne(ctx, bson.D{{Key: "_id", Value: 3}})
	must(t, err)
	want, end := w.cut()

	// The base backup: the source's state at `backup`.
	w.replay(w.target, Options{To: backup})
	// Replay from before it, as a user unsure of the backup's time would.
	s := w.replay(w.target, Options{From: &start, To: end})
	expect(t, w.target, want, "replayed from before the backup's time")
	if s.ClientSideUpdates == 0 {
		t.Error("no update went read-modify-replace: p.r on a number cannot go by operators")
	}
	// From the very beginning.
	target := newTarget(t)
	w.replay(target, Options{To: backup})
	w.replay(target, Options{To: end})
	expect(t, target, want, "replayed everything onto the backup")
	// And everything again, onto the state at `end`.
	w.replay(target, Options{To: end})
	expect(t, target, want, "replayed everything again onto the final state")
}

func TestReplayRefusesAGapUnlessAllowed(t *testing.T) {
	w := newWorld(t)
	coll := w.source.Database("app").Collection("c")
	_, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	_, resumed := w.cut()
	_, err = coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	want, at := w.cut()
	// Capture lost its position and started again at `resumed`: events before it may
	// be missing.
	_, err = w.store.Collection(oplogstore.GapsCollection(sourceName)).InsertOne(t.Context(), oplogstore.Gap{
		ID: "g1", Reason: oplogstore.GapResumeTokenLost, After: bson.Timestamp{T: 1, I: 1}, Before: resumed,
		DetectedAt: bson.NewDateTimeFromTime(time.Now()), Detail: "the source's oplog rolled over",
	})
	must(t, err)

	_, err = Replay(t.Context(), w.store, w.target, Options{Source: sourceName, To: at})
	var refusal *Refusal
	if !errors.As(err, &refusal) || !strings.Contains(err.Error(), "resume_token_lost") || !strings.Contains(err.Error(), "the source's oplog rolled over") {
		t.Fatalf("replay across a gap: %v; want a refusal naming the gap", err)
	}
	if got, _ := w.target.ListDatabaseNames(t.Context(), bson.D{{Key: "name", Value: "app"}}); len(got) != 0 {
		t.Fatal("a refused replay wrote to the target")
	}
	s := w.replay(w.target, Options{To: at, AllowGap: true})
	expect(t, w.target, want, "replayed across the gap with --allow-gap")
	if len(s.Warnings) == 0 || !strings.Contains(s.Warnings[0], "resume_token_lost") {
		t.Errorf("warnings %q do not name the gap crossed", s.Warnings)
	}
	// A range from a backup taken after the gap needs no permission.
	base := newTarget(t)
	w.replay(base, Options{To: resumed, AllowGap: true})
	if s := w.replay(base, Options{From: &resumed, To: at}); s.AppliedEvents() != 1 {
		t.Errorf("replayed %d events after the gap, want 1", s.AppliedEvents())
	}
	expect(t, base, want, "replayed from a base backup taken after the gap")
}

func TestReplayRefusesToGoPastTheCheckpoint(t *testing.T) {
	w := newWorld(t)
	_, at := w.cut()
	beyond := bson.Timestamp{T: at.T + 3600}
	_, err := Replay(t.Context(), w.store, w.target, Options{Source: sourceName, To: beyond})
	var refusal *Refusal
	if !errors.As(err, &refusal) || !strings.Contains(err.Error(), "after the checkpoint") {
		t.Fatalf("replay past the checkpoint: %v; want a refusal", err)
	}
	s := w.replay(w.target, Options{To: beyond, AllowBeyondCheckpoint: true})
	if len(s.Warnings) == 0 {
		t.Error("no warning that events after the checkpoint may be missing")
	}
}

func TestDryRunCountsAndWritesNothing(t *testing.T) {
	w := newWorld(t)
	everyKind(t, w.source)
	_, at := w.cut()
	s, err := Replay(t.Context(), w.store, nil, Options{Source: sourceName, To: at, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Applied["shop.orders"]["update"]; got != 10 {
		t.Errorf("dry run counts %d updates of shop.orders, want 10 (%v)", got, s.Applied)
	}
	if got := s.Applied["gone"]["dropDatabase"]; got != 1 {
		t.Errorf("dry run counts %d dropDatabase of gone, want 1", got)
	}
	var out strings.Builder
	must(t, s.WriteText(&out))
	for _, want := range []string{"Dry run of source src", "nothing was written", "shop.orders", "update", "10"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry-run summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReplayOfSelectedNamespaces(t *testing.T) {
	w := newWorld(t)
	everyKind(t, w.source)
	want, at := w.cut()
	s := w.replay(w.target, Options{To: at, Namespaces: []string{"shop.orders"}})
	for ns := range want {
		if ns != "shop.orders" {
			delete(want, ns)
		}
	}
	expect(t, w.target, want, "replayed shop.orders only")
	if s.NotSelected == 0 {
		t.Error("no event counted as not selected")
	}
}

// collMod (modify events): a TTL index's expireAfterSeconds changed, pre- and post-images
// turned on.
func TestReplayOfCollMod(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	db := w.source.Database("app")
	_, err := db.Collection("sessions").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "at", Value: 1}}, Options: options.Index().SetName("at_ttl").SetExpireAfterSeconds(3600)})
	must(t, err)
	must(t, db.RunCommand(ctx, bson.D{{Key: "collMod", Value: "sessions"},
		{Key: "index", Value: bson.D{{Key: "name", Value: "at_ttl"}, {Key: "expireAfterSeconds", Value: 60}}}}).Err())
	if err := db.RunCommand(ctx, bson.D{{Key: "collMod", Value: "sessions"},
		{Key: "changeStreamPreAndPostImages", Value: bson.D{{Key: "enabled", Value: true}}}}).Err(); err != nil {
		t.Logf("no pre- and post-images on the test server: %v", err)
	}
	want, at := w.cut()
	s := w.replay(w.target, Options{To: at})
	expect(t, w.target, want, "replayed collMod")
	if s.ByOperation()["modify"] == 0 {
		t.Errorf("no modify event applied: %v", s.ByOperation())
	}
	var options bson.Raw
	specs, err := w.target.Database("app").ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: "sessions"}})
	must(t, err)
	if len(specs) == 1 {
		options = specs[0].Options
	}
	sourceSpecs, err := db.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: "sessions"}})
	must(t, err)
	if len(sourceSpecs) != 1 || !bytes.Equal(options, sourceSpecs[0].Options) {
		t.Errorf("the target's collection options %s, the source's %v", options, sourceSpecs)
	}
	w.replay(w.target, Options{To: at})
	expect(t, w.target, want, "replayed collMod twice")
}
