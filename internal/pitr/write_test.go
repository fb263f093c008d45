package pitr

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/pitr/pitrtest"
)

// commandCounter counts the commands a client sends, by name.
type commandCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *commandCounter) started(_ context.Context, e *event.CommandStartedEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[e.CommandName]++
}

func (c *commandCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := c.counts
	c.counts = map[string]int{}
	return counts
}

// countedTarget is an empty target cluster whose client counts its commands.
func countedTarget(t *testing.T) (*mongo.Client, *commandCounter) {
	t.Helper()
	counter := &commandCounter{counts: map[string]int{}}
	uri := mongotest.New(t, "replay writes to a target of its own", mongotest.Options{}).URI()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(&event.CommandMonitor{Started: counter.started}))
	must(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client, counter
}

// A range of inserts replayed onto a target that holds part of them already (a plain
// restore of a later time: some documents as inserted, some changed since, some not
// there yet) converges exactly, and twice: the documents not there go in unordered
// insert commands, those there are applied again alone, each as its event says.
func TestInsertsPartlyOnTheTargetConverge(t *testing.T) {
	w := newWorld(t)
	coll := w.source.Database("shop").Collection("orders")
	insert := func(from, to int) {
		var docs []any
		for i := from; i <= to; i++ {
			docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: "inserted"}, {Key: "n", Value: i}})
		}
		_, err := coll.InsertMany(t.Context(), docs)
		must(t, err)
	}
	update := func(every, upTo int, v string) {
		for i := every; i <= upTo; i += every {
			_, err := coll.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: i}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: v}}}})
			must(t, err)
		}
	}
	insert(1, 200)
	update(3, 150, "changed")
	insert(201, 250)
	_, base := w.cut()
	update(5, 250, "changed again")
	insert(251, 400)
	want, to := w.cut()

	target, commands := countedTarget(t)
	w.replay(target, Options{To: base})
	must(t, target.Database(ReplayDatabase).Drop(t.Context())) // as mongorestore leaves it
	commands.take()
	for run := 1; run <= 2; run++ {
		w.replay(target, Options{To: to})
		expect(t, target, want, fmt.Sprintf("replay %d from before the base", run))
	}
	// The fresh documents went a thousand to a command: the inserts of the first run,
	// before the target was found ahead, and none in the second (upserts then).
	if n := commands.take()["insert"]; n == 0 || n > 2 {
		t.Errorf("%d insert commands, want 1 or 2", n)
	}
}

// A batch mixing inserts, updates and deletes of different documents goes in a few
// commands, one per kind, each document's writes in order; on a collection with a
// unique index the source's order is kept, as a key one document frees can be the key
// the next one takes.
func TestMixedWritesGoInRunsOfOneKind(t *testing.T) {
	w := newWorld(t)
	free := w.source.Database("shop").Collection("free")
	for i := range 100 {
		ops := []func() error{
			func() error {
				_, err := free.InsertOne(t.Context(), bson.D{{Key: "_id", Value: i}, {Key: "n", Value: 0}})
				return err
			},
			func() error {
				_, err := free.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: i / 2}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
				return err
			},
			func() error { _, err := free.DeleteOne(t.Context(), bson.D{{Key: "_id", Value: i - 5}}); return err },
		}
		if i%7 == 0 { // a document deleted and inserted again, in one batch
			ops = append(ops, func() error {
				_, err := free.InsertOne(t.Context(), bson.D{{Key: "_id", Value: i - 5}, {Key: "again", Value: true}})
				return err
			})
		}
		for _, op := range ops {
			must(t, op())
		}
	}
	keyed := w.source.Database("shop").Collection("keyed")
	_, err := keyed.Indexes().CreateOne(t.Context(), mongo.IndexModel{Keys: bson.D{{Key: "k", Value: 1}}, Options: options.Index().SetUnique(true)})
	must(t, err)
	for i := range 50 {
		// i takes the key i-1 freed just before: in another order, the keys collide.
		if i > 0 {
			_, err := keyed.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: i - 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "k", Value: -i}}}})
			must(t, err)
		}
		_, err := keyed.InsertOne(t.Context(), bson.D{{Key: "_id", Value: i}, {Key: "k", Value: "key"}})
		must(t, err)
	}
	want, to := w.cut()

	target, commands := countedTarget(t)
	s := w.replay(target, Options{To: to, Namespaces: []string{"shop.free"}})
	expect(t, target, pitrtest.State{"shop.free": want["shop.free"]}, "the collection without a unique index")
	if c := commands.take(); c["insert"]+c["update"]+c["delete"] > 6 {
		t.Errorf("%v: %d events of one batch went in more commands than one per kind, twice", c, s.Events-s.NotSelected)
	}
	fresh := newTarget(t)
	s = w.replay(fresh, Options{To: to, Namespaces: []string{"shop.keyed"}})
	expect(t, fresh, pitrtest.State{"shop.keyed": want["shop.keyed"]}, "the collection with a unique index")
	if s.Parked != 0 {
		t.Errorf("%d documents set aside: the writes of the collection with a unique index were reordered", s.Parked)
	}
}
