package pitr

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/pitr/pitrtest"
)

// restoredPlainly makes target a base backup at `at` as a plain mongorestore leaves it:
// the source's collections and documents, under UUIDs of the target's own, and nothing
// that says which source collection each one was.
func (w *world) restoredPlainly(target *mongo.Client, at bson.Timestamp) {
	w.t.Helper()
	w.replay(target, Options{To: at})
	must(w.t, target.Database(ReplayDatabase).Drop(w.t.Context()))
}

// A replay from before a plainly restored base, across a rename onto a name made again:
// orders is renamed to archive and a new orders made before the base's time. The events
// of the old orders belong in archive, whatever the target's UUIDs.
func TestReplayFromBeforeAPlainRestoreAcrossARenameOntoAReusedName(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	shop := w.source.Database("shop")
	orders := shop.Collection("orders")
	_, err := orders.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "old"}}})
	must(t, err)
	_, start := w.cut()
	_, err = orders.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: "old"}})
	must(t, err)
	must(t, w.source.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "shop.orders"}, {Key: "to", Value: "shop.archive"}}).Err())
	_, err = orders.InsertOne(ctx, bson.D{{Key: "_id", Value: 3}, {Key: "v", Value: "new"}})
	must(t, err)
	_, backup := w.cut()
	_, err = orders.InsertOne(ctx, bson.D{{Key: "_id", Value: 4}, {Key: "v", Value: "new"}})
	must(t, err)
	_, err = shop.Collection("archive").UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "archived", Value: true}}}})
	must(t, err)
	want, end := w.cut()

	w.restoredPlainly(w.target, backup)
	w.replay(w.target, Options{From: &start, To: end})
	expect(t, w.target, want, "replayed from before a plain restore")
}

// Dropped and made again, or replaced by a rename over it ($out does so), a name's
// later collection is made within the range: replayed from before a plain restore, the
// events rebuild it whole, whichever of them the target holds.
func TestReplayFromBeforeAPlainRestoreAcrossARecreationAndAnOut(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	db := w.source.Database("app")
	insert := func(coll string, id int, v string) {
		t.Helper()
		_, err := db.Collection(coll).InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "v", Value: v}})
		must(t, err)
	}
	insert("events", 1, "first")
	insert("report", 1, "first")
	_, start := w.cut()
	insert("events", 2, "first")
	must(t, db.Collection("events").Drop(ctx))
	insert("events", 3, "second")
	// As $out: a new collection written, then renamed over the old one.
	insert("tmp.agg_out.1", 1, "second")
	must(t, w.source.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "app.tmp.agg_out.1"},
		{Key: "to", Value: "app.report"}, {Key: "dropTarget", Value: true}}).Err())
	_, backup := w.cut()
	insert("events", 4, "second")
	insert("report", 2, "second")
	want, end := w.cut()

	for _, base := range []struct {
		name string
		at   bson.Timestamp
	}{{"before the changes", start}, {"after them", backup}} {
		target := newTarget(t)
		w.restoredPlainly(target, base.at)
		w.replay(target, Options{From: &start, To: end})
		expect(t, target, want, "replayed from before a plain restore taken "+base.name)
	}
}

// Two collections that swap names leave the target's names the source's both before and
// after: a plain restore cannot say which is which, and replay refuses before it writes.
func TestReplayRefusesAPlainRestoreItCannotPlace(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	db := w.source.Database("app")
	_, err := db.Collection("a").InsertOne(ctx, bson.D{{Key: "_id", Value: "from a"}})
	must(t, err)
	_, err = db.Collection("b").InsertOne(ctx, bson.D{{Key: "_id", Value: "from b"}})
	must(t, err)
	_, start := w.cut()
	rename := func(from, to string) {
		t.Helper()
		must(t, w.source.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "app." + from}, {Key: "to", Value: "app." + to}}).Err())
	}
	rename("a", "swap")
	rename("b", "a")
	rename("swap", "b")
	_, backup := w.cut()
	_, err = db.Collection("a").InsertOne(ctx, bson.D{{Key: "_id", Value: "later"}})
	must(t, err)
	_, end := w.cut()

	w.restoredPlainly(w.target, backup)
	before, err := pitrtest.Read(ctx, w.target)
	must(t, err)
	_, err = Replay(ctx, w.store, w.target, Options{Source: sourceName, From: &start, To: end})
	var refusal *Refusal
	if !errors.As(err, &refusal) {
		t.Fatalf("replay of a range where two collections swap names, onto a plain restore: %v; want a refusal", err)
	}
	for _, want := range []string{"app.a", "--preserveUUID", "start the replay at the base backup's exact time", "renamed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q:\n%v", want, err)
		}
	}
	expect(t, w.target, before, "after the refusal")
	if n, _ := w.target.Database(ReplayDatabase).Collection("collections").CountDocuments(ctx, bson.D{}); n != 0 {
		t.Errorf("the refused replay recorded %d collection mappings", n)
	}
	// Starting at the base's exact time needs no guess.
	w.replay(w.target, Options{From: &backup, To: end})
}

// A store of the old collector has no collection UUIDs: events go by name, which
// cannot place a rename onto a name made again across a plain restore; replay refuses
// that, and replays from the base's exact time.
func TestReplayOfAnOldStoreRefusesARenameOntoAReusedNameFromBeforeTheBase(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	orders := w.source.Database("shop").Collection("orders")
	_, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	_, start := w.cut()
	must(t, w.source.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "shop.orders"}, {Key: "to", Value: "shop.archive"}}).Err())
	_, err = orders.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	_, backup := w.cut()
	_, err = orders.InsertOne(ctx, bson.D{{Key: "_id", Value: 3}})
	must(t, err)
	want, end := w.cut()
	copyAsOldStore(t, w, "old", func(int) bool { return false })

	w.restoredPlainly(w.target, backup)
	_, err = Replay(ctx, w.store, w.target, Options{Source: "old", From: &start, To: end})
	var refusal *Refusal
	if !errors.As(err, &refusal) || !strings.Contains(err.Error(), "no collection UUIDs") {
		t.Fatalf("replay of an old store from before a plain restore, across a rename onto a reused name: %v; want a refusal", err)
	}
	if _, err := Replay(ctx, w.store, w.target, Options{Source: "old", From: &backup, To: end}); err != nil {
		t.Fatal(err)
	}
	expect(t, w.target, want, "replayed from the base's exact time")
}

// A target without a collection the source kept (a base restored in part) cannot be
// replayed to the source's state: replay stops at that collection's first event rather
// than make it again from the range's events alone; --namespace selects what the base
// holds.
func TestReplayOntoABaseWithoutACollectionStops(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	db := w.source.Database("app")
	for _, coll := range []string{"a", "b"} {
		_, err := db.Collection(coll).InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
		must(t, err)
	}
	_, start := w.cut()
	for _, coll := range []string{"a", "b"} {
		_, err := db.Collection(coll).InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
		must(t, err)
	}
	want, end := w.cut()
	w.restoredPlainly(w.target, start)
	must(t, w.target.Database("app").Collection("b").Drop(ctx))

	_, err := Replay(ctx, w.store, w.target, Options{Source: sourceName, From: &start, To: end})
	if err == nil || !strings.Contains(err.Error(), "app.b") || !strings.Contains(err.Error(), "holds no collection") {
		t.Fatalf("replay onto a base without app.b: %v; want it to stop there", err)
	}
	w.replay(w.target, Options{From: &start, To: end, Namespaces: []string{"app.a"}})
	delete(want, "app.b")
	expect(t, w.target, want, "replayed the part of the base restored")
}
