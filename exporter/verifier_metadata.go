package exporter

// Reading migration-verifier's metadata database (docs/migration-verifier.md). Every
// query is bounded by the client's operation timeout (sent as maxTimeMS). What cannot
// change any more is read once and kept: the running totals of the tasks (taskTally)
// and of the mismatches (mismatchTally). Their first reading is a walk that goes on
// over as many scrapes as it needs; until it is done, the figures that need them are
// not exported, and totalsRead says how far it got.

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
	run             verifierRun
	generation      int64
	tally           *taskTally
	mismatchTally   *mismatchTally
	rechecksLast    float64 // rechecksDone of the last read
	rechecksRemoved float64 // what restarts took from rechecksDone, in this verification
	oldestTask      string  // idKey, while the primary task is unfinished
	// summing is whether figures are summed on the server at every scrape: from when
	// more than maxWatched tasks or mismatches were to be read one by one until new
	// running totals are complete. The caches of those sums follow.
	summing             bool
	initial             *initialFigures
	rechecks            *recheckTotal
	namespaces          *refreshed[namespaceStates]    // the current generation's
	namespaceMismatches *refreshed[map[string]float64] // the verdict generation's
	pastMismatches      map[int64]float64              // mismatches of finished generations
}

func newVerifierReader(client *mongoClient, database string, namespaceRefresh time.Duration) *verifierReader {
	return &verifierReader{client: client, database: database, refresh: namespaceRefresh}
}

// read reads the metadata database, walking on with the running totals while ctx's
// deadline allows. api gives the verifier's progress report of the same scrape (nil
// when there is none), which tells whether the verifier has finished.
func (r *verifierReader) read(ctx context.Context, api func() *verifierProgress) (*verifierMetadata, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	budget := budgetOf(ctx)
	client, err := r.client.get()
	if err != nil {
		return nil, err
	}
	m := &verifierMetadata{}
	if m.database, err = r.detectDatabase(ctx, client); err != nil || m.database == "" {
		r.forget(verifierRun{})
		return m, err
	}
	db := client.Database(m.database)
	if err := r.readGeneration(ctx, db, m); err != nil {
		return nil, err
	}
	steady, err := r.readTasks(ctx, db, m, budget)
	if err != nil {
		return nil, err
	}
	if err := r.readFigures(ctx, db, m, steady, api); err != nil {
		return nil, err
	}
	return m, nil
}

// readTasks reads what may still change of the tasks (readSteady), drops the caches
// when they belong to another verification, and brings the running totals up to date.
func (r *verifierReader) readTasks(ctx context.Context, db *mongo.Database, m *verifierMetadata, budget readBudget) (steadyTasks, error) {
	tasks := db.Collection(tasksCollection)
	// The recent tasks are read with the others when running totals are kept, from
	// where the totals are (or, when they start with this read, will be) at.
	var recent *recentIDs
	switch {
	case r.tally != nil:
		recent = &r.tally.recent
	case maxWatched > 0:
		fresh := newRecentIDs()
		recent = &fresh
	}
	steady, err := readSteady(ctx, tasks, m.generation, recent)
	if err != nil {
		return steady, err
	}
	if steady.overflow && steady.primary == nil { // it may be among the tasks left out
		if steady.primary, err = readPrimary(ctx, tasks); err != nil {
			return steady, err
		}
	}
	r.noteRun(m, steady.primary)
	if err := r.noteOldestTask(ctx, tasks, steady.primary); err != nil {
		return steady, err
	}
	if err := r.keepTotals(ctx, db, m, steady, recent, budget); err != nil {
		return steady, err
	}
	m.oldestProcessing = oldestProcessing(steady)
	return steady, nil
}

// readFigures sets the figures of m: from the running totals once they are complete;
// summed on the server while they are given up; while their first reading goes on,
// from the unfinished tasks alone. The change readers' figures are read in every case.
func (r *verifierReader) readFigures(ctx context.Context, db *mongo.Database, m *verifierMetadata, steady steadyTasks, api func() *verifierProgress) error {
	var steps []func(context.Context, *mongo.Database, *verifierMetadata) error
	switch {
	case m.complete && r.summing:
		if err := r.readSummedTasks(ctx, db, m); err != nil {
			return err
		}
		m.decide(api())
		steps = []func(context.Context, *mongo.Database, *verifierMetadata) error{
			r.readInitial, r.readMismatches, r.readNamespaceMismatches, r.readGenerationMismatches, r.readSummedRechecks, r.readNamespaces,
		}
		if steady.overflow {
			steps = append(steps, r.readOldestProcessing)
		}
	case m.complete:
		r.tally.fill(m, steady.primary)
		m.decide(api())
		if r.mismatchTally != nil {
			r.mismatchTally.fill(m)
		}
	default:
		m.tasks = unfinishedSums(steady, m.generation)
		m.decide(api())
	}
	steps = append(steps, r.readChangeEvents)
	for _, step := range steps {
		if err := step(ctx, db, m); err != nil {
			return err
		}
	}
	if m.complete {
		r.countRechecks(m)
	}
	return nil
}

// keepTotals brings the running totals up to date and walks on with their first
// reading, or, with more than maxWatched tasks or mismatches to read one by one, gives
// them up for sums on the server (m.complete then says whether those are to be read).
func (r *verifierReader) keepTotals(ctx context.Context, db *mongo.Database, m *verifierMetadata, steady steadyTasks, recent *recentIDs, budget readBudget) error {
	overflow := steady.overflow || maxWatched <= 0 || r.summing && len(steady.unfinished) > maxWatched/2
	if overflow {
		r.sumOnServer()
		m.complete, m.totalsRead = true, 1
		return nil
	}
	tasks := db.Collection(tasksCollection)
	countMismatches := m.metadataVersion != nil && *m.metadataVersion >= 6
	if r.tally == nil {
		estimated, err := tasks.EstimatedDocumentCount(ctx)
		if err != nil {
			return fmt.Errorf("counting verification tasks: %w", err)
		}
		mismatches := int64(0)
		if countMismatches {
			if mismatches, err = db.Collection(mismatchesCollection).EstimatedDocumentCount(ctx); err != nil {
				return fmt.Errorf("counting mismatches: %w", err)
			}
		}
		r.tally = newTaskTally(recent.from, float64(estimated), float64(mismatches))
	}
	t := r.tally
	ok, err := t.update(ctx, tasks, m.generation, steady)
	if err != nil || !ok {
		r.sumOnServer()
		m.complete, m.totalsRead = true, 1
		return err
	}
	t.forgetPast(m.generation)
	holds := holdsOf(steady.unfinished, slices.Collect(maps.Values(t.watched)))
	err = t.walk.run(ctx, tasks, budget, walkTaskStages(m.generation, holds), func(rows []bson.Raw) { t.applyChunk(rows, m.generation) })
	if err != nil {
		return err
	}
	if len(t.watched) > maxWatched {
		r.sumOnServer()
		m.complete, m.totalsRead = true, 1
		return nil
	}
	done := t.walk.done
	read, total := t.walk.read, t.walk.total+t.mismatchesEstimated
	if done && countMismatches {
		if done, err = r.keepMismatchTotals(ctx, db, m, budget); err != nil {
			return err
		}
		if r.tally == nil { // given up for sums on the server
			m.complete, m.totalsRead = true, 1
			return nil
		}
		read, total = read+r.mismatchTally.walk.read, t.walk.total+r.mismatchTally.walk.total
	}
	switch {
	case done:
		r.summing = false
		m.complete, m.totalsRead = true, 1
	case r.summing: // summed on the server until the new totals are complete
		m.complete, m.totalsRead = true, 1
	default:
		m.totalsRead = (&idWalk{read: read, total: total}).ratio()
	}
	return nil
}

// keepMismatchTotals does for the mismatches what keepTotals does for the tasks, once
// those are read.
func (r *verifierReader) keepMismatchTotals(ctx context.Context, db *mongo.Database, m *verifierMetadata, budget readBudget) (done bool, err error) {
	coll := db.Collection(mismatchesCollection)
	if r.mismatchTally == nil {
		r.mismatchTally = newMismatchTally(newRecentIDs().from, r.tally.mismatchesEstimated)
	}
	t := r.mismatchTally
	ok, err := t.update(ctx, coll, r.tally, m.generation)
	if err != nil || !ok {
		r.sumOnServer()
		return true, err
	}
	t.forgetPast(m.generation)
	err = t.walk.run(ctx, coll, budget, walkMismatchStages, func(rows []bson.Raw) { t.applyChunk(rows, r.tally, m.generation) })
	if err != nil {
		return false, err
	}
	if len(t.open) > maxWatched {
		r.sumOnServer()
		return true, nil
	}
	return t.walk.done, nil
}

// sumOnServer gives up the running totals: figures are summed on the server until new
// ones are complete.
func (r *verifierReader) sumOnServer() {
	r.tally, r.mismatchTally, r.summing = nil, nil, true
}

// forget drops every cache, and notes the verification they will belong to.
func (r *verifierReader) forget(run verifierRun) {
	r.run, r.generation = run, 0
	r.tally, r.mismatchTally, r.summing = nil, nil, false
	r.initial, r.rechecks, r.namespaces, r.namespaceMismatches, r.pastMismatches = nil, nil, nil, nil, nil
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

func primaryKey(primary *task) string {
	if primary == nil {
		return ""
	}
	return idKey(primary.id)
}

// noteOldestTask drops what was read from tasks when the verifier may have deleted them
// all: while the primary task is unfinished, a verifier that starts again deletes every
// other task, of every generation (handleIncompletePrimary, reset.go), and goes on with
// the same generation document and primary task. The oldest task (by _id) then changes.
// The mismatches stay, but their running totals need the tasks'.
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
		r.tally, r.mismatchTally = nil, nil
		r.initial, r.rechecks, r.namespaces = nil, nil, nil
		r.oldestTask = oldest
	}
	return nil
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
