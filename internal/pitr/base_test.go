package pitr

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
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
