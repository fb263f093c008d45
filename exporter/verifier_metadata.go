package exporter

// Reading migration-verifier's metadata database (docs/migration-verifier.md). Every
// query is bounded by the client's operation timeout (sent as maxTimeMS). What cannot
// change any more is read once and kept: the figures of generations before the current
// one, and, within the current generation, the tasks already finished (taskTally).

import (
	"context"
	"fmt"
	"maps"
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
	generationDocID  string // idKey of the generation document's _id: a new one is a new verification
	generation       int64
	metadataVersion  *float64

	tasks   map[taskKey]taskSums // current generation, plus the primary task
	initial map[taskKey]taskSums // generation 0
	// done is whether the verifier has finished: its API says it is not running
	// (phase idle) after a generation past the first, the one the generation document
	// names, and none of that generation's tasks is left.
	done     bool
	verdict  int64              // the generation whose mismatches stand: see decide
	mismatch map[string]float64 // kind -> count in the verdict generation; nil before metadata v6

	namespaceMismatches   map[string]float64            // namespace -> mismatches in the verdict generation
	generationMismatches  map[int64]float64             // generation -> mismatches, for the last generations
	changeEvents          map[string]map[string]float64 // cluster role -> op type -> count
	rechecksDone          *float64                      // the verifier's totalRechecksDone
	rechecksReported      *float64                      // rechecksDone plus what the verifier's restarts took from it
	lastRechecked         map[string]*float64           // cluster role -> cluster time of the newest finished recheck
	oldestProcessing      *float64
	newestTask, lastBegin *float64            // the newest task's _id time; the newest begin_time of the generation
	tokenTimes            map[string]*float64 // cluster role -> cluster time of the change reader's saved position

	namespaces namespaceStates // of the current generation

	malformed float64     // tasks left out because their type or status is not a string
	problems  problemList // what was wrong with the documents left out, for the log
}

// verifierRun identifies one verification: --clean drops the database and the verifier
// creates it again at once, so the name alone does not tell them apart, but the
// generation document (upserted without an _id, so given a new ObjectId) and the primary
// task (upserted with a new ObjectId) are new.
type verifierRun struct {
	database, generationDoc, primary string
}

// verifierReader reads one verifier's metadata database, keeping what does not change.
type verifierReader struct {
	client   *mongoClient
	database string        // configured; "" to detect
	refresh  time.Duration // namespace_refresh_interval

	mu sync.Mutex // one read at a time: the caches below are its state
	// run and generation are those of the last read: every cache below belongs to them,
	// and is dropped when the run changes or the generation goes back.
	run                 verifierRun
	generation          int64
	tally               *taskTally
	initial             *initialFigures
	rechecks            *recheckTotal
	rechecksLast        float64                        // rechecksDone of the last read
	rechecksRemoved     float64                        // what restarts took from rechecksDone, in this verification
	namespaces          *refreshed[namespaceStates]    // the current generation's, while it is summed on the server
	namespaceMismatches *refreshed[map[string]float64] // the verdict generation's
	pastMismatches      map[int64]float64              // mismatches of finished generations
	oldestTask          string                         // idKey, while the primary task is unfinished
}

func newVerifierReader(client *mongoClient, database string, namespaceRefresh time.Duration) *verifierReader {
	return &verifierReader{client: client, database: database, refresh: namespaceRefresh}
}

// read reads the metadata database. api gives the verifier's progress report of the same
// scrape (nil when there is none), which tells whether the verifier has finished.
func (r *verifierReader) read(ctx context.Context, api func() *verifierProgress) (*verifierMetadata, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := &verifierMetadata{}
	client, err := r.client.get()
	if err != nil {
		return nil, err
	}
	if m.database, err = r.detectDatabase(ctx, client); err != nil || m.database == "" {
		r.forget(verifierRun{})
		return m, err
	}
	db := client.Database(m.database)
	if err := r.readGeneration(ctx, db, m); err != nil {
		return nil, err
	}
	if err := r.readTasks(ctx, db, m); err != nil {
		return nil, err
	}
	m.decide(api())
	steps := []func(context.Context, *mongo.Database, *verifierMetadata) error{
		r.readInitial, r.readMismatches, r.readNamespaceMismatches, r.readGenerationMismatches, r.readChangeEvents,
		r.readRechecks, r.readOldestProcessing, r.readNamespaces,
	}
	for _, step := range steps {
		if err := step(ctx, db, m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// forget drops every cache, and notes the verification they will belong to.
func (r *verifierReader) forget(run verifierRun) {
	r.run, r.generation = run, 0
	r.tally, r.initial, r.rechecks, r.namespaces, r.namespaceMismatches, r.pastMismatches = nil, nil, nil, nil, nil, nil
	r.rechecksLast, r.rechecksRemoved, r.oldestTask = 0, 0, ""
}

// noteRun drops the caches when the verification is not the one they were read from:
// another database, another generation document or primary task (the database was
// dropped and created again, by --clean), or a generation lower than before.
func (r *verifierReader) noteRun(m *verifierMetadata, primary *task) {
	run := verifierRun{database: m.database, generationDoc: m.generationDocID, primary: primaryKey(primary)}
	if run != r.run || m.generation < r.generation {
		r.forget(run)
	}
	r.generation = m.generation
}

// noteOldestTask drops what was read from tasks when the verifier may have deleted them
// all: while the primary task is unfinished, a verifier that starts again deletes every
// other task, of every generation (handleIncompletePrimary, reset.go), and goes on with
// the same generation document and primary task. The oldest task (by _id) then changes.
func (r *verifierReader) noteOldestTask(ctx context.Context, coll *mongo.Collection, primary *task) error {
	if primary == nil || !primary.unfinished {
		r.oldestTask = ""
		return nil
	}
	raw, err := coll.FindOne(ctx, bson.D{{Key: "type", Value: bson.D{{Key: "$ne", Value: taskPrimary}}}},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "_id", Value: 1}})).Raw()
	oldest := ""
	switch {
	case err == nil:
		oldest = idKey(raw.Lookup("_id"))
	case err != mongo.ErrNoDocuments:
		return fmt.Errorf("finding the oldest task: %w", err)
	}
	if oldest != r.oldestTask {
		r.tally, r.initial, r.rechecks, r.namespaces = nil, nil, nil, nil
		r.oldestTask = oldest
	}
	return nil
}

// decide sets what depends on the verifier's own report: whether it has finished, and
// so which generation's mismatches stand. During generation G > 0 those found by G-1
// stand (the verifier's summary reads them: findAndSendMismatches in mismatches.go);
// once the verifier has finished, no generation follows its last one, whose mismatches
// are the result (its final report, PrintVerificationSummary at the end of the
// generation, lists them).
func (m *verifierMetadata) decide(api *verifierProgress) {
	m.done = api != nil && api.Phase != nil && *api.Phase == "idle" && api.Generation != nil &&
		*api.Generation >= 1 && m.hasGenerationDoc && *api.Generation == float64(m.generation) && !m.hasUnfinishedTasks()
	m.verdict = m.generation
	if m.generation > 0 && !m.done {
		m.verdict = m.generation - 1
	}
}

// hasUnfinishedTasks tells whether a task of the current generation (not the primary)
// is added or processing.
func (m *verifierMetadata) hasUnfinishedTasks() bool {
	for key, sums := range m.tasks {
		if key.Type != taskPrimary && key.unfinished() && sums.count > 0 {
			return true
		}
	}
	return false
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
	if id := raw.Lookup("_id"); id.Type != 0 {
		m.generationDocID = idKey(id)
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

// readTasks reads the primary task and sums the current generation's tasks: from the
// running totals of taskTally when it can keep them, else on the server.
func (r *verifierReader) readTasks(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	tasks := db.Collection(tasksCollection)
	unfinished, primary, err := readUnfinished(ctx, tasks, m)
	if err != nil {
		return err
	}
	r.noteRun(m, primary)
	if err := r.noteOldestTask(ctx, tasks, primary); err != nil {
		return err
	}
	ok, err := r.readTally(ctx, tasks, m, primary, unfinished)
	if err != nil || ok {
		return err
	}
	g, err := readTaskGroups(ctx, db, bson.D{currentGeneration(m)}, false, &m.problems)
	if err != nil {
		return err
	}
	m.tasks, m.malformed = g.sums, g.malformed
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

// readChangeEvents reads the change readers' cumulative event counters and how far each
// has read (its saved resume token, which the verifier saves at most every 10 s, with or
// without events): collection changeReader since metadata v4, changeStream before.
func (r *verifierReader) readChangeEvents(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	collection := "changeReader"
	if m.metadataVersion != nil && *m.metadataVersion < 4 {
		collection = "changeStream"
	}
	cursor, err := aggregate(ctx, db, collection, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{"srcResumeToken", "dstResumeToken"}}}}}}},
		{{Key: "$project", Value: bson.D{{Key: "eventCounts", Value: 1}, {Key: "token", Value: 1}}}},
	})
	if err != nil {
		return fmt.Errorf("reading %s: %w", collection, err)
	}
	defer cursor.Close(context.WithoutCancel(ctx))
	m.changeEvents = map[string]map[string]float64{}
	m.tokenTimes = map[string]*float64{}
	for cursor.Next(ctx) {
		role, counts, problems := decodeEventCounts(cursor.Current)
		for _, p := range problems {
			m.problems.add(p)
		}
		if role != "" {
			m.changeEvents[role] = counts
			m.tokenTimes[role] = decodeTokenTime(cursor.Current)
		}
	}
	if err := cursor.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", collection, err)
	}
	return nil
}

// lastChange is the time of the newest change the metadata shows: a task inserted (the
// time in its _id) or picked (begin_time), a change reader's saved position. The
// verifier records no time when a task finishes.
func (m *verifierMetadata) lastChange() *float64 {
	return newer(newer(m.newestTask, m.lastBegin), newer(m.tokenTimes["source"], m.tokenTimes["destination"]))
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
