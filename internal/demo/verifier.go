package demo

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	vf "github.com/mongomigrate/observability/internal/verifierfixture"
)

// verifier is a simulated migration-verifier: it writes its metadata database as the
// verifier does (package verifierfixture) along its script, one cycle after another
// (each cycle starts it again with --clean), and answers GET /api/v1/progress from what
// it wrote.
type verifier struct {
	script  verifierScript
	share   float64 // of the source's writes its shard receives
	db      *mongo.Database
	clock   *clock
	load    *load
	narrate func(format string, args ...any)
	// quietBefore: what the verifier did before the demo started (the state it joins)
	// is written at once, and not narrated.
	quietBefore time.Time

	mu         sync.Mutex
	stepAt     time.Time // the time of the step being taken
	cycle      int       // the cycle planned, -1 before the first
	steps      []step
	next       int // steps before it are done
	generation int32
	started    bool // the metadata database exists
	tasks      []*simTask
	mismatches []simMismatch
}

// step is one change the verifier makes at a moment; run updates the database and the
// verifier's own record of it, with mu held.
type step struct {
	at  time.Time
	run func(ctx context.Context, f vf.Fixture) error
}

type simTask struct {
	id                     bson.ObjectID
	generation             int32
	typ, status, namespace string
	documents, found, size int64
	ids                    []int     // a recheck task's documents
	srcTS                  time.Time // the newest change a recheck task covers
}

type simMismatch struct {
	generation int32
	kind       string // as the API's longestDocMismatch names it: missingOnDst, content, or metadata
	namespace  string
	id         any
	field      string
	first      time.Time
}

// Documents of a mismatching partition: missing on the destination (from missingID), and
// one whose content differs.
const (
	missingID = 1001
	contentID = 1005
)

func newVerifier(script verifierScript, db *mongo.Database, c *clock, l *load, narrate func(string, ...any), quietBefore time.Time) *verifier {
	share := 0.0
	for _, in := range instances {
		if in.name == script.name {
			share = in.share
		}
	}
	return &verifier{script: script, share: share, db: db, clock: c, load: l, narrate: narrate, quietBefore: quietBefore, cycle: -1}
}

// say narrates what the step being taken does, unless it happened before the demo.
func (v *verifier) say(format string, args ...any) {
	if !v.stepAt.Before(v.quietBefore) {
		v.narrate("verifier "+v.script.name+": "+format, args...)
	}
}

// run takes every step whose time has come, each second, and keeps the change readers'
// counts current (the verifier persists them every 10 s), until ctx ends.
func (v *verifier) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var countsAt time.Time
	for {
		now := time.Now()
		v.advance(ctx, now)
		if now.Sub(countsAt) >= 10*time.Second {
			countsAt = now
			v.writeCounts(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (v *verifier) fixture() vf.Fixture { return vf.Fixture{DB: v.db, Now: time.Now()} }

func (v *verifier) advance(ctx context.Context, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if n := v.clock.cycle(now); n != v.cycle {
		v.cycle, v.steps, v.next = n, v.plan(v.clock.cycleStart(n)), 0
	}
	for ; v.next < len(v.steps) && !v.steps[v.next].at.After(now); v.next++ {
		v.stepAt = v.steps[v.next].at
		if err := v.steps[v.next].run(ctx, v.fixture()); err != nil && ctx.Err() == nil {
			v.narrate("verifier %s: writing its metadata: %v", v.script.name, err)
		}
	}
}

func (v *verifier) writeCounts(ctx context.Context) {
	v.mu.Lock()
	started := v.started
	v.mu.Unlock()
	if started {
		counts := v.load.counts(v.share)
		if err := v.fixture().SetChangeCounts(ctx, "changeReader", counts, counts); err != nil && ctx.Err() == nil {
			v.narrate("verifier %s: writing its change counts: %v", v.script.name, err)
		}
	}
}

// plan lays out one cycle of the verifier's work, starting at c0.
func (v *verifier) plan(c0 time.Time) []step {
	s := v.script
	var steps []step
	add := func(d time.Duration, run func(ctx context.Context, f vf.Fixture) error) {
		steps = append(steps, step{at: c0.Add(d), run: run})
	}
	primary := &simTask{id: bson.NewObjectID(), typ: vf.TaskPrimary, status: vf.StatusAdded}
	add(s.gen0Start-3*time.Second, func(ctx context.Context, f vf.Fixture) error {
		v.generation, v.tasks, v.mismatches, v.started = 0, nil, nil, true
		if err := v.db.Drop(ctx); err != nil { // --clean
			return err
		}
		counts := v.load.counts(v.share)
		if err := f.ChangeReader(ctx, "changeReader", counts, counts); err != nil {
			return err
		}
		return v.insert(ctx, f, primary)
	})

	// Generation 0: one verifyCollection task per namespace, then its partitions.
	var collections []*simTask
	for _, ns := range s.namespaces {
		collections = append(collections, &simTask{id: bson.NewObjectID(), typ: vf.TaskVerifyCollection, status: vf.StatusAdded,
			namespace: ns.name, documents: ns.documents, size: ns.bytes})
	}
	add(s.gen0Start-2*time.Second, func(ctx context.Context, f vf.Fixture) error {
		if err := f.SetGeneration(ctx, 0); err != nil {
			return err
		}
		v.say("initial check started (generation 0): %d namespaces", len(s.namespaces))
		if err := v.insert(ctx, f, collections...); err != nil {
			return err
		}
		primary.status = vf.StatusCompleted
		return f.SetTaskStatus(ctx, primary.id, primary.status)
	})
	add(s.gen0Start, func(ctx context.Context, f vf.Fixture) error {
		return v.start(ctx, f, c0.Add(s.gen0Start), collections...)
	})
	var partitions []*simTask
	var owners []namespaceScript
	for _, ns := range s.namespaces {
		for range ns.partitions {
			partitions = append(partitions, &simTask{id: bson.NewObjectID(), typ: vf.TaskVerifyDocuments, status: vf.StatusAdded, namespace: ns.name})
			owners = append(owners, ns)
		}
	}
	add(s.gen0Start+3*time.Second, func(ctx context.Context, f vf.Fixture) error {
		for _, c := range collections {
			status := vf.StatusCompleted
			if c.namespace == s.metadataMismatch {
				status = vf.StatusMismatch
				if err := v.addMismatches(ctx, f, simMismatch{generation: 0, kind: "metadata", namespace: c.namespace, id: "sku_1", field: ""}); err != nil {
					return err
				}
			}
			if err := v.finish(ctx, f, c, status, 0, c.size); err != nil {
				return err
			}
		}
		return v.insert(ctx, f, partitions...)
	})
	// Four workers take the partitions in turn, each for a time that follows its size,
	// the whole fitted between the metadata checks and the end of generation 0.
	const workers = 4
	free := make([]int64, workers) // documents each worker has compared
	spans := make([][2]int64, len(partitions))
	seen := map[string]int{}
	nths := make([]int, len(partitions))
	for i := range partitions {
		ns := owners[i]
		seen[ns.name]++
		nths[i] = seen[ns.name]
		w := slices.Index(free, slices.Min(free))
		spans[i] = [2]int64{free[w], free[w] + ns.documents/int64(ns.partitions)}
		free[w] = spans[i][1]
	}
	first, window := s.gen0Start+4*time.Second, s.gen0End-s.gen0Start-5*time.Second
	makespan := slices.Max(free)
	at := func(work int64) time.Duration {
		return first + time.Duration(float64(window)*float64(work)/float64(makespan))
	}
	for i, p := range partitions {
		ns, nth := owners[i], nths[i]
		docs, bytes := ns.documents/int64(ns.partitions), ns.bytes/int64(ns.partitions)
		begin, end := at(spans[i][0]), at(spans[i][1])
		add(begin, func(ctx context.Context, f vf.Fixture) error { return v.start(ctx, f, c0.Add(begin), p) })
		add(end, func(ctx context.Context, f vf.Fixture) error {
			if nth != ns.mismatchPartition {
				return v.finish(ctx, f, p, vf.StatusCompleted, docs, bytes)
			}
			found := c0.Add(end)
			var ms []simMismatch
			for k := range ns.missing {
				ms = append(ms, simMismatch{generation: 0, kind: "missingOnDst", namespace: ns.name, id: missingID + k, first: found})
			}
			ms = append(ms, simMismatch{generation: 0, kind: "content", namespace: ns.name, id: contentID, field: "total", first: found})
			v.say("%d mismatches found in %s (generation 0): they will be rechecked", len(ms), ns.name)
			if err := v.addMismatches(ctx, f, ms...); err != nil {
				return err
			}
			return v.finish(ctx, f, p, vf.StatusFailed, docs, bytes)
		})
	}

	// Rechecks, one generation after another, until the cycle ends.
	for g := int32(1); ; g++ {
		gs := s.gen0End + time.Duration(g-1)*recheckEvery
		if gs+recheckEvery > cycleLength-5*time.Second {
			break
		}
		v.planRecheck(c0, gs, g, add)
	}
	slices.SortStableFunc(steps, func(a, b step) int { return a.at.Compare(b.at) })
	return steps
}

// planRecheck lays out generation g, from gs: the documents written during the
// generation before, and those that mismatched in it, are compared again.
func (v *verifier) planRecheck(c0 time.Time, gs time.Duration, g int32, add func(time.Duration, func(context.Context, vf.Fixture) error)) {
	s := v.script
	queue := &simTask{id: bson.NewObjectID(), generation: g, typ: vf.TaskProcessRecheckQueue, status: vf.StatusProcessing}
	add(gs, func(ctx context.Context, f vf.Fixture) error {
		v.generation = g
		if err := f.SetGeneration(ctx, g); err != nil {
			return err
		}
		if g == 1 {
			v.say("initial check done; rechecking what changed or mismatched, a generation every %s", recheckEvery)
		}
		return v.insert(ctx, f, queue)
	})
	var rechecks []*simTask
	var failing []namespaceScript
	for i, ns := range s.namespaces {
		// Documents the load changed (a handful, varying by generation), and those that
		// mismatched in the generation before.
		docIDs := []int{}
		for k := range 2 + (int(g)*7+i*3)%5 {
			docIDs = append(docIDs, int(g)*100+k)
		}
		if ns.mismatchPartition > 0 && g == 1 {
			for k := range ns.missing {
				docIDs = append(docIDs, missingID+k)
			}
		}
		if ns.mismatchPartition > 0 && g <= ns.contentFixedIn {
			docIDs = append(docIDs, contentID)
			if g < ns.contentFixedIn {
				failing = append(failing, ns)
			}
		}
		rechecks = append(rechecks, &simTask{id: bson.NewObjectID(), generation: g, typ: vf.TaskVerifyDocuments, status: vf.StatusAdded,
			namespace: ns.name, documents: int64(len(docIDs)), ids: docIDs, srcTS: c0.Add(gs - 3*time.Second)})
	}
	add(gs+time.Second, func(ctx context.Context, f vf.Fixture) error {
		queue.status = vf.StatusCompleted
		if err := f.SetTaskStatus(ctx, queue.id, queue.status); err != nil {
			return err
		}
		return v.insert(ctx, f, rechecks...)
	})
	add(gs+2*time.Second, func(ctx context.Context, f vf.Fixture) error {
		return v.start(ctx, f, c0.Add(gs+2*time.Second), rechecks...)
	})
	// The rechecks take most of the generation: a verifier spends its time comparing.
	add(gs+recheckEvery-4*time.Second, func(ctx context.Context, f vf.Fixture) error {
		for i, r := range rechecks {
			status := vf.StatusCompleted
			if ns := s.namespaces[i]; slices.ContainsFunc(failing, func(x namespaceScript) bool { return x.name == ns.name }) {
				status = vf.StatusFailed
				first := v.firstSeen(ns.name, contentID)
				if err := v.addMismatches(ctx, f, simMismatch{generation: g, kind: "content", namespace: ns.name, id: contentID, field: "total", first: first}); err != nil {
					return err
				}
			} else if ns.mismatchPartition > 0 && g == ns.contentFixedIn {
				v.say("the last mismatch in %s is gone in generation %d", ns.name, g)
			}
			if err := v.finish(ctx, f, r, status, r.documents, r.documents*480); err != nil {
				return err
			}
		}
		return nil
	})
}

// insert writes new tasks, as the verifier creates them.
func (v *verifier) insert(ctx context.Context, f vf.Fixture, tasks ...*simTask) error {
	docs := make([]vf.Task, 0, len(tasks))
	for _, t := range tasks {
		docs = append(docs, vf.Task{ID: t.id, Type: t.typ, Status: t.status, Namespace: t.namespace, Generation: t.generation,
			Documents: t.documents, Size: t.size, IDs: t.ids, SrcTS: t.srcTS, DstTS: t.srcTS})
	}
	v.tasks = append(v.tasks, tasks...)
	return f.Tasks(ctx, docs...)
}

func (v *verifier) start(ctx context.Context, f vf.Fixture, begin time.Time, tasks ...*simTask) error {
	for _, t := range tasks {
		t.status = vf.StatusProcessing
		if err := f.StartTask(ctx, t.id, begin); err != nil {
			return err
		}
	}
	return nil
}

func (v *verifier) finish(ctx context.Context, f vf.Fixture, t *simTask, status string, found, size int64) error {
	t.status, t.found, t.size = status, found, size
	return f.FinishTask(ctx, t.id, status, found, size)
}

func (v *verifier) addMismatches(ctx context.Context, f vf.Fixture, ms ...simMismatch) error {
	docs := make([]vf.Mismatch, 0, len(ms))
	for _, m := range ms {
		fm := vf.Mismatch{Generation: m.generation, TaskType: vf.TaskVerifyDocuments, ID: m.id, Field: m.field, Cluster: "dstClient", Namespace: m.namespace}
		switch m.kind {
		case "missingOnDst":
			fm.Details = "Missing"
		case "content":
			fm.Details = "Different"
		case "metadata":
			fm.TaskType, fm.Details = vf.TaskVerifyCollection, "index options differ: unique on the source only"
		}
		docs = append(docs, fm)
	}
	v.mismatches = append(v.mismatches, ms...)
	return f.Mismatches(ctx, docs...)
}

// firstSeen is when a document's mismatch was first found (now if never).
func (v *verifier) firstSeen(namespace string, id any) time.Time {
	for _, m := range v.mismatches {
		if m.namespace == namespace && m.id == id {
			return m.first
		}
	}
	return time.Now()
}

// summary says where the verifier stands.
func (v *verifier) summary(now time.Time) string {
	p := v.progress(now)
	return fmt.Sprintf("phase %v, generation %v", p["phase"], p["generation"])
}
