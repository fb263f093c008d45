package exporter

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
	vf "github.com/mongomigrate/observability/internal/verifierfixture"
)

// fakeVerifier changes a metadata database as migration-verifier v0.2.1 does (see the
// comment of taskTally): it inserts tasks, picks them, finishes them (recording the
// mismatches of a failed one), retries a task (deleting its mismatches), restarts
// (vf.Fixture.Restart: the reset rules of reset.go), inserts a task whose _id it made a
// while before, starts new generations (each with a processRecheckQueue task that
// creates the recheck tasks while workers already run them), is cleaned (--clean: the
// database dropped and created again within the step, and the new verification possibly
// several generations on before the next scrape), and crashes before its primary task
// is finished (which then stays added for good while generations go on). Its clock,
// which stamps the _ids it makes, moves on 20 s per step.
type fakeVerifier struct {
	t          *testing.T
	db         *mongo.Database
	rng        *rand.Rand
	clock      time.Time
	counter    uint64
	generation int32
	namespaces int
	stuck      bool // the primary task stays added: no namespace tasks
	starts     int
	late       []lateTask // made, to be inserted at a later step
}

// lateTask is a task the verifier made, inserted up to `by` later: within a minute, or,
// unfinished, now and then after three (past the running totals' recent window: the
// unfinished tasks are read whatever their _id).
type lateTask struct {
	task vf.Task
	by   time.Duration
}

// makeLate keeps a task to insert later.
func (v *fakeVerifier) makeLate(task vf.Task) {
	by := time.Minute
	if v.rng.IntN(4) == 0 {
		by = 3 * time.Minute
	}
	v.late = append(v.late, lateTask{task, by})
}

func (v *fakeVerifier) fixture() vf.Fixture { return vf.Fixture{DB: v.db, Version: 7, Now: v.clock} }

func (v *fakeVerifier) must(err error) {
	v.t.Helper()
	if err != nil {
		v.t.Fatal(err)
	}
}

// id makes an ObjectId as the verifier would now: the time, then bytes that grow.
func (v *fakeVerifier) id() bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[0:4], uint32(v.clock.Unix()))
	v.counter++
	binary.BigEndian.PutUint64(id[4:12], v.counter)
	return id
}

func (v *fakeVerifier) tasks() *mongo.Collection { return v.db.Collection("verification_tasks") }

// start begins a verification on a clean database (CheckDriver, check.go): the primary
// task, the namespaces' verifyCollection tasks, the primary task finished, then the
// generation document. A crash before the primary task is finished, and a restart, leave
// the primary task added and delete the rest: the verifier goes on without namespaces.
func (v *fakeVerifier) start() {
	ctx := context.Background()
	v.must(v.fixture().Clean(ctx))
	v.generation, v.namespaces, v.late, v.stuck = 0, 0, nil, false
	v.starts++
	primary := v.id()
	v.must(v.fixture().Tasks(ctx, vf.Task{ID: primary, Type: vf.TaskPrimary, Status: vf.StatusAdded}))
	for range 3 {
		v.addNamespace()
	}
	if v.starts%2 == 0 { // every other verification
		v.must(v.fixture().Restart(ctx))
		v.stuck = true
	} else {
		_, err := v.tasks().UpdateOne(ctx, bson.D{{Key: "_id", Value: primary}}, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: vf.StatusCompleted}}}})
		v.must(err)
	}
	v.must(v.fixture().Generation(ctx, 0))
}

func (v *fakeVerifier) addNamespace() {
	v.namespaces++
	v.must(v.fixture().Tasks(context.Background(), vf.Task{ID: v.id(), Type: vf.TaskVerifyCollection, Status: vf.StatusAdded,
		Namespace: fmt.Sprintf("db.c%d", v.namespaces), Documents: 100, Size: 1000}))
}

// one picks a random task of the current generation matching filter.
func (v *fakeVerifier) one(filter bson.D) (bson.Raw, bool) {
	cursor, err := v.tasks().Find(context.Background(), append(filter, bson.E{Key: "generation", Value: v.generation}))
	v.must(err)
	var docs []bson.Raw
	v.must(cursor.All(context.Background(), &docs))
	if len(docs) == 0 {
		return nil, false
	}
	return docs[v.rng.IntN(len(docs))], true
}

func (v *fakeVerifier) set(doc bson.Raw, update bson.D) {
	_, err := v.tasks().UpdateOne(context.Background(), bson.D{{Key: "_id", Value: doc.Lookup("_id")}}, update)
	v.must(err)
}

var picked = func(at time.Time) bson.D {
	return bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: vf.StatusProcessing}, {Key: "begin_time", Value: bson.NewDateTimeFromTime(at)}}}}
}

// mismatches records n mismatches found by a task, of varied kinds.
func (v *fakeVerifier) mismatches(doc bson.Raw, n int) {
	typ := doc.Lookup("type").StringValue()
	ns, _ := doc.Lookup("query_filter", "namespace").StringValueOK()
	var ms []vf.Mismatch
	for i := range n {
		m := vf.Mismatch{Generation: v.generation, TaskType: typ, TaskID: doc.Lookup("_id").ObjectID(), ID: i, Cluster: "dstClient", Namespace: ns}
		switch v.rng.IntN(3) {
		case 0:
			m.Details = "Missing"
		case 1:
			m.Details, m.Cluster = "Missing", "srcClient"
		default:
			m.Field, m.Details = "total", "Mismatch"
		}
		ms = append(ms, m)
	}
	v.must(v.fixture().Mismatches(context.Background(), ms...))
}

// finish finishes a task with its counts (UpdateVerificationTask); a failed one has
// recorded its mismatches before.
func (v *fakeVerifier) finish(doc bson.Raw) {
	status := vf.StatusCompleted
	switch typ := doc.Lookup("type").StringValue(); {
	case typ == vf.TaskProcessRecheckQueue:
	case typ == vf.TaskVerifyCollection && v.rng.IntN(4) == 0:
		status = vf.StatusMismatch
		v.mismatches(doc, 1)
	case v.rng.IntN(5) == 0:
		status = vf.StatusFailed
		v.mismatches(doc, 1+v.rng.IntN(3))
	}
	v.set(doc, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: status},
		{Key: "found_source_documents_count", Value: int64(v.rng.IntN(1000))}, {Key: "source_bytes_count", Value: int64(v.rng.IntN(100_000))}}}})
}

// states returns the type and status pairs of the current generation's tasks.
func (v *fakeVerifier) states() map[[2]string]bool {
	cursor, err := v.tasks().Find(context.Background(), bson.D{{Key: "generation", Value: v.generation}},
		options.Find().SetProjection(bson.D{{Key: "type", Value: 1}, {Key: "status", Value: 1}}))
	v.must(err)
	var docs []bson.Raw
	v.must(cursor.All(context.Background(), &docs))
	states := map[[2]string]bool{}
	for _, d := range docs {
		states[[2]string{d.Lookup("type").StringValue(), d.Lookup("status").StringValue()}] = true
	}
	return states
}

// recheckTask is a recheck task as a processRecheckQueue task creates it.
func (v *fakeVerifier) recheckTask(i int) vf.Task {
	at := v.clock.Add(-time.Duration(v.rng.IntN(60)) * time.Second)
	return vf.Task{ID: v.id(), Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Generation: v.generation,
		Namespace: fmt.Sprintf("db.c%d", 1+i%max(1, v.namespaces)), IDs: []int{1, 2}, Documents: 2, SrcTS: at, DstTS: at.Add(-time.Second)}
}

// nextGeneration ends the generation (every task finished) and starts the next: its
// processRecheckQueue task when something is to be rechecked, now and then a
// verifyCollection task of a namespace whose metadata mismatched, then the generation
// document.
func (v *fakeVerifier) nextGeneration() {
	ctx := context.Background()
	v.generation++
	var tasks []vf.Task
	if v.rng.IntN(4) > 0 {
		tasks = append(tasks, vf.Task{ID: v.id(), Type: vf.TaskProcessRecheckQueue, Status: vf.StatusAdded, Generation: v.generation})
	}
	if v.namespaces > 0 && v.rng.IntN(5) == 0 {
		tasks = append(tasks, vf.Task{ID: v.id(), Type: vf.TaskVerifyCollection, Status: vf.StatusAdded, Generation: v.generation,
			Namespace: fmt.Sprintf("db.c%d", 1+v.rng.IntN(v.namespaces)), Documents: 100, Size: 1000})
	}
	if len(tasks) > 0 {
		v.must(v.fixture().Tasks(ctx, tasks...))
	}
	_, err := v.db.Collection("generation").UpdateOne(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "generation", Value: v.generation}}}})
	v.must(err)
}

// fastForward runs generations to their end within one step, as a small verification
// does between two scrapes.
func (v *fakeVerifier) fastForward(generations int) {
	ctx := context.Background()
	for range generations {
		for {
			doc, ok := v.one(bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{vf.StatusAdded, vf.StatusProcessing}}}}})
			if !ok {
				break
			}
			v.set(doc, picked(v.clock))
			switch doc.Lookup("type").StringValue() {
			case vf.TaskVerifyCollection:
				if v.generation == 0 {
					ns := doc.Lookup("query_filter", "namespace").StringValue()
					v.must(v.fixture().Tasks(ctx, vf.Task{ID: v.id(), Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Namespace: ns}))
				}
			case vf.TaskProcessRecheckQueue:
				v.must(v.fixture().Tasks(ctx, v.recheckTask(0), v.recheckTask(1)))
			}
			v.finish(doc)
		}
		v.nextGeneration()
	}
}

// action is one thing the verifier may do now, with how often it does it.
type action struct {
	name   string
	weight int
	do     func() string
}

// step does one thing the verifier could do now, picked at random.
func (v *fakeVerifier) step() string {
	ctx := context.Background()
	v.clock = v.clock.Add(20 * time.Second)
	collAdded := bson.D{{Key: "type", Value: vf.TaskVerifyCollection}, {Key: "status", Value: vf.StatusAdded}}
	collProcessing := bson.D{{Key: "type", Value: vf.TaskVerifyCollection}, {Key: "status", Value: vf.StatusProcessing}}
	queueAdded := bson.D{{Key: "type", Value: vf.TaskProcessRecheckQueue}, {Key: "status", Value: vf.StatusAdded}}
	queueProcessing := bson.D{{Key: "type", Value: vf.TaskProcessRecheckQueue}, {Key: "status", Value: vf.StatusProcessing}}
	docsAdded := bson.D{{Key: "type", Value: vf.TaskVerifyDocuments}, {Key: "status", Value: vf.StatusAdded}}
	docsProcessing := bson.D{{Key: "type", Value: vf.TaskVerifyDocuments}, {Key: "status", Value: vf.StatusProcessing}}
	states := v.states()
	exists := func(typ, status string) bool { return states[[2]string{typ, status}] }
	creating := exists(vf.TaskProcessRecheckQueue, vf.StatusProcessing) // recheck tasks being created
	anyUnfinished := false
	for state := range states {
		anyUnfinished = anyUnfinished || state[1] == vf.StatusAdded || state[1] == vf.StatusProcessing
	}
	var actions []action
	add := func(ok bool, name string, weight int, do func() string) {
		if ok {
			actions = append(actions, action{name, weight, do})
		}
	}
	// A task made more than a minute ago is inserted now: the running totals read again
	// what was newest up to recentWindow (2 minutes) before.
	overdue := len(v.late) > 0 && v.clock.Sub(v.late[0].task.ID.Timestamp()) >= v.late[0].by
	add(len(v.late) > 0, "late insert", 1, func() string {
		late := v.late[0]
		task := late.task
		v.late = v.late[1:]
		v.must(v.fixture().Tasks(ctx, task))
		if late.by > recentWindow {
			return "very late insert"
		}
		if v.rng.IntN(2) == 0 { // and finished before the next scrape
			raw, err := v.tasks().FindOne(ctx, bson.D{{Key: "_id", Value: task.ID}}).Raw()
			v.must(err)
			v.finish(raw)
			return "late insert, finished"
		}
		return "late insert"
	})
	add(v.generation == 0 && !v.stuck && v.namespaces < 12, "new namespace", 1, func() string { v.addNamespace(); return "new namespace" })
	add(exists(vf.TaskVerifyCollection, vf.StatusAdded) || exists(vf.TaskProcessRecheckQueue, vf.StatusAdded), "pick", 1, func() string {
		doc, ok := v.one(queueAdded) // picked first: the verifier sorts by type
		if !ok {
			doc, _ = v.one(collAdded)
		}
		v.set(doc, picked(v.clock))
		return doc.Lookup("type").StringValue() + " picked"
	})
	add(exists(vf.TaskVerifyCollection, vf.StatusProcessing) && v.generation == 0, "partition", 4, func() string {
		doc, _ := v.one(collProcessing)
		ns := doc.Lookup("query_filter", "namespace").StringValue()
		var tasks []vf.Task
		for range 1 + v.rng.IntN(4) {
			tasks = append(tasks, vf.Task{ID: v.id(), Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Namespace: ns})
		}
		if v.rng.IntN(2) == 0 { // made now, inserted within a minute or so
			v.makeLate(tasks[0])
			tasks = tasks[1:]
		}
		if len(tasks) > 0 {
			v.must(v.fixture().Tasks(ctx, tasks...))
		}
		if v.rng.IntN(4) == 0 {
			v.finish(doc)
			return "partitioned, verifyCollection finished"
		}
		return "partitioned"
	})
	add(creating, "create rechecks", 4, func() string {
		var tasks []vf.Task
		for i := range 1 + v.rng.IntN(4) {
			tasks = append(tasks, v.recheckTask(i))
		}
		if v.rng.IntN(3) == 0 { // made now, inserted in a later batch
			v.makeLate(tasks[0])
			tasks = tasks[1:]
		}
		if len(tasks) > 0 {
			v.must(v.fixture().Tasks(ctx, tasks...))
		}
		if v.rng.IntN(4) == 0 && len(v.late) == 0 {
			doc, _ := v.one(queueProcessing)
			v.finish(doc)
			return "rechecks created, processRecheckQueue finished"
		}
		return "rechecks created"
	})
	add(exists(vf.TaskVerifyDocuments, vf.StatusAdded), "pick", 3, func() string {
		doc, _ := v.one(docsAdded)
		v.set(doc, picked(v.clock))
		return "verifyDocuments picked"
	})
	add(exists(vf.TaskVerifyDocuments, vf.StatusProcessing) || exists(vf.TaskVerifyCollection, vf.StatusProcessing) && v.generation > 0, "finish", 4, func() string {
		doc, ok := v.one(docsProcessing)
		if !ok {
			doc, _ = v.one(collProcessing)
		}
		v.finish(doc)
		return "finished"
	})
	add(exists(vf.TaskVerifyDocuments, vf.StatusProcessing), "record mismatches", 1, func() string {
		doc, _ := v.one(docsProcessing)
		v.mismatches(doc, 1+v.rng.IntN(2)) // a batch found while it runs (ProcessVerifyTask)
		return "mismatches recorded"
	})
	add(exists(vf.TaskVerifyDocuments, vf.StatusProcessing), "retry", 1, func() string {
		doc, _ := v.one(docsProcessing)
		if v.rng.IntN(2) == 0 {
			v.mismatches(doc, 2) // found by the attempt that failed
		}
		v.must(v.fixture().Retry(ctx, v.generation, vf.TaskVerifyDocuments, doc.Lookup("_id").ObjectID()))
		return "task retried"
	})
	add(creating || v.generation == 0 && exists(vf.TaskVerifyCollection, vf.StatusProcessing), "quick task", 2, func() string {
		task := v.recheckTask(0)
		if doc, ok := v.one(collProcessing); ok && v.generation == 0 {
			task = vf.Task{ID: task.ID, Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Namespace: doc.Lookup("query_filter", "namespace").StringValue()}
		}
		v.must(v.fixture().Tasks(ctx, task))
		raw, err := v.tasks().FindOne(ctx, bson.D{{Key: "_id", Value: task.ID}}).Raw()
		v.must(err)
		v.set(raw, picked(v.clock))
		raw, err = v.tasks().FindOne(ctx, bson.D{{Key: "_id", Value: task.ID}}).Raw()
		v.must(err)
		v.finish(raw)
		return "quick task"
	})
	restartWeight := 1
	if creating {
		restartWeight = 3 // the rule R4 of docs/migration-verifier.md: its window is short
	}
	add(v.rng.IntN(3) == 0, "restart", restartWeight, func() string {
		what := "restart"
		switch {
		case v.stuck:
			what = "restart, primary task unfinished"
		case creating:
			what = "restart while creating rechecks"
		case v.generation == 0 && exists(vf.TaskVerifyCollection, vf.StatusProcessing):
			what = "restart while partitioning"
		}
		v.must(v.fixture().Restart(ctx))
		v.late = nil // what the verifier had made and not inserted is gone with it
		return what
	})
	add(!anyUnfinished && len(v.late) == 0 && (v.namespaces >= 12 || v.stuck || v.generation > 0), "next generation", 1, func() string {
		v.nextGeneration()
		return "next generation"
	})
	add(v.generation > 2 && v.rng.IntN(8) == 0, "--clean", 1, func() string {
		v.start()
		n := v.rng.IntN(4)
		v.fastForward(n)
		return "--clean"
	})
	if overdue {
		actions = actions[:1]
	}
	total := 0
	for _, a := range actions {
		total += a.weight
	}
	pick := v.rng.IntN(total)
	for _, a := range actions {
		if pick < a.weight {
			return a.do()
		}
		pick -= a.weight
	}
	panic("no action")
}

// The figures kept from scrape to scrape equal those of a new reader that sums
// everything on the server, after every step of a verifier that inserts, picks and
// finishes tasks (recording mismatches), retries them (deleting their mismatches),
// restarts (with every rule of reset.go), inserts late, creates recheck tasks while
// running them, moves to new generations, is cleaned and crashes before its primary task
// is finished. The running totals are read a few tasks at a time, so that their first
// reading spans several steps of the verifier; until it is done, the figures a scrape
// exports (the unfinished tasks, the oldest one processing) equal the recount's.
func TestTallyEqualsFullRecount(t *testing.T) {
	uri := mongotest.URI(t)
	client := connectForFixtures(t, uri)
	db := client.Database("vf_tally")
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	v := &fakeVerifier{t: t, db: db, rng: rand.New(rand.NewPCG(2, 2)), clock: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	v.start()
	var history []string
	previousNow := now
	now = func() time.Time { return v.clock }
	t.Cleanup(func() { now = previousNow })
	readInParts(t, 1, chunkSizes{first: 4, min: 1, max: 32})

	newClient := func() *mongoClient {
		c := newMongoClient(verifierConfig("tally", uri, "").MongoURI, 10*time.Second)
		t.Cleanup(c.close)
		return c
	}
	newReader := func() *verifierReader { return newVerifierReader(newClient(), "vf_tally", 0) }
	recountClient := newClient() // the recount's reader is new at each step, without caches
	read := func(r *verifierReader, watched int) *verifierMetadata {
		previous := maxWatched
		maxWatched = watched
		defer func() { maxWatched = previous }()
		m, err := r.read(t.Context(), noAPI)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tally := newReader()
	const steps = 800
	kept, partial := 0, 0
	for i := range steps {
		history = append(history, v.step())
		// The exporter restarts (the totals start over), now and then, and often while a
		// task the verifier made is not inserted yet.
		if v.rng.IntN(30) == 0 || (len(v.late) > 0 && v.rng.IntN(6) == 0) {
			tally = newReader()
			history = append(history, "exporter restart")
		}
		got, want := read(tally, 1000), read(newVerifierReader(recountClient, "vf_tally", 0), 0)
		where := fmt.Sprintf("after step %d (last steps: %v)", i, history[max(0, len(history)-5):])
		switch {
		case tally.summing:
		case got.complete:
			kept++
		default:
			partial++
			comparePartialRead(t, where, got, want)
			continue
		}
		compareReads(t, where, got, want)
	}
	if kept < steps/2 || partial < steps/20 {
		t.Errorf("of %d scrapes, %d had complete running totals, %d partial ones", steps, kept, partial)
	}
	kinds := map[string]int{}
	for _, h := range history {
		kinds[h]++
	}
	t.Logf("tasks made %d, verifications %d, complete running totals at %d scrapes, partial at %d, steps %v", v.counter, v.starts, kept, partial, kinds)
	for _, rule := range []string{"restart while partitioning", "restart while creating rechecks", "restart, primary task unfinished", "mismatches recorded", "task retried", "--clean", "late insert, finished", "very late insert"} {
		if kinds[rule] == 0 {
			t.Errorf("the simulated verifier never did %q", rule)
		}
	}
}

// readInParts makes running totals read at most chunks chunks per read, of the sizes
// given.
func readInParts(t *testing.T, chunks int, sizes chunkSizes) {
	previousLimit, previousSizes := walkLimit, walkChunks
	walkLimit, walkChunks = chunks, sizes
	t.Cleanup(func() { walkLimit, walkChunks = previousLimit, previousSizes })
}

// comparePartialRead fails the test when a read whose running totals are not complete
// differs from the recount in what it exports.
func comparePartialRead(t *testing.T, where string, got, want *verifierMetadata) {
	t.Helper()
	unfinished := maps.Clone(want.tasks)
	maps.DeleteFunc(unfinished, func(k taskKey, _ taskSums) bool { return !k.unfinished() && k.Type != taskPrimary })
	switch {
	case got.totalsRead >= 1:
		t.Fatalf("%s: totals not complete, yet read at %v", where, got.totalsRead)
	case !maps.Equal(got.tasks, unfinished):
		t.Fatalf("%s: unfinished tasks\n%v\nrecount\n%v", where, got.tasks, unfinished)
	case value(got.oldestProcessing) != value(want.oldestProcessing):
		t.Fatalf("%s: oldest processing %v, recount %v", where, value(got.oldestProcessing), value(want.oldestProcessing))
	}
}

func value(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// compareReads fails the test when two reads of the same database differ in a figure.
func compareReads(t *testing.T, where string, got, want *verifierMetadata) {
	t.Helper()
	fail := func(what string, got, want any) {
		t.Helper()
		t.Fatalf("%s: %s\n%v\nrecount\n%v", where, what, got, want)
	}
	switch {
	case !got.complete || got.totalsRead != 1:
		fail("complete", got.totalsRead, want.totalsRead)
	case !maps.Equal(got.tasks, want.tasks):
		fail("tasks", got.tasks, want.tasks)
	case !maps.Equal(got.initial, want.initial):
		fail("generation 0", got.initial, want.initial)
	case !maps.Equal(got.namespaces, want.namespaces):
		fail("namespaces", got.namespaces, want.namespaces)
	case value(got.rechecksDone) != value(want.rechecksDone) || got.malformed != want.malformed:
		fail("rechecks, malformed", []any{value(got.rechecksDone), got.malformed}, []any{value(want.rechecksDone), want.malformed})
	case !maps.Equal(got.mismatch, want.mismatch):
		fail("mismatches", got.mismatch, want.mismatch)
	case !maps.Equal(got.namespaceMismatches, want.namespaceMismatches):
		fail("mismatches by namespace", got.namespaceMismatches, want.namespaceMismatches)
	case !maps.Equal(got.generationMismatches, want.generationMismatches):
		fail("mismatches by generation", got.generationMismatches, want.generationMismatches)
	case value(got.lastRechecked["source"]) != value(want.lastRechecked["source"]) || value(got.lastRechecked["destination"]) != value(want.lastRechecked["destination"]):
		fail("last rechecked", got.lastRechecked, want.lastRechecked)
	case value(got.lastBegin) != value(want.lastBegin):
		fail("last task picked", value(got.lastBegin), value(want.lastBegin))
	case value(got.oldestProcessing) != value(want.oldestProcessing):
		fail("oldest processing", value(got.oldestProcessing), value(want.oldestProcessing))
	case value(got.newestTask) == nil || value(want.newestTask) != nil && *got.newestTask < *want.newestTask:
		// The totals remember the newest task seen, even if the verifier deleted it since.
		fail("newest task", value(got.newestTask), value(want.newestTask))
	}
}

// A steady scrape reads the unfinished and recent tasks, not the finished ones: after
// the generation's 3,000 finished tasks are summed once, a scrape returns a handful.
func TestTallyReadsWhatCanChange(t *testing.T) {
	uri := mongotest.URI(t)
	client := connectForFixtures(t, uri)
	f := newMetadataFixture(t, client, "vf_steady", 7).generation(0).primary(vf.StatusCompleted)
	old := time.Now().Add(-time.Hour)
	var tasks []vf.Task
	for i := range 3000 {
		tasks = append(tasks, vf.Task{ID: bson.NewObjectIDFromTimestamp(old), Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Namespace: fmt.Sprintf("db.c%d", i%30), Found: 10})
		binary.BigEndian.PutUint64(tasks[i].ID[4:], uint64(i))
	}
	tasks = append(tasks, vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Namespace: "db.c0"})
	f.tasks(tasks...)
	commands := watchCommands(t)
	s, _ := newVerifierForTest(t, verifierConfig("steady", uri, "vf_steady"))
	scrape := func() int {
		commands.mu.Lock()
		commands.returned = 0
		commands.mu.Unlock()
		if _, err := s.targets[0].reader.read(t.Context(), noAPI); err != nil {
			t.Fatal(err)
		}
		commands.mu.Lock()
		defer commands.mu.Unlock()
		return commands.returned
	}
	scrape() // sums the finished tasks once
	if n := scrape(); n > 50 {
		t.Errorf("a steady scrape read %d documents from the server", n)
	}
	if s.targets[0].reader.tally == nil {
		t.Fatal("no running totals kept")
	}
}

// A restarted exporter whose scrapes run out of time while reading the totals goes on at
// the next scrape from where it got to, never from the start, answers every scrape (with
// the figures it has, and how far it got), and ends with the figures of a full recount.
// Each of the first scrapes has its third aggregation (the second chunk of the walk)
// held on the server past the scrape's time (a failCommand failpoint).
func TestRestartedExporterReadsItsTotalsAcrossScrapes(t *testing.T) {
	srv := mongotest.New(t, "holds a command past its maxTimeMS with a failpoint", mongotest.Options{})
	client := connectForFixtures(t, srv.URI())
	f := newMetadataFixture(t, client, "vf_restart", 7).generation(2).primary(vf.StatusCompleted)
	hourAgo := time.Now().Add(-time.Hour)
	var tasks []vf.Task
	var mismatches []vf.Mismatch
	add := func(task vf.Task, found int) {
		task.ID = oldID(hourAgo, len(tasks))
		tasks = append(tasks, task)
		for i := range found {
			mismatches = append(mismatches, vf.Mismatch{Generation: task.Generation, TaskType: task.Type, TaskID: task.ID, ID: i,
				Details: "Missing", Cluster: "dstClient", Namespace: task.Namespace})
		}
	}
	for i := range 1500 {
		status := vf.StatusCompleted
		if i%100 == 0 {
			status = vf.StatusFailed
		}
		add(vf.Task{Type: vf.TaskVerifyDocuments, Status: status, Namespace: fmt.Sprintf("db.c%d", i%30), Found: 100, Size: 4096, Begin: hourAgo}, boolInt(status == vf.StatusFailed))
	}
	for g := int32(1); g <= 2; g++ {
		add(vf.Task{Type: vf.TaskProcessRecheckQueue, Status: vf.StatusCompleted, Generation: g}, 0)
		for i := range 150 {
			task := vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Generation: g, Namespace: fmt.Sprintf("db.c%d", i%30),
				IDs: []int{i, i + 1}, Documents: 2, Found: 2, SrcTS: hourAgo.Add(time.Duration(i) * time.Second), DstTS: hourAgo}
			found := 0
			switch {
			case i%10 == 0:
				task.Status, found = vf.StatusFailed, 2
			case g == 2 && i%10 == 1:
				task.Status, task.Begin, found = vf.StatusProcessing, time.Now().Add(-time.Minute), 1 // found a mismatch so far
			case g == 2 && i%10 == 2:
				task.Status = vf.StatusAdded
			}
			add(task, found)
		}
	}
	f.tasks(tasks...).mismatches(mismatches...).changeReader("changeReader", vf.Counts("insert", 7), vf.Counts("insert", 7))
	readInParts(t, 0, chunkSizes{first: 100, min: 50, max: 200})

	target := verifierConfig("restart", srv.URI(), "vf_restart")
	target.Timeout = 3 * time.Second
	s, _ := newVerifierForTest(t, target)
	c := collectorOf(s)
	holdSecondChunk := func() {
		err := client.Database("admin").RunCommand(t.Context(), bson.D{
			{Key: "configureFailPoint", Value: "failCommand"},
			{Key: "mode", Value: bson.D{{Key: "skip", Value: 2}, {Key: "times", Value: 1}}},
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"aggregate"}}, {Key: "blockConnection", Value: true},
				{Key: "blockTimeMS", Value: 60_000}, {Key: "appName", Value: Namespace}}},
		}).Err()
		if err != nil {
			t.Fatal(err)
		}
	}
	read := `migration_verifier_totals_read_ratio{}`
	previous := 0.0
	for i := range 3 {
		holdSecondChunk()
		got := scrapeValues(t, c)
		where := fmt.Sprintf("scrape %d, its second chunk held", i+1)
		expectValues(t, where, got, map[string]float64{
			`migration_verifier_up{}`: 1,
			`migration_verifier_tasks{status="added",type="verifyDocuments"}`:      15,
			`migration_verifier_tasks{status="processing",type="verifyDocuments"}`: 15,
			`migration_verifier_tasks{status="completed",type="verifyDocuments"}`:  absent,
			`migration_verifier_documents_compared{}`:                              absent,
			`migration_verifier_mismatches{kind="missing_on_destination"}`:         absent,
		})
		if got[read] <= previous || got[read] >= 1 {
			t.Fatalf("%s: the totals were read up to %v, after %v before: they did not go on from there", where, got[read], previous)
		}
		previous = got[read]
	}
	got := scrapeValues(t, c)
	if got[read] != 1 {
		t.Fatalf("a scrape with time for the rest read the totals up to %v", got[read])
	}
	lowerWatchLimit(t, 0) // a new exporter that sums everything on the server
	recount, _ := newVerifierForTest(t, target)
	want := scrapeValues(t, collectorOf(recount))
	if !maps.Equal(got, want) {
		t.Errorf("after its restart, the exporter exports\n%v\na full recount\n%v", got, want)
	}
	for _, name := range []string{`migration_verifier_rechecks_total{}`, `migration_verifier_mismatches{kind="missing_on_destination"}`, `migration_verifier_documents_compared{}`} {
		if got[name] == 0 {
			t.Errorf("%s is 0: the fixture does not test it", name)
		}
	}
}

// With more unfinished tasks than it reads one by one, the exporter sums the generation
// on the server; once at most half as many are left it reads running totals again
// (summing meanwhile, so that no scrape lacks a figure), and keeps them.
func TestVerifierSumsOnTheServerThenKeepsTotalsAgain(t *testing.T) {
	uri := mongotest.URI(t)
	client := connectForFixtures(t, uri)
	f := newMetadataFixture(t, client, "vf_overflow", 7).generation(1).primary(vf.StatusCompleted)
	hourAgo := time.Now().Add(-time.Hour)
	var tasks []vf.Task
	for i := range 40 {
		status := vf.StatusCompleted
		if i < 8 {
			status = vf.StatusAdded
		}
		tasks = append(tasks, vf.Task{ID: oldID(hourAgo, i), Type: vf.TaskVerifyDocuments, Status: status, Generation: 1,
			Namespace: fmt.Sprintf("db.c%d", i%4), IDs: []int{i}, Documents: 1, Found: 1, Size: 10, SrcTS: hourAgo})
	}
	f.tasks(tasks...).mismatches(vf.Mismatch{Generation: 0, TaskType: vf.TaskVerifyDocuments, ID: 1, Details: "Missing", Cluster: "dstClient", Namespace: "db.c1"})
	lowerWatchLimit(t, 6)
	readInParts(t, 1, chunkSizes{first: 10, min: 10, max: 10})
	client2 := newMongoClient(verifierConfig("overflow", uri, "").MongoURI, 10*time.Second)
	t.Cleanup(client2.close)
	reader := newVerifierReader(client2, "vf_overflow", 0)
	recount := func() *verifierMetadata {
		previous := maxWatched
		maxWatched = 0
		defer func() { maxWatched = previous }()
		m, err := newVerifierReader(client2, "vf_overflow", 0).read(t.Context(), noAPI)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tasksColl := client.Database("vf_overflow").Collection("verification_tasks")
	finish := func(n int) {
		for range n {
			_, err := tasksColl.UpdateOne(t.Context(), bson.D{{Key: "status", Value: vf.StatusAdded}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: vf.StatusCompleted}, {Key: "found_source_documents_count", Value: int64(1)}}}})
			f.must(err)
		}
	}
	var states []string
	for step := range 12 {
		if step > 0 {
			finish(1) // 8 unfinished, then 7, ... 0
		}
		got, err := reader.read(t.Context(), noAPI)
		if err != nil {
			t.Fatal(err)
		}
		where := fmt.Sprintf("step %d", step)
		compareReads(t, where, got, recount())
		state := "totals"
		switch {
		case reader.summing && reader.tally != nil:
			state = "summed, reading totals"
		case reader.summing:
			state = "summed"
		}
		states = append(states, state)
	}
	// 8 unfinished down to 4: more than half of maxWatched; from 3 on, the totals are read
	// (10 tasks a scrape) while the generation is summed; then kept.
	summed, reading := slices.Repeat([]string{"summed"}, 5), slices.Repeat([]string{"summed, reading totals"}, 4)
	if want := append(append(summed, reading...), "totals", "totals", "totals"); !slices.Equal(states, want) {
		t.Errorf("scrape by scrape\n%v, want\n%v", states, want)
	}
}
