package exporter

// Running totals of a verification's tasks, every generation's, so that a scrape reads
// what can still change rather than every task again.
//
// What migration-verifier v0.2.1 does to its tasks (docs/migration-verifier.md; in its
// internal/verifier/: verification_task.go, check.go, reset.go): it inserts a task as
// added, a worker sets it to processing, then to completed, failed or mismatch, with its
// counts, and never changes a finished task again. Task _ids are ObjectIds made as the
// task is inserted (or, for a recheck task, made a moment before), so they grow with the
// time of insertion. It deletes tasks only when it starts again (ResetInProgressTasks),
// and only these:
//   - the primary task unfinished: every other task (handleIncompletePrimary). The
//     primary task then stays added for good, and generations go on;
//   - a generation-0 verifyCollection task processing: the verifyDocuments tasks of its
//     namespace (resetCollectionTasksIfNeeded);
//   - a processRecheckQueue task processing: every verifyDocuments task of its
//     generation, which it then creates again (resetProcessRecheckQueueTasksIfNeeded);
//
// and --clean drops the whole database (the reader then starts every total again).
//
// So a finished task is "sealed" (added to its generation's totals and never read
// again) unless the verifier may still delete it: a verifyDocuments task while its
// generation's processRecheckQueue task is unfinished, or while its namespace's
// generation-0 verifyCollection task is. Those, and unfinished tasks, are "watched": read
// at every scrape. While the primary task is unfinished, a restart deletes every task at
// once: the reader then watches the oldest task, and starts every total again when it
// changes (noteOldestTask).
//
// The totals start with a walk (verifier_walk.go) over every task whose _id is below
// the recent ones, which seals or watches what it reads, chunk by chunk, over as many
// scrapes as it takes. Each scrape then reads, in one query:
//   - the unfinished tasks of the current and the next generation (the index
//     {generation, type, status} selects them), and the primary task;
//   - the recent tasks (recentIDs): a task inserted and finished between two scrapes is
//     never seen unfinished;
//
// and, by _id, the watched tasks that left the unfinished set: they finished, or were
// deleted. Tasks the walk has not reached yet are left to it. The totals are kept while
// at most maxWatched tasks are watched or recent; otherwise the reader sums the current
// generation on the server at every scrape (verifierReader.summing).

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// lookupBatch bounds the _ids of one {_id: {$in: ...}} query.
const lookupBatch = 5_000

// maxWatched bounds the tasks, and the mismatches, a scrape reads one by one (about 150
// bytes each); 0 keeps no running totals. A variable so that tests can lower it.
var maxWatched = 20_000

// taskTally is the running totals of one verification's tasks.
type taskTally struct {
	// mismatchesEstimated is the size of the mismatches collection as the totals began:
	// how far their reading has got counts it, until it reads the mismatches themselves.
	mismatchesEstimated float64

	generations map[int64]*generationTasks // sealed tasks, by generation
	watched     map[string]task            // idKey -> the last state read of an unfinished or not yet sealable task
	recent      recentIDs
	walk        *idWalk
}

// generationTasks are the sealed tasks of one generation.
type generationTasks struct {
	sums       map[taskKey]taskSums
	namespaces namespaceStates // nil once the generation is past: no figure needs them
	malformed  float64
	problems   problemList         // of the tasks left out, reported at every scrape
	begin      *float64            // the newest begin_time (a finished task keeps the time it was picked)
	rechecked  map[string]*float64 // cluster role -> newest srctimestamp / dsttimestamp of a finished verifyDocuments task
}

// newTaskTally starts the totals: recent tasks from `from` on, the walk below.
func newTaskTally(from bson.ObjectID, tasks, mismatches float64) *taskTally {
	return &taskTally{generations: map[int64]*generationTasks{}, watched: map[string]task{},
		recent: recentIDs{from: from, counted: map[string]bool{}}, walk: newIDWalk(from, tasks), mismatchesEstimated: mismatches}
}

func (t *taskTally) generation(g, current int64) *generationTasks {
	gen := t.generations[g]
	if gen == nil {
		gen = &generationTasks{sums: map[taskKey]taskSums{}, rechecked: map[string]*float64{}}
		if g >= current {
			gen.namespaces = namespaceStates{}
		}
		t.generations[g] = gen
	}
	return gen
}

// seal adds one task to its generation's totals.
func (t *taskTally) seal(s task, current int64) {
	gen := t.generation(s.generation, current)
	gen.problems.add(s.problem)
	if s.malformed {
		gen.malformed++
		return
	}
	gen.add(s.generation, s.key, s.namespace, s.sums, s.begin, s.src, s.dst)
}

// add counts sums.count tasks of generation g, of one type, status and namespace, with
// their newest begin_time and recheck times.
func (gen *generationTasks) add(g int64, key taskKey, namespace string, sums taskSums, begin, src, dst *float64) {
	gen.sums[key] = gen.sums[key].plus(sums)
	if gen.namespaces != nil {
		gen.namespaces.add(key, namespace, sums.count)
	}
	gen.begin = newer(gen.begin, begin)
	if g > 0 && key.Type == taskVerifyDocuments && key.compared() {
		gen.rechecked["source"] = newer(gen.rechecked["source"], src)
		gen.rechecked["destination"] = newer(gen.rechecked["destination"], dst)
	}
}

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

// taskHolds tells which finished tasks the verifier deletes if it starts again now:
// every verifyDocuments task of a generation whose processRecheckQueue task is
// unfinished, and those of the namespaces whose generation-0 verifyCollection task is
// unfinished.
type taskHolds struct {
	generations map[int64]bool
	namespaces  map[string]bool
}

// holdsOf derives the holds from unfinished tasks.
func holdsOf(tasks ...[]task) taskHolds {
	h := taskHolds{generations: map[int64]bool{}, namespaces: map[string]bool{}}
	for _, list := range tasks {
		for _, t := range list {
			switch {
			case t.malformed || !t.unfinished || !t.hasGeneration:
			case t.key.Type == taskProcessRecheckQueue:
				h.generations[t.generation] = true
			case t.key.Type == taskVerifyCollection && t.generation == 0 && t.namespace != "":
				h.namespaces[t.namespace] = true
			}
		}
	}
	return h
}

func (h taskHolds) holds(t task) bool {
	return !t.malformed && t.key.Type == taskVerifyDocuments && (h.generations[t.generation] || h.namespaces[t.namespace])
}

// expression is the holds as an aggregation expression on a task (false when none).
func (h taskHolds) expression() any {
	var held bson.A
	if len(h.generations) > 0 {
		held = append(held, bson.D{{Key: "$in", Value: bson.A{"$generation", bson.D{{Key: "$literal", Value: slices.Sorted(maps.Keys(h.generations))}}}}})
	}
	if len(h.namespaces) > 0 {
		held = append(held, bson.D{{Key: "$in", Value: bson.A{"$query_filter.namespace", bson.D{{Key: "$literal", Value: slices.Sorted(maps.Keys(h.namespaces))}}}}})
	}
	if held == nil {
		return false
	}
	return bson.D{{Key: "$and", Value: bson.A{
		bson.D{{Key: "$eq", Value: bson.A{"$type", taskVerifyDocuments}}},
		bson.D{{Key: "$or", Value: held}},
	}}}
}

// update brings the totals up to date with one scrape's steady read, and reads the
// watched tasks it did not return. ok is false when more than maxWatched tasks would
// be watched.
func (t *taskTally) update(ctx context.Context, coll *mongo.Collection, current int64, steady steadyTasks) (ok bool, err error) {
	seen := map[string]task{} // the latest state of every task to settle, by _id
	if steady.primary != nil {
		t.recent.see(steady.primary.id)
	}
	for _, list := range [][]task{steady.unfinished, steady.recent} {
		for _, s := range list {
			t.recent.see(s.id)
			key := idKey(s.id)
			_, watched := t.watched[key]
			switch {
			case !s.hasGeneration:
			case watched || t.recent.holds(s.id):
				seen[key] = s
			case t.walk.ahead(s.id): // the walk reads it
			case s.unfinished: // inserted behind the walk, with an _id made long before
				seen[key] = s
			}
		}
	}
	var lookup bson.A
	for key, w := range t.watched {
		if _, ok := seen[key]; !ok {
			lookup = append(lookup, w.id)
		}
	}
	for start := 0; start < len(lookup); start += lookupBatch {
		found, err := selectTasks(ctx, coll, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: lookup[start:min(start+lookupBatch, len(lookup))]}}}}, 0)
		if err != nil {
			return false, err
		}
		for _, f := range found {
			if f.hasGeneration {
				seen[idKey(f.id)] = f
			}
		}
	}
	holds := holdsOf(steady.unfinished, slices.Collect(maps.Values(seen)))
	watched := map[string]task{} // a watched task not found was deleted
	for key, s := range seen {
		t.recent.see(s.id)
		switch {
		case s.unfinished || holds.holds(s):
			watched[key] = s
		case t.recent.holds(s.id) && t.recent.counted[key]: // sealed at an earlier scrape
		default:
			t.seal(s, current)
			if t.recent.holds(s.id) {
				t.recent.counted[key] = true
			}
		}
	}
	t.watched = watched
	t.recent.advance(now())
	return len(watched) <= maxWatched, nil
}

// walkTaskStages groups a chunk of tasks: one row per task that is unfinished or held
// (its _id in the row's key), and for the others one row per generation, type, status
// and, in the current generation and later, namespace (an unfinished or held task is of
// the current generation or the next).
func walkTaskStages(current int64, holds taskHolds) walkStages {
	return func() mongo.Pipeline {
		listed := bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "$in", Value: bson.A{"$status", bson.D{{Key: "$literal", Value: unfinishedStatuses}}}}},
			holds.expression(),
		}}}
		sum := func(field string) bson.D { return bson.D{{Key: "$sum", Value: "$" + field}} }
		return mongo.Pipeline{
			{{Key: "$group", Value: bson.D{
				{Key: "_id", Value: bson.D{
					{Key: "task", Value: bson.D{{Key: "$cond", Value: bson.A{listed, "$_id", nil}}}},
					{Key: "generation", Value: "$generation"},
					{Key: "type", Value: "$type"},
					{Key: "status", Value: "$status"},
					{Key: "namespace", Value: bson.D{{Key: "$cond", Value: bson.A{
						bson.D{{Key: "$gte", Value: bson.A{"$generation", current}}}, "$query_filter.namespace", nil}}}},
				}},
				{Key: "count", Value: bson.D{{Key: "$sum", Value: 1}}},
				{Key: "documents", Value: sum("documents_count")},
				{Key: "found", Value: sum("found_source_documents_count")},
				{Key: "bytes", Value: sum("source_bytes_count")},
				{Key: "legacy", Value: sum("source_documents_count")}, // metadata v6 and older
				// The verifier writes dates and timestamps there, which sort after every other
				// type it writes: a row's largest is its newest (decodeTaskRow checks the type).
				{Key: "begin", Value: bson.D{{Key: "$max", Value: "$begin_time"}}},
				{Key: "src", Value: bson.D{{Key: "$max", Value: "$srctimestamp"}}},
				{Key: "dst", Value: bson.D{{Key: "$max", Value: "$dsttimestamp"}}},
				{Key: "last", Value: bson.D{{Key: "$max", Value: "$_id"}}},
			}}},
		}
	}
}

// applyChunk adds a chunk of the walk: its listed tasks are watched, the rest sealed.
func (t *taskTally) applyChunk(rows []bson.Raw, current int64) {
	for _, row := range rows {
		t.recent.see(row.Lookup("last"))
		g, ok := decodeTaskRow(row)
		switch {
		case !ok:
			continue
		case g.task.Type != 0: // one task, unfinished or held
			t.watched[idKey(g.task)] = task{id: g.task, generation: g.generation, hasGeneration: true, key: g.key, namespace: g.namespace,
				sums: g.sums, begin: g.begin, src: g.src, dst: g.dst, malformed: g.malformed, unfinished: g.key.unfinished(), problem: g.problem}
			continue
		}
		gen := t.generation(g.generation, current)
		gen.problems.add(g.problem)
		if g.malformed {
			gen.malformed += g.sums.count
			continue
		}
		gen.add(g.generation, g.key, g.namespace, g.sums, g.begin, g.src, g.dst)
	}
}

// forgetPast drops the per-namespace figures of the generations before current.
func (t *taskTally) forgetPast(current int64) {
	for g, gen := range t.generations {
		if g < current {
			gen.namespaces = nil
		}
	}
}

// finished tells whether a task, by its _id, is known to be finished for good (or gone):
// the mismatches it recorded can then no longer be deleted. Only once the walk is done.
func (t *taskTally) finished(id bson.RawValue) bool {
	key := idKey(id)
	if w, ok := t.watched[key]; ok {
		return !w.unfinished
	}
	if t.recent.counted[key] {
		return true
	}
	oid, ok := id.ObjectIDOK()
	return !ok || before(oid, t.recent.from)
}

// fill sets the figures of m from the totals: the current generation's tasks,
// namespaces and last pick; generation 0's; the rechecks and the last rechecked times.
func (t *taskTally) fill(m *verifierMetadata, primary *task) {
	current := func(g int64) bool { return g == m.generation }
	m.tasks, m.namespaces = map[taskKey]taskSums{}, namespaceStates{}
	m.initial = map[taskKey]taskSums{}
	m.lastRechecked = map[string]*float64{}
	rechecks := 0.0
	add := func(g int64, key taskKey, sums taskSums) {
		if current(g) {
			m.tasks[key] = m.tasks[key].plus(sums)
		}
		if g == 0 && m.generation > 0 && (key.Type == taskVerifyDocuments || key.Type == taskVerifyCollection) {
			m.initial[key] = m.initial[key].plus(sums)
		}
		if g > 0 && g <= m.generation && key.Type == taskVerifyDocuments && key.compared() {
			if m.legacyFields() {
				rechecks += sums.legacyDocuments
			} else {
				rechecks += sums.documents
			}
		}
	}
	for _, g := range slices.Sorted(maps.Keys(t.generations)) {
		gen := t.generations[g]
		for key, sums := range gen.sums {
			add(g, key, sums)
		}
		for role, at := range gen.rechecked {
			m.lastRechecked[role] = newer(m.lastRechecked[role], at)
		}
		if current(g) || g == 0 {
			m.problems.addAll(gen.problems)
		}
		if current(g) {
			m.malformed += gen.malformed
			m.namespaces.addAll(gen.namespaces)
			m.lastBegin = newer(m.lastBegin, gen.begin)
		}
	}
	var problems []string // added in order: the log lists at most maxProblems
	for _, w := range t.watched {
		if current(w.generation) {
			if w.problem != "" {
				problems = append(problems, w.problem)
			}
			m.lastBegin = newer(m.lastBegin, w.begin)
			if w.malformed {
				m.malformed++
			} else {
				m.namespaces.add(w.key, w.namespace, 1)
			}
		}
		if w.malformed {
			continue
		}
		add(w.generation, w.key, w.sums)
		if w.generation > 0 && w.key.Type == taskVerifyDocuments && w.key.compared() {
			m.lastRechecked["source"] = newer(m.lastRechecked["source"], w.src)
			m.lastRechecked["destination"] = newer(m.lastRechecked["destination"], w.dst)
		}
	}
	slices.Sort(problems)
	for _, p := range problems {
		m.problems.add(p)
	}
	for role, at := range m.lastRechecked {
		if at == nil {
			delete(m.lastRechecked, role)
		}
	}
	if primary != nil {
		m.tasks[primary.key] = m.tasks[primary.key].plus(primary.sums)
	}
	if m.generation == 0 {
		m.initial = m.tasks
	}
	m.rechecksDone = &rechecks
	m.newestTask = objectIDSeconds(t.recent.newest)
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
