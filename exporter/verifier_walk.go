package exporter

// The first reading of a verifier's tasks and mismatches, in pieces. A verification can
// hold millions of tasks: one aggregation over all of them takes longer than a scrape
// may, and a scrape that gives up and starts again at the next one never gets anywhere.
// So the exporter reads a collection in order of _id, a chunk at a time, each chunk one
// aggregation that sums what it reads, and keeps where it got to: a scrape reads chunks
// while its deadline allows, and the next one goes on from there.

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// chunkSizes are in documents: a walk starts with first and adapts each chunk to take
// about a quarter of the scrape's time, between min and max. A MongoDB server reads a
// chunk through the _id index, in order: it neither sorts nor reads past the chunk.
type chunkSizes struct{ first, min, max int }

// walkChunks are the sizes of chunks, and walkLimit, when above 0, the most chunks one
// read walks: variables so that tests can read small totals over several scrapes.
var (
	walkChunks = chunkSizes{first: 10_000, min: 500, max: 200_000}
	walkLimit  = 0
)

// idWalk is one reading of a collection's documents whose _id is an ObjectId below
// upper (those above are read one by one at every scrape: recentIDs), in order of _id.
// Documents inserted behind it are not its business: the verifier makes an ObjectId as
// it inserts a document, so what is inserted after the walk began is above upper.
type idWalk struct {
	next    bson.ObjectID // the chunk after this _id; the zero ObjectId before the first
	started bool          // whether next was read: the first chunk includes the zero ObjectId
	upper   bson.ObjectID
	chunk   int     // documents per chunk
	read    float64 // documents read so far
	total   float64 // the collection's estimated size when the walk began
	done    bool
}

func newIDWalk(upper bson.ObjectID, total float64) *idWalk {
	return &idWalk{upper: upper, chunk: walkChunks.first, total: total}
}

// readBudget is how long a read may go on with its walks: until its deadline, less a
// reserve for what the scrape still does after them, a chunk of about chunkFor at a
// time. Without a deadline (a test's reference reading), walks go to their end.
type readBudget struct {
	deadline time.Time // zero: none
	reserve  time.Duration
	chunkFor time.Duration // what a chunk should take
}

func budgetOf(ctx context.Context) readBudget {
	deadline, ok := ctx.Deadline()
	if !ok {
		return readBudget{}
	}
	total := time.Until(deadline)
	return readBudget{deadline: deadline, reserve: total / 4, chunkFor: total / 4}
}

// chunkContext gives the context of the next chunk, or ok false when too little time is
// left for one.
func (b readBudget) chunkContext(ctx context.Context) (context.Context, context.CancelFunc, bool) {
	if b.deadline.IsZero() {
		return ctx, func() {}, true
	}
	end := b.deadline.Add(-b.reserve)
	if time.Until(end) < b.chunkFor {
		return nil, nil, false
	}
	chunkCtx, cancel := context.WithDeadline(ctx, end)
	return chunkCtx, cancel, true
}

// walkStages builds the stages that follow a chunk's selection: they group its
// documents and add, in every row, count (the documents in the row) and last (their
// largest _id).
type walkStages func() mongo.Pipeline

// run reads chunks of coll while the budget allows, handing the rows of each to apply
// (all of a chunk's rows at once, so that a chunk counts whole or not at all). A chunk
// that runs out of time is dropped, and the next one made smaller; any other error ends
// the read.
func (w *idWalk) run(ctx context.Context, coll *mongo.Collection, budget readBudget, stages walkStages, apply func(rows []bson.Raw)) error {
	for chunks := 0; !w.done && (walkLimit == 0 || chunks < walkLimit); chunks++ {
		chunkCtx, cancel, ok := budget.chunkContext(ctx)
		if !ok {
			return nil
		}
		started := time.Now()
		rows, err := w.readChunk(chunkCtx, coll, stages)
		cancel()
		if err != nil {
			// Out of the chunk's time: the driver's deadline, or the server's maxTimeMS.
			if (chunkCtx.Err() != nil || mongo.IsTimeout(err)) && ctx.Err() == nil {
				w.chunk = max(walkChunks.min, w.chunk/4)
				return nil
			}
			return err
		}
		var count float64
		last := w.next
		for _, row := range rows {
			count += numberOrZero(row, "count")
			if id, ok := row.Lookup("last").ObjectIDOK(); ok && before(last, id) {
				last = id
			}
		}
		apply(rows)
		w.read += count
		w.next, w.started = last, true
		w.done = count < float64(w.chunk)
		w.resize(time.Since(started), budget.chunkFor)
	}
	return nil
}

func (w *idWalk) readChunk(ctx context.Context, coll *mongo.Collection, stages walkStages) ([]bson.Raw, error) {
	from := "$gt"
	if !w.started {
		from = "$gte"
	}
	pipeline := append(mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "_id", Value: bson.D{{Key: from, Value: w.next}, {Key: "$lt", Value: w.upper}}}}}},
		{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}},
		{{Key: "$limit", Value: w.chunk}},
	}, stages()...)
	cursor, err := aggregate(ctx, coll.Database(), coll.Name(), pipeline)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", coll.Name(), err)
	}
	defer cursor.Close(context.WithoutCancel(ctx))
	var rows []bson.Raw
	for cursor.Next(ctx) {
		rows = append(rows, append(bson.Raw(nil), cursor.Current...))
	}
	if err := cursor.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", coll.Name(), err)
	}
	return rows, nil
}

// resize sets the next chunk's size so that it takes about target (at most 4 times the
// last one, at least half of it); without a target, chunks grow to the largest.
func (w *idWalk) resize(took, target time.Duration) {
	factor := 4.0
	if target > 0 && took > 0 {
		factor = min(4, max(0.5, float64(target)/float64(took)))
	}
	w.chunk = min(walkChunks.max, max(walkChunks.min, int(float64(w.chunk)*factor)))
}

// ratio is how much of the collection the walk has read: an estimate, below 1 until it
// is done.
func (w *idWalk) ratio() float64 {
	switch {
	case w.done:
		return 1
	case w.total <= 0:
		return 0
	}
	return min(0.99, w.read/w.total)
}

// ahead tells whether the walk has yet to read the document with this _id.
func (w *idWalk) ahead(id bson.RawValue) bool {
	oid, ok := id.ObjectIDOK()
	if !ok || w.done || !before(oid, w.upper) {
		return false
	}
	return !w.started || before(w.next, oid)
}
