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
	"maps"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// lookupBatch bounds the _ids of one {_id: {$in: ...}} query.
const lookupBatch = 5_000

// maxWatched bounds the tasks, and the mismatches, a scrape reads one by one: what the
// exporter keeps of them, and what each scrape reads again. 0 keeps no running totals.
// A variable so that tests can lower it.
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

// seal adds a finished task to its generation's totals, or a walk's row of them (whose
// sums count the tasks).
func (t *taskTally) seal(s task, current int64) {
	gen := t.generation(s.generation, current)
	gen.problems.add(s.problem)
	if s.malformed {
		gen.malformed += s.sums.count
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

// sealable tells whether a task is finished for good: finished, and not held. The walk
// asks the same on the server (unsealableExpression): the two must agree.
func (h taskHolds) sealable(t task) bool {
	return !t.unfinished && !h.holds(t)
}

// unsealableExpression is the opposite of sealable as an aggregation expression on a
// task: unfinished, or held.
func (h taskHolds) unsealableExpression() bson.D {
	return bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "$in", Value: bson.A{"$status", bson.D{{Key: "$literal", Value: unfinishedStatuses}}}}},
		h.expression(),
	}}}
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

// update brings the totals up to date with one scrape's steady read: it picks the
// tasks to settle, looks up the watched tasks the read did not return, then seals those
// finished for good and watches the others. ok is false when more than maxWatched tasks
// would be watched.
func (t *taskTally) update(ctx context.Context, coll *mongo.Collection, current int64, steady steadyTasks) (ok bool, err error) {
	seen := t.toSettle(steady)
	if err := t.lookUpWatched(ctx, coll, seen); err != nil {
		return false, err
	}
	t.settle(seen, holdsOf(steady.unfinished, slices.Collect(maps.Values(seen))), current)
	t.recent.advance(now())
	return len(t.watched) <= maxWatched, nil
}

// toSettle picks the tasks of the steady read that the tally settles now, by _id: those
// it watches, the recent ones, and unfinished ones behind the walk. The walk reads the
// others; the primary task, without a generation, is in no total.
func (t *taskTally) toSettle(steady steadyTasks) map[string]task {
	seen := map[string]task{}
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
	return seen
}

// lookUpWatched adds to seen the watched tasks the steady read did not return: they
// finished, or the verifier deleted them (then they are not found).
func (t *taskTally) lookUpWatched(ctx context.Context, coll *mongo.Collection, seen map[string]task) error {
	var lookup bson.A
	for key, w := range t.watched {
		if _, ok := seen[key]; !ok {
			lookup = append(lookup, w.id)
		}
	}
	for start := 0; start < len(lookup); start += lookupBatch {
		found, err := selectTasks(ctx, coll, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: lookup[start:min(start+lookupBatch, len(lookup))]}}}}, 0)
		if err != nil {
			return err
		}
		for _, f := range found {
			if f.hasGeneration {
				seen[idKey(f.id)] = f
			}
		}
	}
	return nil
}

// settle seals the tasks seen that are finished for good (once: a recent task stays
// recent for a while) and watches the others. A watched task not seen is gone.
func (t *taskTally) settle(seen map[string]task, holds taskHolds, current int64) {
	watched := map[string]task{}
	for key, s := range seen {
		t.recent.see(s.id)
		switch {
		case !holds.sealable(s):
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
}

// walkTaskStages groups a chunk of tasks: one row per task that is unfinished or held
// (its _id in the row's key), and for the others one row per generation, type, status
// and, in the current generation and later, namespace (an unfinished or held task is of
// the current generation or the next).
func walkTaskStages(current int64, holds taskHolds) walkStages {
	return func() mongo.Pipeline {
		listed := holds.unsealableExpression()
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
		r, ok := decodeTaskRow(row)
		switch {
		case !ok:
		case r.task.Type != 0: // one task, unfinished or held
			t.watched[idKey(r.task)] = r.asTask()
		default:
			t.seal(r.asTask(), current)
		}
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
	m.tasks, m.initial, m.namespaces = map[taskKey]taskSums{}, map[taskKey]taskSums{}, namespaceStates{}
	m.lastRechecked, m.rechecksDone = map[string]*float64{}, new(float64)
	t.fillSealed(m)
	t.fillWatched(m)
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
	m.newestTask = objectIDSeconds(t.recent.newest)
}

// fillSealed adds the sealed tasks to the figures of m.
func (t *taskTally) fillSealed(m *verifierMetadata) {
	for _, g := range slices.Sorted(maps.Keys(t.generations)) {
		gen := t.generations[g]
		for key, sums := range gen.sums {
			m.countTasks(g, key, sums)
		}
		for role, at := range gen.rechecked {
			m.lastRechecked[role] = newer(m.lastRechecked[role], at)
		}
		if g == m.generation || g == 0 {
			m.problems.addAll(gen.problems)
		}
		if g == m.generation {
			m.malformed += gen.malformed
			m.namespaces.addAll(gen.namespaces)
			m.lastBegin = newer(m.lastBegin, gen.begin)
		}
	}
}

// fillWatched adds the watched tasks to the figures of m.
func (t *taskTally) fillWatched(m *verifierMetadata) {
	var problems []string // added in order: the log lists at most maxProblems
	for _, w := range t.watched {
		if w.generation == m.generation {
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
		m.countTasks(w.generation, w.key, w.sums)
		if w.generation > 0 && w.key.Type == taskVerifyDocuments && w.key.compared() {
			m.lastRechecked["source"] = newer(m.lastRechecked["source"], w.src)
			m.lastRechecked["destination"] = newer(m.lastRechecked["destination"], w.dst)
		}
	}
	slices.Sort(problems)
	for _, p := range problems {
		m.problems.add(p)
	}
}
