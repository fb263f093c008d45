package verifierfixture

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// What a running verifier changes as it works: the generation document when a
// generation ends, a task when a worker picks it and when it finishes, the change
// readers' counts. Tasks written with Tasks keep their ID (set Task.ID to find them).

// SetGeneration moves the generation document to generation, writing it if it is not
// there yet.
func (f Fixture) SetGeneration(ctx context.Context, generation int32) error {
	_, err := f.DB.Collection("generation").UpdateOne(ctx, bson.D{{Key: "_id", Value: "generation"}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "generation", Value: generation},
			{Key: "metadataversion", Value: f.version()},
			{Key: "sourcechangereaderopt", Value: "changeStream"},
			{Key: "destinationchangereaderopt", Value: "changeStream"},
		}}}, options.UpdateOne().SetUpsert(true))
	return err
}

// StartTask marks a task processing since begin, as a worker does when it picks it.
func (f Fixture) StartTask(ctx context.Context, id bson.ObjectID, begin time.Time) error {
	_, err := f.DB.Collection("verification_tasks").UpdateByID(ctx, id, bson.D{{Key: "$set", Value: bson.D{
		{Key: "status", Value: StatusProcessing},
		{Key: "begin_time", Value: bson.NewDateTimeFromTime(begin)},
	}}})
	return err
}

// FinishTask gives a task its final status (completed, failed or mismatch) and what it
// compared: found documents and their bytes (the counts of metadata version 7; before
// it, found goes into source_documents_count).
func (f Fixture) FinishTask(ctx context.Context, id bson.ObjectID, status string, found, size int64) error {
	set := bson.D{{Key: "status", Value: status}, {Key: "source_bytes_count", Value: size}}
	if f.version() >= 7 {
		set = append(set, bson.E{Key: "found_source_documents_count", Value: found})
	} else {
		set = append(set, bson.E{Key: "source_documents_count", Value: found})
	}
	_, err := f.DB.Collection("verification_tasks").UpdateByID(ctx, id, bson.D{{Key: "$set", Value: set}})
	return err
}

// SetChangeCounts replaces the change readers' cumulative event counts in collection
// (changeReader, or changeStream before metadata v4), as the verifier persists them.
func (f Fixture) SetChangeCounts(ctx context.Context, collection string, src, dst bson.D) error {
	for id, counts := range map[string]bson.D{"srcResumeToken": src, "dstResumeToken": dst} {
		if _, err := f.DB.Collection(collection).UpdateByID(ctx, id, bson.D{{Key: "$set", Value: bson.D{{Key: "eventCounts", Value: counts}}}}); err != nil {
			return err
		}
	}
	return nil
}

// SetTaskStatus changes a task's status only: the primary task once it has created the
// others, a processRecheckQueue task once it has queued its rechecks.
func (f Fixture) SetTaskStatus(ctx context.Context, id bson.ObjectID, status string) error {
	_, err := f.DB.Collection("verification_tasks").UpdateByID(ctx, id, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: status}}}})
	return err
}
