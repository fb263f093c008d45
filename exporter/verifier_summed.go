package exporter

// The figures summed on the server at every scrape, when running totals are not kept
// (more than maxWatched tasks or mismatches to read one by one): what the verifier's
// indexes select, each figure its own query.

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// taskGroupPipeline sums the tasks match selects by type and status, and by namespace
// too when byNamespace.
func taskGroupPipeline(match bson.D, byNamespace bool) mongo.Pipeline {
	sum := func(field string) bson.D { return bson.D{{Key: "$sum", Value: "$" + field}} }
	id := bson.D{{Key: "type", Value: "$type"}, {Key: "status", Value: "$status"}}
	if byNamespace {
		id = append(id, bson.E{Key: "namespace", Value: "$query_filter.namespace"})
	}
	return mongo.Pipeline{
		{{Key: "$match", Value: match}},
		{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: id},
			{Key: "count", Value: bson.D{{Key: "$sum", Value: 1}}},
			{Key: "documents", Value: sum("documents_count")},
			{Key: "found", Value: sum("found_source_documents_count")},
			{Key: "bytes", Value: sum("source_bytes_count")},
			{Key: "legacy", Value: sum("source_documents_count")}, // metadata v6 and older
		}}},
	}
}

// taskGroups is the result of taskGroupPipeline.
type taskGroups struct {
	sums       map[taskKey]taskSums
	namespaces namespaceStates // when grouped by namespace
	malformed  float64
}

func readTaskGroups(ctx context.Context, db *mongo.Database, match bson.D, byNamespace bool, problems *problemList) (*taskGroups, error) {
	cursor, err := aggregate(ctx, db, tasksCollection, taskGroupPipeline(match, byNamespace))
	if err != nil {
		return nil, fmt.Errorf("summing verification tasks: %w", err)
	}
	defer cursor.Close(context.WithoutCancel(ctx))
	g := &taskGroups{sums: map[taskKey]taskSums{}, namespaces: namespaceStates{}}
	for cursor.Next(ctx) {
		key, namespace, sums, problem := decodeTaskGroup(cursor.Current)
		if problem != "" {
			g.malformed += sums.count
			problems.add(problem)
			continue
		}
		g.sums[key] = g.sums[key].plus(sums)
		if byNamespace {
			g.namespaces.add(key, namespace, sums.count)
		}
	}
	if err := cursor.Err(); err != nil {
		return nil, fmt.Errorf("summing verification tasks: %w", err)
	}
	return g, nil
}

// currentGeneration selects the current generation's tasks and the primary task (which
// has no generation: {$in: [G, null]} matches it, and uses the generation index).
func currentGeneration(m *verifierMetadata) bson.E {
	return bson.E{Key: "generation", Value: bson.D{{Key: "$in", Value: bson.A{m.generation, nil}}}}
}

// readSummedTasks sums the current generation's tasks (and the primary task) on the
// server, and finds the newest task and the last one picked.
func (r *verifierReader) readSummedTasks(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	g, err := readTaskGroups(ctx, db, bson.D{currentGeneration(m)}, false, &m.problems)
	if err != nil {
		return err
	}
	m.tasks, m.malformed = g.sums, g.malformed
	tasks := db.Collection(tasksCollection)
	newest, err := newestTaskID(ctx, tasks)
	if err != nil {
		return err
	}
	m.newestTask = objectIDSeconds(newest)
	m.lastBegin, err = lastBegin(ctx, tasks, bson.D{{Key: "generation", Value: m.generation}})
	return err
}

// newestTaskID finds the largest ObjectId among task _ids (the _id index; zero when none).
func newestTaskID(ctx context.Context, coll *mongo.Collection) (bson.ObjectID, error) {
	raw, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$type", Value: "objectId"}}}},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}}).SetProjection(bson.D{{Key: "_id", Value: 1}})).Raw()
	switch {
	case err == mongo.ErrNoDocuments:
		return bson.ObjectID{}, nil
	case err != nil:
		return bson.ObjectID{}, fmt.Errorf("finding the newest task: %w", err)
	}
	return raw.Lookup("_id").ObjectID(), nil
}

// lastBegin finds when the verifier last picked one of the tasks filter selects, which
// are of one generation (begin_time has no index: the generation's tasks are read, as
// when they are summed).
func lastBegin(ctx context.Context, coll *mongo.Collection, filter bson.D) (*float64, error) {
	raw, err := coll.FindOne(ctx, append(slices.Clip(filter), bson.E{Key: "begin_time", Value: bson.D{{Key: "$type", Value: "date"}}}),
		options.FindOne().SetSort(bson.D{{Key: "begin_time", Value: -1}}).SetProjection(bson.D{{Key: "begin_time", Value: 1}})).Raw()
	switch {
	case err == mongo.ErrNoDocuments:
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("finding the last task picked: %w", err)
	}
	return timeSeconds(raw.Lookup("begin_time")), nil
}

// newer returns the later of two times; nil when both are.
func newer(a, b *float64) *float64 {
	if a == nil || (b != nil && *b > *a) {
		return b
	}
	return a
}

// objectIDSeconds is the time an ObjectId holds; nil for the zero one.
func objectIDSeconds(id bson.ObjectID) *float64 {
	if id.IsZero() {
		return nil
	}
	seconds := float64(id.Timestamp().Unix())
	return &seconds
}

// initialFigures are generation 0's sums, which do not change once a later generation
// has begun, and what was wrong with the documents they were read from (reported at every
// scrape, so the log does not say it cleared).
type initialFigures struct {
	sums     map[taskKey]taskSums
	problems problemList
}

// readInitial provides generation 0's figures: the current ones during the initial
// check, then a copy read once.
func (r *verifierReader) readInitial(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	if m.generation == 0 {
		m.initial = m.tasks
		return nil
	}
	if r.initial == nil {
		var problems problemList
		g, err := readTaskGroups(ctx, db, bson.D{
			{Key: "generation", Value: 0},
			{Key: "type", Value: bson.D{{Key: "$in", Value: bson.A{taskVerifyDocuments, taskVerifyCollection}}}},
		}, false, &problems)
		if err != nil {
			return err
		}
		r.initial = &initialFigures{sums: g.sums, problems: problems}
	}
	m.initial = r.initial.sums
	m.problems.addAll(r.initial.problems)
	return nil
}

// readMismatches counts the verdict generation's mismatches by kind: a verifyCollection
// task's are metadata mismatches; "Missing" with no field is a document missing on the
// cluster named (dstClient: missing on the destination, srcClient: extra on it); the
// rest are content mismatches. Mismatches carry generation and taskType from metadata
// v6; older ones cannot be told apart by generation and are not counted. The counts use
// the verifier's mismatch index (generation, taskType): their cost follows the verdict
// generation's mismatches, not the tasks.
func (r *verifierReader) readMismatches(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	if m.metadataVersion == nil || *m.metadataVersion < 6 {
		return nil
	}
	coll := db.Collection("mismatches")
	inVerdict := bson.E{Key: "generation", Value: m.verdict}
	notMetadata := bson.E{Key: "taskType", Value: bson.D{{Key: "$ne", Value: taskVerifyCollection}}}
	missingOn := func(cluster string) bson.D {
		return bson.D{inVerdict, notMetadata,
			{Key: "detail.details", Value: "Missing"}, {Key: "detail.field", Value: ""}, {Key: "detail.cluster", Value: cluster}}
	}
	filters := map[string]bson.D{
		kindMetadata: {inVerdict, {Key: "taskType", Value: taskVerifyCollection}},
		kindMissing:  missingOn("dstClient"),
		kindExtra:    missingOn("srcClient"),
	}
	// All of the verdict generation's, and the current one's, in one count by generation.
	byGeneration, err := countByGeneration(ctx, coll, bson.A{m.verdict, m.generation})
	if err != nil {
		return err
	}
	m.generationMismatches = map[int64]float64{m.generation: byGeneration[m.generation]}
	counts := map[string]float64{"all": byGeneration[m.verdict]}
	for name, filter := range filters {
		n, err := coll.CountDocuments(ctx, filter)
		if err != nil {
			return fmt.Errorf("counting mismatches: %w", err)
		}
		counts[name] = float64(n)
	}
	m.mismatch = map[string]float64{
		kindMetadata: counts[kindMetadata],
		kindMissing:  counts[kindMissing],
		kindExtra:    counts[kindExtra],
		kindContent:  counts["all"] - counts[kindMetadata] - counts[kindMissing] - counts[kindExtra],
	}
	return nil
}

// generationMismatchSpan is how many generations, the current one and those before it,
// have their mismatches counted.
const generationMismatchSpan = 10

// readGenerationMismatches counts the mismatches each of the last generations found:
// those of finished generations once (the verifier adds mismatches only while a task
// runs, and deletes them only when it retries a running task: clearMismatchesForTask in
// mismatches.go); readMismatches counts the current one's at every scrape.
func (r *verifierReader) readGenerationMismatches(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	if m.mismatch == nil { // before metadata v6
		return nil
	}
	first := max(0, m.generation-generationMismatchSpan+1)
	past := map[int64]float64{}
	missing := bson.A{}
	for g := first; g < m.generation; g++ {
		if n, ok := r.pastMismatches[g]; ok {
			past[g] = n
		} else {
			missing = append(missing, g)
			past[g] = 0
		}
	}
	if len(missing) > 0 {
		counted, err := countByGeneration(ctx, db.Collection("mismatches"), missing)
		if err != nil {
			return err
		}
		maps.Copy(past, counted)
	}
	r.pastMismatches = past
	maps.Copy(m.generationMismatches, past) // the current generation's: readMismatches
	return nil
}

// countByGeneration counts the mismatches of each of generations (through the verifier's
// index, whose first field is the generation); a generation without any is absent.
func countByGeneration(ctx context.Context, coll *mongo.Collection, generations bson.A) (map[int64]float64, error) {
	cursor, err := aggregate(ctx, coll.Database(), coll.Name(), mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "generation", Value: bson.D{{Key: "$in", Value: generations}}}}}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$generation"}, {Key: "count", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
	})
	if err != nil {
		return nil, fmt.Errorf("counting mismatches by generation: %w", err)
	}
	defer cursor.Close(context.WithoutCancel(ctx))
	counts := map[int64]float64{}
	for cursor.Next(ctx) {
		if g, ok := cursor.Current.Lookup("_id").AsInt64OK(); ok {
			counts[g] += numberOrZero(cursor.Current, "count")
		}
	}
	if err := cursor.Err(); err != nil {
		return nil, fmt.Errorf("counting mismatches by generation: %w", err)
	}
	return counts, nil
}

// readOldestProcessing finds when the longest-running task started: a task processing
// for hours is a stalled verifier. Tasks of G+1 may start before the generation
// document says G+1.
func (r *verifierReader) readOldestProcessing(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	raw, err := db.Collection(tasksCollection).FindOne(ctx,
		bson.D{
			{Key: "generation", Value: bson.D{{Key: "$in", Value: bson.A{m.generation, m.generation + 1, nil}}}},
			{Key: "status", Value: statusProcessing},
			{Key: "begin_time", Value: bson.D{{Key: "$type", Value: "date"}}},
		},
		options.FindOne().SetSort(bson.D{{Key: "begin_time", Value: 1}}).SetProjection(bson.D{{Key: "begin_time", Value: 1}})).Raw()
	if err == mongo.ErrNoDocuments {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finding the oldest processing task: %w", err)
	}
	m.oldestProcessing = timeSeconds(raw.Lookup("begin_time"))
	return nil
}
