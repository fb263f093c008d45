package demo

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// load writes to the source cluster at a steady pace, as an application would: inserts,
// updates and deletes across the shop database's collections. The collector captures
// them; the simulated verifiers count them as the change events they read.
type load struct {
	inserts, updates, deletes atomic.Int64
	every                     time.Duration

	mu      sync.Mutex
	lastErr error
}

var loadCollections = []string{"orders", "users", "carts", "products"}

// run writes until ctx ends.
func (l *load) run(ctx context.Context, source *mongo.Client) {
	db := source.Database("shop")
	tick := time.NewTicker(l.every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		coll := db.Collection(loadCollections[i%len(loadCollections)])
		n := i / len(loadCollections) // the n-th write to this collection
		var err error
		switch {
		case n%10 == 9:
			_, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: n - 9}})
			l.count(err, &l.deletes)
		case n%3 == 2:
			_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: n - 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "qty", Value: 1}}}})
			l.count(err, &l.updates)
		default:
			_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: n}, {Key: "qty", Value: 1}, {Key: "at", Value: time.Now()},
				{Key: "note", Value: fmt.Sprintf("write %d of the demo's load", i)}})
			l.count(err, &l.inserts)
		}
		if err != nil && ctx.Err() == nil {
			l.mu.Lock()
			l.lastErr = err
			l.mu.Unlock()
		}
	}
}

func (l *load) count(err error, n *atomic.Int64) {
	if err == nil {
		n.Add(1)
	}
}

// perSecond is the writes the load makes in a second.
func (l *load) perSecond() float64 { return float64(time.Second) / float64(l.every) }

// err is the last write that failed, if any.
func (l *load) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

// counts are the writes so far by operation type, scaled by share (a shard's part).
func (l *load) counts(share float64) bson.D {
	scaled := func(n *atomic.Int64) int64 { return int64(share * float64(n.Load())) }
	return bson.D{{Key: "insert", Value: scaled(&l.inserts)}, {Key: "update", Value: scaled(&l.updates)}, {Key: "delete", Value: scaled(&l.deletes)}}
}
