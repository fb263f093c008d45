package exporter

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// recheckTotal is the documents rechecked in generations 1 to before-1, which are all
// finished.
type recheckTotal struct {
	before int64
	done   float64
}

// countRechecks reports the documents rechecked in every generation after the first
// (the verifier's totalRechecksDone, countAllRechecks in progress.go) as a counter. That
// sum goes down when the verifier deletes finished recheck tasks as it starts again
// (reset.go): the counter adds back what they held, so that it never goes down within a
// verification and goes on counting what is rechecked.
func (r *verifierReader) countRechecks(m *verifierMetadata) {
	if *m.rechecksDone < r.rechecksLast {
		r.rechecksRemoved += r.rechecksLast - *m.rechecksDone
	}
	r.rechecksLast = *m.rechecksDone
	reported := *m.rechecksDone + r.rechecksRemoved
	m.rechecksReported = &reported
}

// readSummedRechecks sums the documents rechecked: the finished generations once, the
// current one from its task sums. It also finds the cluster time of the newest change a
// finished recheck task covered on each side, as the verifier recalls it when it starts
// (recallLastRecheckedOpTimes, check.go) and advances it as each task finishes.
func (r *verifierReader) readSummedRechecks(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	if m.generation > 0 {
		from := int64(1)
		total := r.rechecks
		switch {
		case total == nil || total.before > m.generation:
			total = &recheckTotal{before: 1}
		default:
			from = total.before
		}
		if from < m.generation {
			done, err := r.sumRechecks(ctx, db, m, from, m.generation)
			if err != nil {
				return err
			}
			total = &recheckTotal{before: m.generation, done: total.done + done}
		}
		r.rechecks = total
		done := total.done
		for _, status := range []string{statusCompleted, statusFailed} {
			done += m.documents(m.tasks[taskKey{taskVerifyDocuments, status}])
		}
		m.rechecksDone = &done
	} else {
		zero := 0.0
		m.rechecksDone = &zero
	}

	m.lastRechecked = map[string]*float64{}
	tasks := db.Collection(tasksCollection)
	for role, field := range map[string]string{"source": "srctimestamp", "destination": "dsttimestamp"} {
		raw, err := tasks.FindOne(ctx, bson.D{
			{Key: "generation", Value: bson.D{{Key: "$gt", Value: 0}}},
			{Key: "type", Value: taskVerifyDocuments},
			{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{statusCompleted, statusFailed}}}},
			{Key: field, Value: bson.D{{Key: "$type", Value: "timestamp"}}},
		},
			options.FindOne().SetSort(bson.D{{Key: field, Value: -1}}).SetProjection(bson.D{{Key: field, Value: 1}})).Raw()
		if err == mongo.ErrNoDocuments {
			continue
		}
		if err != nil {
			return fmt.Errorf("finding the newest %s: %w", field, err)
		}
		m.lastRechecked[role] = timeSeconds(raw.Lookup(field))
	}
	return nil
}

// sumRechecks sums the documents of the finished recheck tasks of generations from to
// before-1 (all four fields are in the verifier's task index).
func (r *verifierReader) sumRechecks(ctx context.Context, db *mongo.Database, m *verifierMetadata, from, before int64) (float64, error) {
	cursor, err := aggregate(ctx, db, tasksCollection, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{
			{Key: "generation", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lt", Value: before}}},
			{Key: "type", Value: taskVerifyDocuments},
			{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{statusCompleted, statusFailed}}}},
		}}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "done", Value: bson.D{{Key: "$sum", Value: "$" + m.documentsField()}}}}}},
	})
	if err != nil {
		return 0, fmt.Errorf("summing rechecks: %w", err)
	}
	defer cursor.Close(context.WithoutCancel(ctx))
	done := 0.0
	for cursor.Next(ctx) {
		done += numberOrZero(cursor.Current, "done")
	}
	if err := cursor.Err(); err != nil {
		return 0, fmt.Errorf("summing rechecks: %w", err)
	}
	return done, nil
}
