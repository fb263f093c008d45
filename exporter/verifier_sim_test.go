package exporter

// A simulated migration-verifier v0.2.1 for the tests of the running totals: its state
// and what its steps (verifier_sim_steps_test.go) are made of.

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

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

func (v *fakeVerifier) addNamespace() string {
	v.namespaces++
	v.must(v.fixture().Tasks(context.Background(), vf.Task{ID: v.id(), Type: vf.TaskVerifyCollection, Status: vf.StatusAdded,
		Namespace: fmt.Sprintf("db.c%d", v.namespaces), Documents: 100, Size: 1000}))
	return "new namespace"
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
func (v *fakeVerifier) nextGeneration() string {
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
	return "next generation"
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
