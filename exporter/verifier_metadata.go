package exporter

// Reading migration-verifier's metadata database (../shared/reference/migration-verifier.md).
// Every read is a small, index-backed query bounded by the client's operation timeout
// (sent as maxTimeMS); the one that scans a generation (per namespace) is cached.

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

// Task types and statuses the verifier writes.
const (
	taskPrimary             = "primary"
	taskProcessRecheckQueue = "processRecheckQueue"
	taskVerifyCollection    = "verifyCollection"
	taskVerifyDocuments     = "verifyDocuments"

	statusAdded      = "added"
	statusProcessing = "processing"
	statusCompleted  = "completed"
	statusFailed     = "failed"
	statusMismatch   = "mismatch"
)

// verifierMetadata is one read of the metadata database.
type verifierMetadata struct {
	database string // "" when no metadata database exists (not started, or dropped by --clean)

	hasGenerationDoc bool
	generation       int64
	metadataVersion  *float64

	tasks    map[taskKey]taskSums // current generation, plus the primary task
	initial  map[taskKey]taskSums // generation 0
	verdict  int64                // the generation whose mismatches are current
	mismatch map[string]float64   // kind -> count in the verdict generation; nil before metadata v6

	changeEvents     map[string]map[string]float64 // cluster role -> op type -> count
	rechecksDone     *float64
	lastRechecked    map[string]*float64 // cluster role -> cluster time of the newest recheck task
	oldestProcessing *float64

	namespaces *namespaceStats
}

type taskKey struct{ Type, Status string }

// taskSums adds up the tasks of one type and status.
type taskSums struct {
	count, documents, found, bytes, legacyDocuments float64
}

// verifierReader reads one verifier's metadata database.
type verifierReader struct {
	client   *mongo.Client
	database string // configured; "" to detect

	initialMu sync.Mutex
	initial   map[taskKey]taskSums // generation 0 is final once generation 1 begins
	initialOf string               // database the cached figures belong to

	namespaces *namespaceCache
}

func (r *verifierReader) read(ctx context.Context) (*verifierMetadata, error) {
	m := &verifierMetadata{}
	var err error
	if m.database, err = r.detectDatabase(ctx); err != nil || m.database == "" {
		r.forgetInitial()
		return m, err
	}
	db := r.client.Database(m.database)
	if err := r.readGeneration(ctx, db, m); err != nil {
		return nil, err
	}
	steps := []func(context.Context, *mongo.Database, *verifierMetadata) error{
		r.readTasks, r.readInitial, r.readMismatches, r.readChangeEvents, r.readRechecks, r.readOldestProcessing,
	}
	for _, step := range steps {
		if err := step(ctx, db, m); err != nil {
			return nil, err
		}
	}
	m.namespaces, err = r.namespaces.get(ctx, db, m.verdict)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// detectDatabase returns the metadata database if it exists: the configured one, else
// the current default, else the pre-v0.2.0 one. listDatabases with a name filter and
// authorizedDatabases needs no cluster-wide privilege.
func (r *verifierReader) detectDatabase(ctx context.Context) (string, error) {
	candidates := []string{verifierDatabase, verifierDatabaseOld}
	if r.database != "" {
		candidates = []string{r.database}
	}
	names, err := r.client.ListDatabaseNames(ctx,
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
	if g, ok := number(raw, "generation"); ok {
		m.generation = int64(g)
	}
	if v, ok := number(raw, "metadataversion"); ok {
		m.metadataVersion = &v
	}
	if m.generation > 0 {
		m.verdict = m.generation - 1 // during generation G the verdict of G-1 stands
	}
	return nil
}

// taskGroupPipeline sums tasks by type and status for the tasks match selects.
func taskGroupPipeline(match bson.D) mongo.Pipeline {
	sum := func(field string) bson.D { return bson.D{{Key: "$sum", Value: "$" + field}} }
	return mongo.Pipeline{
		{{Key: "$match", Value: match}},
		{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: bson.D{{Key: "type", Value: "$type"}, {Key: "status", Value: "$status"}}},
			{Key: "count", Value: bson.D{{Key: "$sum", Value: 1}}},
			{Key: "documents", Value: sum("documents_count")},
			{Key: "found", Value: sum("found_source_documents_count")},
			{Key: "bytes", Value: sum("source_bytes_count")},
			{Key: "legacy", Value: sum("source_documents_count")}, // metadata v6 and older
		}}},
	}
}

func readTaskGroups(ctx context.Context, db *mongo.Database, match bson.D) (map[taskKey]taskSums, error) {
	cursor, err := aggregate(ctx, db, "verification_tasks", taskGroupPipeline(match))
	if err != nil {
		return nil, fmt.Errorf("summing verification tasks: %w", err)
	}
	var rows []struct {
		ID                                     taskKey `bson:"_id"`
		Count, Documents, Found, Bytes, Legacy float64
	}
	if err := cursor.All(ctx, &rows); err != nil {
		return nil, fmt.Errorf("summing verification tasks: %w", err)
	}
	groups := map[taskKey]taskSums{}
	for _, row := range rows {
		groups[row.ID] = taskSums{count: row.Count, documents: row.Documents, found: row.Found, bytes: row.Bytes, legacyDocuments: row.Legacy}
	}
	return groups, nil
}

// readTasks sums the current generation's tasks and the primary task (which has no
// generation: {$in: [G, null]} matches it, and uses the generation index).
func (r *verifierReader) readTasks(ctx context.Context, db *mongo.Database, m *verifierMetadata) (err error) {
	m.tasks, err = readTaskGroups(ctx, db, bson.D{{Key: "generation", Value: bson.D{{Key: "$in", Value: bson.A{m.generation, nil}}}}})
	return err
}

// readInitial provides generation 0's figures: the current ones during the initial
// check, then a cached copy, since generation 0 does not change once it is over.
func (r *verifierReader) readInitial(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	if m.generation == 0 {
		m.initial = m.tasks
		return nil
	}
	r.initialMu.Lock()
	defer r.initialMu.Unlock()
	if r.initial != nil && r.initialOf == m.database {
		m.initial = r.initial
		return nil
	}
	initial, err := readTaskGroups(ctx, db, bson.D{
		{Key: "generation", Value: 0},
		{Key: "type", Value: bson.D{{Key: "$in", Value: bson.A{taskVerifyDocuments, taskVerifyCollection}}}},
	})
	if err != nil {
		return err
	}
	r.initial, r.initialOf, m.initial = initial, m.database, initial
	return nil
}

func (r *verifierReader) forgetInitial() {
	r.initialMu.Lock()
	r.initial = nil
	r.initialMu.Unlock()
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
// v6; older ones cannot be told apart by generation and are not counted.
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
	var docs []struct {
		ID          string             `bson:"_id"`
		EventCounts map[string]float64 `bson:"eventCounts"`
	}
	if err := cursor.All(ctx, &docs); err != nil {
		return fmt.Errorf("reading %s: %w", collection, err)
	}
	m.changeEvents = map[string]map[string]float64{}
	for _, d := range docs {
		role := "source"
		if d.ID == "dstResumeToken" {
			role = "destination"
		}
		m.changeEvents[role] = d.EventCounts
	}
	return nil
}

// readRechecks sums the documents rechecked in every generation after the first (the
// verifier's totalRechecksDone; all four fields are in its index), and finds the cluster
// time of the newest recheck on each side.
func (r *verifierReader) readRechecks(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	tasks := db.Collection("verification_tasks")
	cursor, err := aggregate(ctx, db, "verification_tasks", mongo.Pipeline{
		{{Key: "$match", Value: bson.D{
			{Key: "generation", Value: bson.D{{Key: "$gt", Value: 0}}},
			{Key: "type", Value: taskVerifyDocuments},
			{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{statusCompleted, statusFailed}}}},
		}}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "done", Value: bson.D{{Key: "$sum", Value: "$" + m.documentsField()}}}}}},
	})
	if err != nil {
		return fmt.Errorf("summing rechecks: %w", err)
	}
	var rows []struct{ Done float64 }
	if err := cursor.All(ctx, &rows); err != nil {
		return fmt.Errorf("summing rechecks: %w", err)
	}
	done := 0.0
	if len(rows) > 0 {
		done = rows[0].Done
	}
	m.rechecksDone = &done

	m.lastRechecked = map[string]*float64{}
	for role, field := range map[string]string{"source": "srctimestamp", "destination": "dsttimestamp"} {
		raw, err := tasks.FindOne(ctx, bson.D{{Key: field, Value: bson.D{{Key: "$type", Value: "timestamp"}}}},
			options.FindOne().SetSort(bson.D{{Key: field, Value: -1}}).SetProjection(bson.D{{Key: field, Value: 1}})).Raw()
		if err == mongo.ErrNoDocuments {
			continue
		}
		if err != nil {
			return fmt.Errorf("finding the newest %s: %w", field, err)
		}
		if v, err := raw.LookupErr(field); err == nil {
			if seconds, _ := timestampSeconds(v); seconds != nil {
				m.lastRechecked[role] = seconds
			}
		}
	}
	return nil
}

// readOldestProcessing finds when the longest-running task started: a task processing
// for hours is a stalled verifier. Tasks of G+1 may start before the generation
// document says G+1.
func (r *verifierReader) readOldestProcessing(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	raw, err := db.Collection("verification_tasks").FindOne(ctx,
		bson.D{
			{Key: "generation", Value: bson.D{{Key: "$in", Value: bson.A{m.generation, m.generation + 1, nil}}}},
			{Key: "status", Value: statusProcessing},
		},
		options.FindOne().SetSort(bson.D{{Key: "begin_time", Value: 1}}).SetProjection(bson.D{{Key: "begin_time", Value: 1}})).Raw()
	if err == mongo.ErrNoDocuments {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finding the oldest processing task: %w", err)
	}
	if v, err := raw.LookupErr("begin_time"); err == nil {
		m.oldestProcessing, _ = timestampSeconds(v)
	}
	return nil
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

// number reads a numeric field of any BSON number type.
func number(doc bson.Raw, key string) (float64, bool) {
	v, err := doc.LookupErr(key)
	if err != nil {
		return 0, false
	}
	return v.AsFloat64OK()
}

// namespaceStats is the per-namespace picture of one generation.
type namespaceStats struct {
	generation int64
	byName     map[string]namespaceState
	fetchedAt  time.Time
}

type namespaceState struct {
	pending, finished, mismatched int
}

// Namespace verdicts, the verifier's own: mismatched when any task failed or found a
// metadata mismatch; complete when tasks finished and none is queued or running.
const (
	nsComplete   = "complete"
	nsInProgress = "in_progress"
	nsMismatched = "mismatched"
)

var namespaceStatuses = []string{nsComplete, nsInProgress, nsMismatched}

func (s namespaceState) status() string {
	switch {
	case s.mismatched > 0:
		return nsMismatched
	case s.finished > 0 && s.pending == 0:
		return nsComplete
	}
	return nsInProgress
}

// namespaceCache holds the per-namespace aggregation, which scans a whole generation of
// tasks (no index fits a group by namespace), for refresh before reading it again.
type namespaceCache struct {
	refresh time.Duration
	mu      sync.Mutex
	stats   *namespaceStats
}

func (c *namespaceCache) get(ctx context.Context, db *mongo.Database, generation int64) (*namespaceStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stats != nil && c.stats.generation == generation && time.Since(c.stats.fetchedAt) < c.refresh {
		return c.stats, nil
	}
	cursor, err := aggregate(ctx, db, "verification_tasks", mongo.Pipeline{
		{{Key: "$match", Value: bson.D{
			{Key: "generation", Value: generation},
			{Key: "type", Value: bson.D{{Key: "$in", Value: bson.A{taskVerifyDocuments, taskVerifyCollection}}}},
		}}},
		{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: bson.D{{Key: "namespace", Value: "$query_filter.namespace"}, {Key: "status", Value: "$status"}}},
			{Key: "count", Value: bson.D{{Key: "$sum", Value: 1}}},
		}}},
	})
	if err != nil {
		return nil, fmt.Errorf("grouping tasks by namespace: %w", err)
	}
	var rows []struct {
		ID struct {
			Namespace string
			Status    string
		} `bson:"_id"`
		Count int
	}
	if err := cursor.All(ctx, &rows); err != nil {
		return nil, fmt.Errorf("grouping tasks by namespace: %w", err)
	}
	stats := &namespaceStats{generation: generation, byName: map[string]namespaceState{}, fetchedAt: time.Now()}
	for _, row := range rows {
		if row.ID.Namespace == "" {
			continue
		}
		s := stats.byName[row.ID.Namespace]
		switch row.ID.Status {
		case statusAdded, statusProcessing:
			s.pending += row.Count
		case statusFailed, statusMismatch:
			s.mismatched += row.Count
			s.finished += row.Count
		default:
			s.finished += row.Count
		}
		stats.byName[row.ID.Namespace] = s
	}
	c.stats = stats
	return stats, nil
}
