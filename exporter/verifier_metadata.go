package exporter

// Reading migration-verifier's metadata database (docs/migration-verifier.md). Every
// query is bounded by the client's operation timeout (sent as maxTimeMS). What cannot
// change any more is read once and kept: the figures of generations before the current
// one, and, within the current generation, the tasks already finished (taskTally).

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Metadata database names: the default since verifier v0.2.0, then the older one.
const (
	verifierDatabase    = "__mdb_internal_migration_verifier"
	verifierDatabaseOld = "migration_verification_metadata"
)

const tasksCollection = "verification_tasks"

// verifierMetadata is one read of the metadata database.
type verifierMetadata struct {
	database string // "" when no metadata database exists (not started, or dropped by --clean)

	hasGenerationDoc bool
	generation       int64
	metadataVersion  *float64

	tasks    map[taskKey]taskSums // current generation, plus the primary task
	initial  map[taskKey]taskSums // generation 0
	verdict  int64                // the generation whose mismatches and namespaces are current
	mismatch map[string]float64   // kind -> count in the verdict generation; nil before metadata v6

	changeEvents     map[string]map[string]float64 // cluster role -> op type -> count
	rechecksDone     *float64
	lastRechecked    map[string]*float64 // cluster role -> cluster time of the newest recheck task
	oldestProcessing *float64

	namespaces namespaceStates // of the verdict generation

	malformed float64     // tasks left out because their type or status is not a string
	problems  problemList // what was wrong with the documents left out, for the log
}

// verifierReader reads one verifier's metadata database, keeping what does not change.
type verifierReader struct {
	client   *mongoClient
	database string // configured; "" to detect

	mu         sync.Mutex // one read at a time: the caches below are its state
	tally      *taskTally
	initial    *generationCache[map[taskKey]taskSums]
	verdictNS  *generationCache[namespaceStates]
	rechecks   *recheckTotal
	namespaces namespaceCache // generation 0's, while its tasks are summed on the server
}

func newVerifierReader(client *mongoClient, database string, namespaceRefresh time.Duration) *verifierReader {
	return &verifierReader{client: client, database: database, namespaces: namespaceCache{refresh: namespaceRefresh}}
}

func (r *verifierReader) read(ctx context.Context) (*verifierMetadata, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := &verifierMetadata{}
	client, err := r.client.get()
	if err != nil {
		return nil, err
	}
	if m.database, err = r.detectDatabase(ctx, client); err != nil || m.database == "" {
		r.forget()
		return m, err
	}
	db := client.Database(m.database)
	if err := r.readGeneration(ctx, db, m); err != nil {
		return nil, err
	}
	steps := []func(context.Context, *mongo.Database, *verifierMetadata) error{
		r.readTasks, r.readInitial, r.readMismatches, r.readChangeEvents, r.readRechecks, r.readOldestProcessing, r.readNamespaces,
	}
	for _, step := range steps {
		if err := step(ctx, db, m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// forget drops every cache: the database is gone, or another one is read.
func (r *verifierReader) forget() {
	r.tally, r.initial, r.verdictNS, r.rechecks = nil, nil, nil, nil
	r.namespaces.stats = nil
}

// detectDatabase returns the metadata database if it exists: the configured one, else
// the current default, else the pre-v0.2.0 one. listDatabases with a name filter and
// authorizedDatabases needs no cluster-wide privilege.
func (r *verifierReader) detectDatabase(ctx context.Context, client *mongo.Client) (string, error) {
	candidates := []string{verifierDatabase, verifierDatabaseOld}
	if r.database != "" {
		candidates = []string{r.database}
	}
	names, err := client.ListDatabaseNames(ctx,
		bson.D{{Key: "name", Value: bson.D{{Key: "$in", Value: candidates}}}},
		options.ListDatabases().SetAuthorizedDatabases(true))
	if err != nil {
		return "", fmt.Errorf("listing databases: %w", err)
	}
	for _, c := range candidates {
		if slices.Contains(names, c) {
			return c, nil
		}
	}
	return "", nil
}

func (r *verifierReader) readGeneration(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	raw, err := db.Collection("generation").FindOne(ctx, bson.D{}).Raw()
	if err == mongo.ErrNoDocuments {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the generation document: %w", err)
	}
	m.hasGenerationDoc = true
	var problem string
	m.generation, m.metadataVersion, problem = decodeGeneration(raw)
	m.problems.add(problem)
	if m.generation > 0 {
		m.verdict = m.generation - 1 // during generation G the verdict of G-1 stands
	}
	return nil
}

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

// readTasks sums the current generation's tasks: from the running totals of taskTally
// when it can keep them, else on the server.
func (r *verifierReader) readTasks(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	ok, err := r.readTally(ctx, db, m)
	if err != nil || ok {
		return err
	}
	g, err := readTaskGroups(ctx, db, bson.D{currentGeneration(m)}, false, &m.problems)
	if err != nil {
		return err
	}
	m.tasks, m.malformed = g.sums, g.malformed
	return nil
}

// generationCache holds a figure of one generation of one database, which does not
// change once a later generation has begun, and what was wrong with the documents it
// was read from (reported at every scrape, so the log does not say it cleared).
type generationCache[T any] struct {
	database   string
	generation int64
	value      T
	problems   problemList
}

func cached[T any](c *generationCache[T], m *verifierMetadata, generation int64) (T, bool) {
	if c != nil && c.database == m.database && c.generation == generation {
		m.problems.addAll(c.problems)
		return c.value, true
	}
	var zero T
	return zero, false
}

// readInitial provides generation 0's figures: the current ones during the initial
// check, then a copy read once.
func (r *verifierReader) readInitial(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	if m.generation == 0 {
		m.initial = m.tasks
		return nil
	}
	if v, ok := cached(r.initial, m, 0); ok {
		m.initial = v
		return nil
	}
	var problems problemList
	g, err := readTaskGroups(ctx, db, bson.D{
		{Key: "generation", Value: 0},
		{Key: "type", Value: bson.D{{Key: "$in", Value: bson.A{taskVerifyDocuments, taskVerifyCollection}}}},
	}, false, &problems)
	if err != nil {
		return err
	}
	r.initial = &generationCache[map[taskKey]taskSums]{database: m.database, generation: 0, value: g.sums, problems: problems}
	m.initial = g.sums
	m.problems.addAll(problems)
	return nil
}

// Mismatch kinds, as the verifier classifies them.
const (
	kindMissing  = "missing_on_destination"
	kindExtra    = "extra_on_destination"
	kindContent  = "content"
	kindMetadata = "metadata"
)

var mismatchKinds = []string{kindMissing, kindExtra, kindContent, kindMetadata}

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
		"all":        {inVerdict},
		kindMetadata: {inVerdict, {Key: "taskType", Value: taskVerifyCollection}},
		kindMissing:  missingOn("dstClient"),
		kindExtra:    missingOn("srcClient"),
	}
	counts := map[string]float64{}
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

// readChangeEvents reads the change readers' cumulative event counters: collection
// changeReader since metadata v4, changeStream before.
func (r *verifierReader) readChangeEvents(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	collection := "changeReader"
	if m.metadataVersion != nil && *m.metadataVersion < 4 {
		collection = "changeStream"
	}
	cursor, err := aggregate(ctx, db, collection, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{"srcResumeToken", "dstResumeToken"}}}}}}},
		{{Key: "$project", Value: bson.D{{Key: "eventCounts", Value: 1}}}},
	})
	if err != nil {
		return fmt.Errorf("reading %s: %w", collection, err)
	}
	defer cursor.Close(context.WithoutCancel(ctx))
	m.changeEvents = map[string]map[string]float64{}
	for cursor.Next(ctx) {
		role, counts, problems := decodeEventCounts(cursor.Current)
		for _, p := range problems {
			m.problems.add(p)
		}
		if role != "" {
			m.changeEvents[role] = counts
		}
	}
	if err := cursor.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", collection, err)
	}
	return nil
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

// timeSeconds reads a BSON date or timestamp as Unix seconds; nil for anything else.
func timeSeconds(v bson.RawValue) *float64 {
	var seconds float64
	switch v.Type {
	case bson.TypeDateTime:
		seconds = float64(v.DateTime()) / 1000
	case bson.TypeTimestamp:
		t, _ := v.Timestamp()
		seconds = float64(t)
	default:
		return nil
	}
	return &seconds
}

// legacyFields tells whether tasks carry metadata v6's single source_documents_count
// rather than v7's documents_count and found_source_documents_count.
func (m *verifierMetadata) legacyFields() bool {
	return m.metadataVersion != nil && *m.metadataVersion < 7
}

func (m *verifierMetadata) documentsField() string {
	if m.legacyFields() {
		return "source_documents_count"
	}
	return "documents_count"
}
