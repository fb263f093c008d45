package verifierfixture

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// The writes of migration-verifier v0.2.1 that rewrite or delete what it wrote before,
// restated from its source (internal/verifier/ of github.com/mongodb-labs/migration-verifier).

func (f Fixture) tasks() *mongo.Collection { return f.DB.Collection("verification_tasks") }

// backToAdded is how reset.go sets a task back: status added, begin_time removed.
var backToAdded = bson.D{
	{Key: "$set", Value: bson.D{{Key: "status", Value: StatusAdded}}},
	{Key: "$unset", Value: bson.D{{Key: "begin_time", Value: 1}}},
}

// Restart does what a verifier that starts again on this database does to its tasks
// (ResetInProgressTasks, reset.go), in its order:
//   - the primary task unfinished: every other task is deleted, and nothing else done
//     (handleIncompletePrimary);
//   - each processing verifyCollection task is set back to added, after the
//     verifyDocuments tasks of its namespace are deleted when it is of generation 0
//     (resetCollectionTasksIfNeeded);
//   - a processing processRecheckQueue task is set back to added, after every
//     verifyDocuments task of its generation is deleted
//     (resetProcessRecheckQueueTasksIfNeeded);
//   - the processing verifyDocuments tasks left are set back to added
//     (resetDocumentTasksIfNeeded).
//
// It does not create the primary task again: CreatePrimaryTaskIfNeeded (check.go) upserts
// it, so an unfinished one stays as it is, and the verifyCollection tasks are not
// created again either.
func (f Fixture) Restart(ctx context.Context) error {
	primaries, err := f.find(ctx, bson.D{{Key: "type", Value: TaskPrimary}, {Key: "status", Value: bson.D{{Key: "$ne", Value: StatusCompleted}}}})
	if err != nil {
		return err
	}
	if len(primaries) > 0 {
		_, err := f.tasks().DeleteMany(ctx, bson.D{{Key: "type", Value: bson.D{{Key: "$ne", Value: TaskPrimary}}}})
		return err
	}
	collections, err := f.find(ctx, bson.D{{Key: "type", Value: TaskVerifyCollection}, {Key: "status", Value: StatusProcessing}})
	if err != nil {
		return err
	}
	for _, c := range collections {
		if generation, _ := c.Lookup("generation").AsInt64OK(); generation == 0 {
			namespace := c.Lookup("query_filter", "namespace")
			if _, err := f.tasks().DeleteMany(ctx, bson.D{{Key: "type", Value: TaskVerifyDocuments}, {Key: "query_filter.namespace", Value: namespace}}); err != nil {
				return err
			}
		}
		if _, err := f.tasks().UpdateOne(ctx, bson.D{{Key: "_id", Value: c.Lookup("_id")}}, backToAdded); err != nil {
			return err
		}
	}
	queues, err := f.find(ctx, bson.D{{Key: "type", Value: TaskProcessRecheckQueue}, {Key: "status", Value: StatusProcessing}})
	if err != nil {
		return err
	}
	if len(queues) > 1 {
		return fmt.Errorf("%d processing %s tasks: the verifier refuses to start with more than one", len(queues), TaskProcessRecheckQueue)
	}
	for _, q := range queues {
		if _, err := f.tasks().DeleteMany(ctx, bson.D{{Key: "generation", Value: q.Lookup("generation")}, {Key: "type", Value: TaskVerifyDocuments}}); err != nil {
			return err
		}
		if _, err := f.tasks().UpdateOne(ctx, bson.D{{Key: "_id", Value: q.Lookup("_id")}}, backToAdded); err != nil {
			return err
		}
	}
	_, err = f.tasks().UpdateMany(ctx, bson.D{{Key: "type", Value: TaskVerifyDocuments}, {Key: "status", Value: StatusProcessing}}, backToAdded)
	return err
}

// Clean does what --clean does: the verifier drops its metadata database, then creates its
// indexes again at once (CheckDriver, then AddMetaIndexes and createMismatchesCollection),
// so the database exists again, empty, milliseconds later.
func (f Fixture) Clean(ctx context.Context) error {
	if err := f.DB.Drop(ctx); err != nil {
		return err
	}
	_, err := f.tasks().Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "generation", Value: 1}, {Key: "type", Value: 1}, {Key: "status", Value: 1}, {Key: "documents_count", Value: 1}}},
		{Keys: bson.D{{Key: "srctimestamp", Value: -1}}},
		{Keys: bson.D{{Key: "dsttimestamp", Value: -1}}},
	})
	if err != nil {
		return err
	}
	_, err = f.DB.Collection("mismatches").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{
		{Key: "generation", Value: 1}, {Key: "taskType", Value: 1}, {Key: "detail.mismatchHistory.durationMS", Value: -1}, {Key: "detail.id", Value: 1},
	}})
	return err
}

// Retry does what the verifier does before it runs a task again after an error (up to
// five attempts, processAnyTask in check.go): it deletes the mismatches the task recorded
// (clearMismatchesForTask, mismatches.go). The task stays processing.
func (f Fixture) Retry(ctx context.Context, generation int32, taskType string, taskID bson.ObjectID) error {
	_, err := f.DB.Collection("mismatches").DeleteMany(ctx, bson.D{
		{Key: "generation", Value: generation}, {Key: "taskType", Value: taskType}, {Key: "taskID", Value: taskID},
	})
	return err
}

func (f Fixture) find(ctx context.Context, filter bson.D) ([]bson.Raw, error) {
	cursor, err := f.tasks().Find(ctx, filter)
	if err != nil {
		return nil, err
	}
	var docs []bson.Raw
	err = cursor.All(ctx, &docs)
	return docs, err
}
