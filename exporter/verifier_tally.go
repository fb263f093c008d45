package exporter

// Running totals of the current generation's tasks, so that a scrape reads what can
// still change rather than every task of the generation again.
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
// and --clean drops the whole database (the reader then starts every cache again).
//
// So a finished task is "sealed" (added to the totals and never read again) unless the
// verifier may still delete it: a verifyDocuments task while the generation's
// processRecheckQueue task is unfinished, or while its namespace's generation-0
// verifyCollection task is unfinished. Those, and unfinished tasks, are "watched": read
// at every scrape. While the primary task is unfinished, a restart deletes every task of
// every generation at once: the reader then watches the oldest task, and starts every
// figure of the tasks again when it changes (readTasks). A scrape reads:
//   - the unfinished tasks (the index {generation, type, status} selects them);
//   - the recent tasks, _id from recentFrom on (the _id index): a task inserted and
//     finished between two scrapes is never seen unfinished, and an ObjectId made just
//     before a scrape may be inserted just after it, so every task whose _id was not
//     yet past the newest _id seen recentWindow ago is read again (its seal remembered),
//     and, when the totals start, every task whose _id was made in the last
//     recentWindow (the _id holds the time it was made, by the verifier's clock);
//   - by _id, the watched tasks that left the unfinished set: they finished, or were
//     deleted.
// A new generation starts the totals again from one aggregation of the finished tasks on
// the server. The totals are kept while at most maxWatched tasks are watched or recent;
// otherwise the generation is summed on the server.

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// recentWindow is how long after a scrape the tasks it saw as newest are read again.
const recentWindow = 2 * time.Minute

// lookupBatch bounds the _ids of one {_id: {$in: ...}} query.
const lookupBatch = 5_000

// maxWatched bounds the tasks a scrape reads one by one (about 150 bytes each). A
// variable so that tests can lower it.
var maxWatched = 20_000

// now is the clock of recentWindow, for tests to drive.
var now = time.Now

// taskTally is the running totals of one generation of one verification.
type taskTally struct {
	generation int64

	sealed          map[taskKey]taskSums
	sealedNS        namespaceStates
	sealedMalformed float64
	sealedProblems  problemList // of the sealed tasks, reported at every scrape

	watched    map[string]bson.RawValue // idKey -> _id of unfinished or not yet sealable tasks
	counted    map[string]bool          // idKey of recent tasks already sealed
	recentFrom bson.ObjectID
	newest     bson.ObjectID // the largest task _id seen
	marks      []mark        // newest, as seen at each scrape of the last recentWindow
	// sealedBegin is the newest begin_time of the sealed tasks (a finished task keeps
	// the time it was picked).
	sealedBegin *float64
}

type mark struct {
	at     time.Time
	newest bson.ObjectID
}

// idKey identifies a task by its _id, whatever the _id's type.
func idKey(id bson.RawValue) string {
	return string([]byte{byte(id.Type)}) + string(id.Value)
}

// before tells whether ObjectId a sorts before b.
func before(a, b bson.ObjectID) bool {
	return bytes.Compare(a[:], b[:]) < 0
}

// readTally fills m.tasks and m.namespaces from the running totals, bringing them up to
// date. ok is false when totals cannot be kept now (unfinished is nil when there are too
// many to watch): the caller sums the generation on the server.
func (r *verifierReader) readTally(ctx context.Context, tasks *mongo.Collection, m *verifierMetadata, primary *task, unfinished []task) (ok bool, err error) {
	if unfinished == nil {
		r.tally = nil
		return false, nil
	}
	t := r.tally
	if t == nil || t.generation != m.generation {
		if t, err = startTally(ctx, tasks, m, unfinished); err != nil || t == nil {
			r.tally = nil
			return false, err
		}
	}
	ok, err = t.update(ctx, tasks, m, primary, unfinished)
	if err != nil || !ok {
		r.tally = nil
		return false, err
	}
	r.tally = t
	return true, nil
}

func primaryKey(primary *task) string {
	if primary == nil {
		return ""
	}
	return idKey(primary.id)
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

// readUnfinished reads the current generation's unfinished tasks and the primary task.
// unfinished is nil when there are more than maxWatched.
func readUnfinished(ctx context.Context, coll *mongo.Collection, m *verifierMetadata) (unfinished []task, primary *task, err error) {
	found, err := selectTasks(ctx, coll, bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "generation", Value: m.generation}, {Key: "status", Value: bson.D{{Key: "$in", Value: unfinishedStatuses}}}},
		bson.D{{Key: "generation", Value: nil}, {Key: "type", Value: taskPrimary}},
	}}}, maxWatched+2)
	if err != nil {
		return nil, nil, err
	}
	unfinished = []task{}
	for i := range found {
		if !found[i].malformed && found[i].key.Type == taskPrimary {
			if primary == nil {
				primary = &found[i]
			}
			continue
		}
		unfinished = append(unfinished, found[i])
	}
	if len(unfinished) > maxWatched {
		return nil, primary, nil
	}
	return unfinished, primary, nil
}

// startTally sums the generation's finished tasks on the server, but for the recent
// ones, the unfinished ones and those not yet sealable, which the tally reads itself.
func startTally(ctx context.Context, coll *mongo.Collection, m *verifierMetadata, unfinished []task) (*taskTally, error) {
	t := &taskTally{
		generation: m.generation,
		sealed:     map[taskKey]taskSums{}, sealedNS: namespaceStates{},
		watched: map[string]bson.RawValue{}, counted: map[string]bool{},
	}
	var err error
	if t.newest, err = newestTaskID(ctx, coll); err != nil {
		return nil, err
	}
	// The tasks whose _ids were made in the last recentWindow, by this clock: the
	// verifier's, which stamped the _ids, agrees with it within seconds when both hosts
	// keep time (NTP), far less than recentWindow.
	t.recentFrom = bson.NewObjectIDFromTimestamp(now().Add(-recentWindow))
	var unfinishedIDs bson.A
	for _, u := range unfinished {
		unfinishedIDs = append(unfinishedIDs, u.id)
		t.watched[idKey(u.id)] = u.id
	}
	if unfinishedIDs == nil {
		unfinishedIDs = bson.A{}
	}
	finishedBefore := bson.D{
		{Key: "generation", Value: m.generation},
		{Key: "status", Value: bson.D{{Key: "$nin", Value: unfinishedStatuses}}},
		{Key: "_id", Value: bson.D{{Key: "$lt", Value: t.recentFrom}, {Key: "$nin", Value: unfinishedIDs}}},
	}
	held := holdsOf(unfinished, m.generation).filter()
	sealable := finishedBefore
	if held != nil {
		sealable = append(slices.Clip(finishedBefore), bson.E{Key: "$nor", Value: bson.A{held}})
	}
	g, err := readTaskGroups(ctx, coll.Database(), sealable, true, &t.sealedProblems)
	if err != nil {
		return nil, err
	}
	t.sealed, t.sealedNS, t.sealedMalformed = g.sums, g.namespaces, g.malformed
	if t.sealedBegin, err = lastBegin(ctx, coll, sealable); err != nil {
		return nil, err
	}
	if held != nil {
		found, err := selectTasks(ctx, coll, append(slices.Clip(finishedBefore), held...), maxWatched+1)
		if err != nil {
			return nil, err
		}
		if len(found)+len(unfinished) > maxWatched {
			return nil, nil
		}
		for _, h := range found {
			t.watched[idKey(h.id)] = h.id
		}
	}
	return t, nil
}

// taskHolds tells which finished tasks of the current generation the verifier deletes if
// it starts again now: every verifyDocuments task while the generation's
// processRecheckQueue task is unfinished, and those of the namespaces whose generation-0
// verifyCollection task is unfinished.
type taskHolds struct {
	allDocuments bool
	namespaces   map[string]bool
}

// holdsOf derives the holds from the generation's unfinished tasks (or any superset).
func holdsOf(tasks []task, generation int64) taskHolds {
	h := taskHolds{namespaces: map[string]bool{}}
	for _, t := range tasks {
		if t.malformed || !t.unfinished {
			continue
		}
		switch {
		case t.key.Type == taskProcessRecheckQueue:
			h.allDocuments = true
		case t.key.Type == taskVerifyCollection && generation == 0 && t.namespace != "":
			h.namespaces[t.namespace] = true
		}
	}
	return h
}

func (h taskHolds) holds(t task) bool {
	return !t.malformed && t.key.Type == taskVerifyDocuments && (h.allDocuments || h.namespaces[t.namespace])
}

// filter selects the held tasks among finished ones; nil when none is held.
func (h taskHolds) filter() bson.D {
	documents := bson.E{Key: "type", Value: taskVerifyDocuments}
	switch {
	case h.allDocuments:
		return bson.D{documents}
	case len(h.namespaces) > 0:
		return bson.D{documents, {Key: "query_filter.namespace", Value: bson.D{{Key: "$in", Value: slices.Sorted(maps.Keys(h.namespaces))}}}}
	}
	return nil
}

// update brings the totals up to date and fills m from them.
func (t *taskTally) update(ctx context.Context, coll *mongo.Collection, m *verifierMetadata, primary *task, unfinished []task) (bool, error) {
	recent, err := selectTasks(ctx, coll, bson.D{
		{Key: "generation", Value: m.generation},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: t.recentFrom}}}},
			bson.D{{Key: "_id", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$type", Value: "objectId"}}}}}},
		}},
	}, maxWatched+1)
	if err != nil {
		return false, err
	}
	if len(recent) > maxWatched {
		return false, nil
	}
	// The latest state of every task read, by _id: unfinished, then recent, then looked up.
	seen := map[string]task{}
	for _, list := range [][]task{unfinished, recent} {
		for _, u := range list {
			seen[idKey(u.id)] = u
		}
	}
	var lookup bson.A
	for key, id := range t.watched {
		if _, ok := seen[key]; !ok {
			lookup = append(lookup, id)
		}
	}
	for start := 0; start < len(lookup); start += lookupBatch {
		found, err := selectTasks(ctx, coll, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: lookup[start:min(start+lookupBatch, len(lookup))]}}}}, 0)
		if err != nil {
			return false, err
		}
		for _, f := range found {
			seen[idKey(f.id)] = f
		}
	}

	holds := holdsOf(slices.Collect(maps.Values(seen)), m.generation)
	var currentBegin *float64
	current := map[taskKey]taskSums{}
	currentNS := namespaceStates{}
	watched := map[string]bson.RawValue{}
	for key, s := range seen {
		recentID := isRecent(s.id, t.recentFrom)
		switch {
		case s.unfinished || holds.holds(s):
			m.problems.add(s.problem)
			if s.malformed {
				m.malformed++
			} else {
				current[s.key] = current[s.key].plus(s.sums)
				currentNS.add(s.key, s.namespace, 1)
			}
			currentBegin = newer(currentBegin, s.begin)
			watched[key] = s.id
		case recentID && t.counted[key]: // sealed at an earlier scrape
		default:
			t.sealedProblems.add(s.problem)
			if s.malformed {
				t.sealedMalformed++
			} else {
				t.sealed[s.key] = t.sealed[s.key].plus(s.sums)
				t.sealedNS.add(s.key, s.namespace, 1)
			}
			if recentID {
				t.counted[key] = true
			}
			t.sealedBegin = newer(t.sealedBegin, s.begin)
		}
		if oid, ok := s.id.ObjectIDOK(); ok && before(t.newest, oid) {
			t.newest = oid
		}
	}
	if len(watched) > maxWatched {
		return false, nil
	}
	t.watched = watched // a watched task not found was deleted
	t.advance(now())

	m.tasks = map[taskKey]taskSums{}
	for _, part := range []map[taskKey]taskSums{t.sealed, current} {
		for k, s := range part {
			m.tasks[k] = m.tasks[k].plus(s)
		}
	}
	if primary != nil {
		m.tasks[primary.key] = m.tasks[primary.key].plus(primary.sums)
	}
	m.malformed += t.sealedMalformed
	m.problems.addAll(t.sealedProblems)
	m.namespaces = namespaceStates{}
	m.namespaces.addAll(t.sealedNS)
	m.namespaces.addAll(currentNS)
	m.newestTask = objectIDSeconds(t.newest)
	m.lastBegin = newer(t.sealedBegin, currentBegin)
	return true, nil
}

// isRecent tells whether the recent-tasks query returns a task with this _id.
func isRecent(id bson.RawValue, from bson.ObjectID) bool {
	oid, ok := id.ObjectIDOK()
	return !ok || !before(oid, from)
}

// advance moves recentFrom to the newest _id seen recentWindow ago, and forgets the
// seals of tasks the recent-tasks query no longer returns.
func (t *taskTally) advance(now time.Time) {
	t.marks = append(t.marks, mark{at: now, newest: t.newest})
	i := 0
	for i+1 < len(t.marks) && now.Sub(t.marks[i+1].at) >= recentWindow {
		i++
	}
	if now.Sub(t.marks[i].at) >= recentWindow && before(t.recentFrom, t.marks[i].newest) {
		t.recentFrom = t.marks[i].newest
	}
	t.marks = t.marks[i:]
	for key := range t.counted {
		if key[0] == byte(bson.TypeObjectID) && bytes.Compare([]byte(key[1:]), t.recentFrom[:]) < 0 {
			delete(t.counted, key)
		}
	}
}
