package exporter

// Running totals of a verification's mismatches (metadata version 6 and later), so that
// a scrape reads what can still change rather than every mismatch again.
//
// What migration-verifier v0.2.1 does to its mismatches (docs/migration-verifier.md, M1
// to M4): a task inserts them while it runs (recordMismatches, with an ObjectId the
// driver makes as it inserts), and the only deletion is of a task's own mismatches
// before it retries that task, which is then processing (clearMismatchesForTask). The
// restarts delete tasks, never mismatches, and a finished task is never run again. So
// the mismatches of a task known to be finished for good (taskTally.finished) are
// sealed: counted once, never read again. The others are "open": read again, by _id, at
// every scrape, until their task is finished or they are gone.
//
// Like the tasks', the totals start with a walk over every mismatch below the recent
// ones (recentIDs); it begins once the walk of the tasks is done, since only then is it
// known which tasks are finished.

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

const mismatchesCollection = "mismatches"

// mismatchTally is the running totals of one verification's mismatches.
type mismatchTally struct {
	generations map[int64]*generationMismatches // sealed mismatches, by generation
	open        map[string]mismatch             // idKey -> a mismatch whose task may still delete it
	recent      recentIDs
	walk        *idWalk
}

// generationMismatches are the sealed mismatches of one generation.
type generationMismatches struct {
	kinds map[string]float64
	// namespaces counts them by detail.namespace, and badNamespaces by the value of one
	// that is not a string; both nil once the generation is older than the previous one.
	namespaces, badNamespaces map[string]float64
}

// mismatch is one mismatch document, as far as the exporter needs it.
type mismatch struct {
	id         bson.RawValue
	generation int64
	task       bson.RawValue // the task that found it (taskID)
	kind       string
	namespace  string
	badNS      string // describeValue of detail.namespace when it is not a string
}

func newMismatchTally(from bson.ObjectID, estimated float64) *mismatchTally {
	t := &mismatchTally{generations: map[int64]*generationMismatches{}, open: map[string]mismatch{},
		recent: recentIDs{from: from, counted: map[string]bool{}}}
	t.walk = newIDWalk(from, estimated)
	return t
}

func (t *mismatchTally) generation(g, current int64) *generationMismatches {
	gen := t.generations[g]
	if gen == nil {
		gen = &generationMismatches{kinds: map[string]float64{}}
		if g >= current-1 {
			gen.namespaces, gen.badNamespaces = map[string]float64{}, map[string]float64{}
		}
		t.generations[g] = gen
	}
	return gen
}

func (gen *generationMismatches) add(kind, namespace, badNS string, n float64) {
	gen.kinds[kind] += n
	switch {
	case gen.namespaces == nil:
	case badNS != "":
		gen.badNamespaces[badNS] += n
	default:
		gen.namespaces[namespace] += n
	}
}

// mismatchKind classifies a mismatch as the verifier does (countMismatchesForGeneration,
// mismatches.go): a verifyCollection task's are metadata mismatches; "Missing" with no
// field is a document missing on the cluster named (dstClient: missing on the
// destination, srcClient: extra on it); the rest differ in content.
func mismatchKind(taskType string, missing bool, cluster string) string {
	switch {
	case taskType == taskVerifyCollection:
		return kindMetadata
	case missing && cluster == "dstClient":
		return kindMissing
	case missing && cluster == "srcClient":
		return kindExtra
	}
	return kindContent
}

// mismatchProjection is what the exporter reads of a mismatch.
var mismatchProjection = bson.D{
	{Key: "generation", Value: 1}, {Key: "taskType", Value: 1}, {Key: "taskID", Value: 1},
	{Key: "detail.details", Value: 1}, {Key: "detail.field", Value: 1}, {Key: "detail.cluster", Value: 1}, {Key: "detail.namespace", Value: 1},
}

// decodeMismatch reads one mismatch; ok is false for one without _id or whose generation
// is not a whole number (no figure counts it).
func decodeMismatch(doc bson.Raw) (m mismatch, ok bool) {
	if err := doc.Validate(); err != nil {
		return m, false
	}
	if m.id = doc.Lookup("_id"); m.id.Type == 0 {
		return m, false
	}
	if m.generation, ok = wholeNumber(doc.Lookup("generation")); !ok {
		return m, false
	}
	m.task = doc.Lookup("taskID")
	taskType, _ := doc.Lookup("taskType").StringValueOK()
	details, _ := doc.Lookup("detail", "details").StringValueOK()
	field, fieldIsString := doc.Lookup("detail", "field").StringValueOK()
	cluster, _ := doc.Lookup("detail", "cluster").StringValueOK()
	m.kind = mismatchKind(taskType, details == "Missing" && fieldIsString && field == "", cluster)
	m.namespace, m.badNS = decodeMismatchNamespace(doc.Lookup("detail", "namespace"))
	return m, true
}

// decodeMismatchNamespace reads detail.namespace; bad describes one that is not a string
// (an absent one as null, as a $group on it sees it).
func decodeMismatchNamespace(v bson.RawValue) (namespace, bad string) {
	if s, ok := v.StringValueOK(); ok {
		return s, ""
	}
	if v.Type == 0 {
		v = bson.RawValue{Type: bson.TypeNull}
	}
	return "", describeValue(v)
}

// mismatchRow is one row of a walk's chunk of mismatches: those of one task, generation,
// kind and namespace.
type mismatchRow struct {
	generation       int64
	task             bson.RawValue
	kind             string
	namespace, badNS string
	count            float64
	ids              []bson.RawValue
}

// decodeMismatchRow reads a row of walkMismatchStages; ok is false for one whose
// generation is not a whole number.
func decodeMismatchRow(row bson.Raw) (r mismatchRow, ok bool) {
	var id bson.Raw
	if id, r.generation, ok = walkRowKey(row); !ok {
		return r, false
	}
	r.task = id.Lookup("task")
	taskType, _ := id.Lookup("taskType").StringValueOK()
	missing, _ := id.Lookup("missing").BooleanOK()
	cluster, _ := id.Lookup("cluster").StringValueOK()
	r.kind = mismatchKind(taskType, missing, cluster)
	r.namespace, r.badNS = decodeMismatchNamespace(id.Lookup("namespace"))
	r.count = numberOrZero(row, "count")
	if ids, isArray := row.Lookup("ids").ArrayOK(); isArray {
		r.ids, _ = ids.Values()
	}
	return r, true
}

// walkMismatchStages groups a chunk of mismatches by task, generation, kind and
// namespace, with their _ids (for those of a task that may still delete them).
func walkMismatchStages() mongo.Pipeline {
	return mongo.Pipeline{{{Key: "$group", Value: bson.D{
		{Key: "_id", Value: bson.D{
			{Key: "generation", Value: "$generation"},
			{Key: "task", Value: "$taskID"},
			{Key: "taskType", Value: "$taskType"},
			{Key: "missing", Value: bson.D{{Key: "$and", Value: bson.A{
				bson.D{{Key: "$eq", Value: bson.A{"$detail.details", "Missing"}}},
				bson.D{{Key: "$eq", Value: bson.A{"$detail.field", ""}}},
			}}}},
			{Key: "cluster", Value: "$detail.cluster"},
			{Key: "namespace", Value: "$detail.namespace"},
		}},
		{Key: "count", Value: bson.D{{Key: "$sum", Value: 1}}},
		{Key: "ids", Value: bson.D{{Key: "$push", Value: "$_id"}}},
		{Key: "last", Value: bson.D{{Key: "$max", Value: "$_id"}}},
	}}}}
}

// applyChunk adds a chunk of the walk: the mismatches of finished tasks are sealed, the
// others open.
func (t *mismatchTally) applyChunk(rows []bson.Raw, tasks *taskTally, current int64) {
	for _, row := range rows {
		t.recent.see(row.Lookup("last"))
		r, ok := decodeMismatchRow(row)
		if !ok {
			continue
		}
		if tasks.finished(r.task) {
			t.generation(r.generation, current).add(r.kind, r.namespace, r.badNS, r.count)
			continue
		}
		for _, id := range r.ids {
			t.open[idKey(id)] = mismatch{id: id, generation: r.generation, task: r.task, kind: r.kind, namespace: r.namespace, badNS: r.badNS}
		}
	}
}

// update reads the recent mismatches and the open ones, and seals those whose task is
// now finished. ok is false when more than maxWatched would be read one by one.
func (t *mismatchTally) update(ctx context.Context, coll *mongo.Collection, tasks *taskTally, current int64) (ok bool, err error) {
	if len(t.open) > maxWatched {
		return false, nil
	}
	var openIDs bson.A
	for _, m := range t.open {
		openIDs = append(openIDs, m.id)
	}
	branches := t.recent.filter()
	if len(openIDs) > 0 {
		branches = append(branches, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: openIDs}}}})
	}
	limit := len(openIDs) + maxWatched + 1
	cursor, err := aggregate(ctx, coll.Database(), coll.Name(), mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "$or", Value: branches}}}},
		{{Key: "$limit", Value: limit}},
		{{Key: "$project", Value: mismatchProjection}},
	})
	if err != nil {
		return false, fmt.Errorf("reading mismatches: %w", err)
	}
	defer cursor.Close(context.WithoutCancel(ctx))
	var found []mismatch
	for cursor.Next(ctx) {
		if m, ok := decodeMismatch(cursor.Current); ok {
			found = append(found, m)
		}
	}
	if err := cursor.Err(); err != nil {
		return false, fmt.Errorf("reading mismatches: %w", err)
	}
	if len(found) >= limit {
		return false, nil
	}
	open := map[string]mismatch{} // an open mismatch not found was deleted
	for _, m := range found {
		key := idKey(m.id)
		t.recent.see(m.id)
		recent := t.recent.holds(m.id)
		switch {
		case recent && t.recent.counted[key]: // sealed at an earlier scrape
		case tasks.finished(m.task):
			t.generation(m.generation, current).add(m.kind, m.namespace, m.badNS, 1)
			if recent {
				t.recent.counted[key] = true
			}
		default:
			open[key] = m
		}
	}
	t.open = open
	t.recent.advance(now())
	return len(open) <= maxWatched, nil
}

// forgetPast drops the per-namespace counts of the generations before the previous one.
func (t *mismatchTally) forgetPast(current int64) {
	for g, gen := range t.generations {
		if g < current-1 {
			gen.namespaces, gen.badNamespaces = nil, nil
		}
	}
}

// fill sets the mismatch figures of m: by kind and by namespace those of the verdict
// generation, and the count of each of the last generations.
func (t *mismatchTally) fill(m *verifierMetadata) {
	m.mismatch = map[string]float64{}
	for _, kind := range mismatchKinds {
		m.mismatch[kind] = 0
	}
	m.generationMismatches = map[int64]float64{}
	for g := max(0, m.generation-generationMismatchSpan+1); g <= m.generation; g++ {
		m.generationMismatches[g] = 0
	}
	m.namespaceMismatches = map[string]float64{}
	bad := map[string]float64{}
	for g, gen := range t.generations {
		if _, ok := m.generationMismatches[g]; ok {
			for _, n := range gen.kinds {
				m.generationMismatches[g] += n
			}
		}
		if g == m.verdict {
			addAll(m.mismatch, gen.kinds)
			addAll(m.namespaceMismatches, gen.namespaces)
			addAll(bad, gen.badNamespaces)
		}
	}
	for _, o := range t.open {
		if _, ok := m.generationMismatches[o.generation]; ok {
			m.generationMismatches[o.generation]++
		}
		if o.generation != m.verdict {
			continue
		}
		m.mismatch[o.kind]++
		if o.badNS != "" {
			bad[o.badNS]++
		} else {
			m.namespaceMismatches[o.namespace]++
		}
	}
	for _, value := range slices.Sorted(maps.Keys(bad)) {
		m.problems.add(fmt.Sprintf("%.0f mismatch(es) whose detail.namespace is %s; left out of the per-namespace counts", bad[value], value))
	}
}

func addAll(to, from map[string]float64) {
	for k, n := range from {
		to[k] += n
	}
}
