package exporter

// The steps of the simulated verifier (fakeVerifier): what it may do in a state, each
// as it does it.

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	vf "github.com/mongomigrate/observability/internal/verifierfixture"
)

// action is one thing the verifier may do now, with how often it does it.
type action struct {
	name   string
	weight int
	do     func() string
}

// step does one thing the verifier could do now, picked at random by weight.
func (v *fakeVerifier) step() string {
	v.clock = v.clock.Add(20 * time.Second)
	actions := v.actions()
	if len(v.late) > 0 && v.clock.Sub(v.late[0].task.ID.Timestamp()) >= v.late[0].by {
		actions = actions[:1] // the late insert of a task overdue
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

// tasksIn selects the tasks of a type and status (one adds the generation).
func tasksIn(typ, status string) bson.D {
	return bson.D{{Key: "type", Value: typ}, {Key: "status", Value: status}}
}

// actions lists what the verifier may do now, given its tasks' states; the first is the
// late insert, when a task waits for it.
func (v *fakeVerifier) actions() []action {
	states := v.states()
	exists := func(typ, status string) bool { return states[[2]string{typ, status}] }
	creating := exists(vf.TaskProcessRecheckQueue, vf.StatusProcessing) // recheck tasks being created
	partitioning := v.generation == 0 && exists(vf.TaskVerifyCollection, vf.StatusProcessing)
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
	docsProcessing := exists(vf.TaskVerifyDocuments, vf.StatusProcessing)
	add(len(v.late) > 0, "late insert", 1, v.insertLate)
	add(v.generation == 0 && !v.stuck && v.namespaces < 12, "new namespace", 1, v.addNamespace)
	add(exists(vf.TaskVerifyCollection, vf.StatusAdded) || exists(vf.TaskProcessRecheckQueue, vf.StatusAdded), "pick", 1, v.pickCollectionTask)
	add(partitioning, "partition", 4, v.partition)
	add(creating, "create rechecks", 4, v.createRechecks)
	add(exists(vf.TaskVerifyDocuments, vf.StatusAdded), "pick", 3, v.pickDocumentsTask)
	add(docsProcessing || exists(vf.TaskVerifyCollection, vf.StatusProcessing) && v.generation > 0, "finish", 4, v.finishOne)
	add(docsProcessing, "record mismatches", 1, v.recordMismatches)
	add(docsProcessing, "retry", 1, v.retry)
	add(creating || partitioning, "quick task", 2, v.quickTask)
	restartWeight := 1
	if creating {
		restartWeight = 3 // the rule R4 of docs/migration-verifier.md: its window is short
	}
	add(v.rng.IntN(3) == 0, "restart", restartWeight, func() string { return v.restart(creating, partitioning) })
	add(!anyUnfinished && len(v.late) == 0 && (v.namespaces >= 12 || v.stuck || v.generation > 0), "next generation", 1, v.nextGeneration)
	add(v.generation > 2 && v.rng.IntN(8) == 0, "--clean", 1, v.clean)
	return actions
}

// clean is --clean: a new verification, possibly several generations on by the next
// scrape.
func (v *fakeVerifier) clean() string {
	v.start()
	v.fastForward(v.rng.IntN(4))
	return "--clean"
}

// insertLate inserts the oldest task made to be inserted later, now and then finished.
func (v *fakeVerifier) insertLate() string {
	ctx := context.Background()
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
}

// pickCollectionTask picks a processRecheckQueue task, else a verifyCollection task.
func (v *fakeVerifier) pickCollectionTask() string {
	doc, ok := v.one(tasksIn(vf.TaskProcessRecheckQueue, vf.StatusAdded)) // picked first: the verifier sorts by type
	if !ok {
		doc, _ = v.one(tasksIn(vf.TaskVerifyCollection, vf.StatusAdded))
	}
	v.set(doc, picked(v.clock))
	return doc.Lookup("type").StringValue() + " picked"
}

// partition creates verifyDocuments tasks for the namespace of a generation-0
// verifyCollection task, one of them maybe later, and now and then finishes it.
func (v *fakeVerifier) partition() string {
	doc, _ := v.one(tasksIn(vf.TaskVerifyCollection, vf.StatusProcessing))
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
		v.must(v.fixture().Tasks(context.Background(), tasks...))
	}
	if v.rng.IntN(4) == 0 {
		v.finish(doc)
		return "partitioned, verifyCollection finished"
	}
	return "partitioned"
}

// createRechecks is the processRecheckQueue task creating a batch of recheck tasks, one
// of them maybe later, and now and then finishing.
func (v *fakeVerifier) createRechecks() string {
	var tasks []vf.Task
	for i := range 1 + v.rng.IntN(4) {
		tasks = append(tasks, v.recheckTask(i))
	}
	if v.rng.IntN(3) == 0 { // made now, inserted in a later batch
		v.makeLate(tasks[0])
		tasks = tasks[1:]
	}
	if len(tasks) > 0 {
		v.must(v.fixture().Tasks(context.Background(), tasks...))
	}
	if v.rng.IntN(4) == 0 && len(v.late) == 0 {
		doc, _ := v.one(tasksIn(vf.TaskProcessRecheckQueue, vf.StatusProcessing))
		v.finish(doc)
		return "rechecks created, processRecheckQueue finished"
	}
	return "rechecks created"
}

func (v *fakeVerifier) pickDocumentsTask() string {
	doc, _ := v.one(tasksIn(vf.TaskVerifyDocuments, vf.StatusAdded))
	v.set(doc, picked(v.clock))
	return "verifyDocuments picked"
}

// finishOne finishes a verifyDocuments task, else a verifyCollection task.
func (v *fakeVerifier) finishOne() string {
	doc, ok := v.one(tasksIn(vf.TaskVerifyDocuments, vf.StatusProcessing))
	if !ok {
		doc, _ = v.one(tasksIn(vf.TaskVerifyCollection, vf.StatusProcessing))
	}
	v.finish(doc)
	return "finished"
}

func (v *fakeVerifier) recordMismatches() string {
	doc, _ := v.one(tasksIn(vf.TaskVerifyDocuments, vf.StatusProcessing))
	v.mismatches(doc, 1+v.rng.IntN(2)) // a batch found while it runs (ProcessVerifyTask)
	return "mismatches recorded"
}

// retry retries a running verifyDocuments task, which deletes its mismatches.
func (v *fakeVerifier) retry() string {
	doc, _ := v.one(tasksIn(vf.TaskVerifyDocuments, vf.StatusProcessing))
	if v.rng.IntN(2) == 0 {
		v.mismatches(doc, 2) // found by the attempt that failed
	}
	v.must(v.fixture().Retry(context.Background(), v.generation, vf.TaskVerifyDocuments, doc.Lookup("_id").ObjectID()))
	return "task retried"
}

// quickTask inserts a task that is picked and finished before the next scrape.
func (v *fakeVerifier) quickTask() string {
	ctx := context.Background()
	task := v.recheckTask(0)
	if doc, ok := v.one(tasksIn(vf.TaskVerifyCollection, vf.StatusProcessing)); ok && v.generation == 0 {
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
}

// restart starts the verifier again (reset.go's rules); what it made and had not
// inserted is gone with it.
func (v *fakeVerifier) restart(creating, partitioning bool) string {
	what := "restart"
	switch {
	case v.stuck:
		what = "restart, primary task unfinished"
	case creating:
		what = "restart while creating rechecks"
	case partitioning:
		what = "restart while partitioning"
	}
	v.must(v.fixture().Restart(context.Background()))
	v.late = nil
	return what
}
