package exporter

// What every scrape reads of the tasks, in one query: those the verifier may still
// change (the unfinished tasks of the current and the next generation, the primary
// task) and the recent ones (recentIDs).

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// steadyTasks is what one scrape's query of the tasks found.
type steadyTasks struct {
	primary    *task
	unfinished []task // of the current and the next generation
	recent     []task // nil when the totals are not kept
	overflow   bool   // more than maxWatched of either
}

// readSteady reads the unfinished tasks of generations G and G+1, the primary task and,
// with recent, the recent tasks, in one query.
func readSteady(ctx context.Context, coll *mongo.Collection, generation int64, recent *recentIDs) (steadyTasks, error) {
	branches := bson.A{
		bson.D{{Key: "generation", Value: bson.D{{Key: "$in", Value: bson.A{generation, generation + 1}}}}, {Key: "status", Value: bson.D{{Key: "$in", Value: unfinishedStatuses}}}},
		bson.D{{Key: "generation", Value: nil}, {Key: "type", Value: taskPrimary}},
	}
	limit := maxWatched + 2
	if recent != nil {
		branches = append(branches, recent.filter()...)
		limit = 2*maxWatched + 2
	}
	found, err := selectTasks(ctx, coll, bson.D{{Key: "$or", Value: branches}}, limit)
	if err != nil {
		return steadyTasks{}, err
	}
	var s steadyTasks
	for i := range found {
		f := found[i]
		switch {
		case !f.hasGeneration && !f.malformed && f.key.Type == taskPrimary:
			if s.primary == nil {
				s.primary = &found[i]
			}
		case f.hasGeneration && f.unfinished && (f.generation == generation || f.generation == generation+1):
			s.unfinished = append(s.unfinished, f)
		}
		if recent != nil && recent.holds(f.id) {
			s.recent = append(s.recent, f)
		}
	}
	s.overflow = len(found) == limit || len(s.unfinished) > maxWatched || len(s.recent) > maxWatched
	return s, nil
}

// readPrimary reads the primary task (nil when there is none).
func readPrimary(ctx context.Context, coll *mongo.Collection) (*task, error) {
	found, err := selectTasks(ctx, coll, bson.D{{Key: "generation", Value: nil}, {Key: "type", Value: taskPrimary}}, 1)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	return &found[0], nil
}

// selectTasks reads the tasks filter selects, at most limit (0: all). It aggregates
// rather than finds: the driver leaves maxTimeMS off a find whose cursor it hands over,
// and these queries must stop on the server when the scrape gives up.
func selectTasks(ctx context.Context, coll *mongo.Collection, filter bson.D, limit int) ([]task, error) {
	pipeline := mongo.Pipeline{{{Key: "$match", Value: filter}}}
	if limit > 0 {
		pipeline = append(pipeline, bson.D{{Key: "$limit", Value: limit}})
	}
	pipeline = append(pipeline, bson.D{{Key: "$project", Value: taskProjection}})
	cursor, err := aggregate(ctx, coll.Database(), coll.Name(), pipeline)
	if err != nil {
		return nil, fmt.Errorf("reading verification tasks: %w", err)
	}
	defer cursor.Close(context.WithoutCancel(ctx))
	var out []task
	for cursor.Next(ctx) {
		if t, _, ok := decodeTask(cursor.Current); ok {
			out = append(out, t)
		}
	}
	if err := cursor.Err(); err != nil {
		return nil, fmt.Errorf("reading verification tasks: %w", err)
	}
	return out, nil
}

// unfinishedSums sums the unfinished tasks of the current generation, and the primary
// task: what a read whose running totals are not complete knows of the tasks.
func unfinishedSums(steady steadyTasks, generation int64) map[taskKey]taskSums {
	sums := map[taskKey]taskSums{}
	for _, u := range steady.unfinished {
		if !u.malformed && u.generation == generation {
			sums[u.key] = sums[u.key].plus(u.sums)
		}
	}
	if steady.primary != nil {
		sums[steady.primary.key] = sums[steady.primary.key].plus(steady.primary.sums)
	}
	return sums
}

// oldestProcessing finds when the longest-running task started: a task processing for
// hours is a stalled verifier. Tasks of G+1 may start before the generation document
// says G+1. nil when the steady read did not hold every unfinished task
// (readOldestProcessing then asks the server).
func oldestProcessing(steady steadyTasks) *float64 {
	var oldest *float64
	for _, t := range append(slices.Clip(steady.unfinished), nonNil(steady.primary)...) {
		if t.key.Status == statusProcessing && t.begin != nil && (oldest == nil || *t.begin < *oldest) {
			oldest = t.begin
		}
	}
	return oldest
}

func nonNil(t *task) []task {
	if t == nil {
		return nil
	}
	return []task{*t}
}
