package exporter

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/mongotest"
	vf "github.com/mongomigrate/observability/internal/verifierfixture"
)

// fakeVerifier changes a metadata database as migration-verifier does (see the comment
// of taskTally): it inserts tasks, picks them, finishes them, restarts (processing tasks
// back to added; a namespace whose partitioning was under way starts over), inserts a
// task whose _id it made a while before, starts new generations, and drops everything
// (--clean). Its clock, which stamps the _ids it makes, moves on 20 s per step.
type fakeVerifier struct {
	t          *testing.T
	db         *mongo.Database
	rng        *rand.Rand
	clock      time.Time
	counter    uint64
	generation int32
	namespaces int
	late       []vf.Task // made, to be inserted at a later step
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

func (v *fakeVerifier) start() {
	v.generation = 0
	v.late = nil
	v.must(v.fixture().Generation(context.Background(), 0))
	v.must(v.fixture().Tasks(context.Background(), vf.Task{ID: v.id(), Type: vf.TaskPrimary, Status: vf.StatusCompleted}))
	for range 3 {
		v.addNamespace()
	}
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

func (v *fakeVerifier) finish(doc bson.Raw) {
	status := vf.StatusCompleted
	if v.rng.IntN(5) == 0 {
		status = vf.StatusFailed
	}
	if doc.Lookup("type").StringValue() == vf.TaskVerifyCollection && v.rng.IntN(4) == 0 {
		status = vf.StatusMismatch
	}
	v.set(doc, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: status},
		{Key: "found_source_documents_count", Value: int64(v.rng.IntN(1000))}, {Key: "source_bytes_count", Value: int64(v.rng.IntN(100_000))}}}})
}

// exists tells whether a task of the current generation matches filter.
func (v *fakeVerifier) exists(filter bson.D) bool {
	_, ok := v.one(filter)
	return ok
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
	processing := bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: vf.StatusProcessing}, {Key: "begin_time", Value: bson.NewDateTimeFromTime(v.clock)}}}}
	unfinished := bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{vf.StatusAdded, vf.StatusProcessing}}}}}
	collAdded := bson.D{{Key: "type", Value: vf.TaskVerifyCollection}, {Key: "status", Value: vf.StatusAdded}}
	collProcessing := bson.D{{Key: "type", Value: vf.TaskVerifyCollection}, {Key: "status", Value: vf.StatusProcessing}}
	docsAdded := bson.D{{Key: "type", Value: vf.TaskVerifyDocuments}, {Key: "status", Value: vf.StatusAdded}}
	anyProcessing := bson.D{{Key: "status", Value: vf.StatusProcessing}}
	var actions []action
	add := func(ok bool, name string, weight int, do func() string) {
		if ok {
			actions = append(actions, action{name, weight, do})
		}
	}
	// A task made more than a minute ago is inserted now: the running totals read again
	// what was newest up to recentWindow (2 minutes) before.
	overdue := len(v.late) > 0 && v.clock.Sub(v.late[0].ID.Timestamp()) >= time.Minute
	add(len(v.late) > 0, "late insert", 1, func() string {
		task := v.late[0]
		v.late = v.late[1:]
		v.must(v.fixture().Tasks(ctx, task))
		if v.rng.IntN(2) == 0 { // and finished before the next scrape
			raw, err := v.tasks().FindOne(ctx, bson.D{{Key: "_id", Value: task.ID}}).Raw()
			v.must(err)
			v.finish(raw)
			return "late insert, finished"
		}
		return "late insert"
	})
	add(v.generation == 0 && v.namespaces < 12, "new namespace", 1, func() string { v.addNamespace(); return "new namespace" })
	add(v.exists(collAdded), "pick", 1, func() string {
		doc, _ := v.one(collAdded)
		v.set(doc, processing)
		return "verifyCollection picked"
	})
	add(v.exists(collProcessing), "partition", 4, func() string {
		doc, _ := v.one(collProcessing)
		ns := doc.Lookup("query_filter", "namespace").StringValue()
		var tasks []vf.Task
		for range 1 + v.rng.IntN(4) {
			tasks = append(tasks, vf.Task{ID: v.id(), Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Namespace: ns})
		}
		if v.rng.IntN(2) == 0 { // made now, inserted within a minute or so
			v.late = append(v.late, tasks[0])
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
	add(v.exists(docsAdded), "pick", 3, func() string {
		doc, _ := v.one(docsAdded)
		v.set(doc, processing)
		return "verifyDocuments picked"
	})
	add(v.exists(anyProcessing), "finish", 4, func() string {
		doc, _ := v.one(anyProcessing)
		v.finish(doc)
		return "finished"
	})
	add(v.generation > 0 || v.exists(collProcessing), "quick task", 2, func() string {
		ns := "db.recheck"
		if doc, ok := v.one(collProcessing); ok {
			ns = doc.Lookup("query_filter", "namespace").StringValue()
		}
		id := v.id()
		v.must(v.fixture().Tasks(ctx, vf.Task{ID: id, Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Namespace: ns, Generation: v.generation, Documents: 2}))
		raw, err := v.tasks().FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
		v.must(err)
		v.finish(raw)
		return "quick task"
	})
	add(v.rng.IntN(3) == 0, "restart", 1, func() string {
		_, err := v.tasks().UpdateMany(ctx, bson.D{{Key: "type", Value: vf.TaskVerifyDocuments}, {Key: "status", Value: vf.StatusProcessing}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: vf.StatusAdded}}}, {Key: "$unset", Value: bson.D{{Key: "begin_time", Value: 1}}}})
		v.must(err)
		cursor, err := v.tasks().Find(ctx, collProcessing)
		v.must(err)
		var colls []bson.Raw
		v.must(cursor.All(ctx, &colls))
		for _, c := range colls {
			ns := c.Lookup("query_filter", "namespace").StringValue()
			_, err := v.tasks().DeleteMany(ctx, bson.D{{Key: "type", Value: vf.TaskVerifyDocuments}, {Key: "query_filter.namespace", Value: ns}})
			v.must(err)
			v.set(c, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: vf.StatusAdded}}}, {Key: "$unset", Value: bson.D{{Key: "begin_time", Value: 1}}}})
		}
		return fmt.Sprintf("restart (%d namespaces start over)", len(colls))
	})
	add(!v.exists(unfinished) && len(v.late) == 0 && v.namespaces >= 12, "next generation", 1, func() string {
		v.generation++
		var rechecks []vf.Task
		for i := range v.rng.IntN(6) {
			rechecks = append(rechecks, vf.Task{ID: v.id(), Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Generation: v.generation,
				Namespace: fmt.Sprintf("db.c%d", 1+i%v.namespaces), IDs: []int{1, 2}, Documents: 2})
		}
		if len(rechecks) > 0 {
			v.must(v.fixture().Tasks(ctx, rechecks...))
		}
		_, err := v.db.Collection("generation").UpdateOne(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "generation", Value: v.generation}}}})
		v.must(err)
		return fmt.Sprintf("generation %d", v.generation)
	})
	add(v.generation > 3 && v.rng.IntN(10) == 0, "--clean", 1, func() string {
		v.must(v.db.Drop(ctx))
		v.namespaces = 0
		v.start()
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

// The running totals equal a full recount on the server after every step of a verifier
// that inserts, picks and finishes tasks, restarts, inserts late, moves to new
// generations and is cleaned.
func TestTallyEqualsFullRecount(t *testing.T) {
	uri := mongotest.URI(t)
	client := connectForFixtures(t, uri)
	db := client.Database("vf_tally")
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	v := &fakeVerifier{t: t, db: db, rng: rand.New(rand.NewPCG(1, 2)), clock: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	v.start()
	previousNow := now
	now = func() time.Time { return v.clock }
	t.Cleanup(func() { now = previousNow })

	newReader := func() *verifierReader {
		c := newMongoClient(verifierConfig("tally", uri, "").MongoURI, 10*time.Second)
		t.Cleanup(c.close)
		return newVerifierReader(c, "vf_tally", 0)
	}
	tally := newReader()
	recount := newReader()
	read := func(r *verifierReader, watched int) *verifierMetadata {
		previous := maxWatched
		maxWatched = watched
		defer func() { maxWatched = previous }()
		m, err := r.read(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	kept := 0
	var history []string
	for i := range 800 {
		history = append(history, v.step())
		// The exporter restarts (the totals start over), now and then, and often while a
		// task the verifier made is not inserted yet.
		if v.rng.IntN(50) == 0 || (len(v.late) > 0 && v.rng.IntN(6) == 0) {
			tally = newReader()
			history = append(history, "exporter restart")
		}
		got, want := read(tally, 1000), read(recount, 0)
		if tally.tally != nil {
			kept++
		}
		where := fmt.Sprintf("after step %d (last steps: %v)", i, history[max(0, len(history)-5):])
		if !maps.Equal(got.tasks, want.tasks) {
			t.Fatalf("%s: tasks\n%v\nrecount\n%v", where, got.tasks, want.tasks)
		}
		if !maps.Equal(got.namespaces, want.namespaces) {
			t.Fatalf("%s: namespaces\n%v\nrecount\n%v", where, got.namespaces, want.namespaces)
		}
		if *got.rechecksDone != *want.rechecksDone || got.malformed != want.malformed {
			t.Fatalf("%s: rechecks %v malformed %v, recount %v %v", where, *got.rechecksDone, got.malformed, *want.rechecksDone, want.malformed)
		}
	}
	if kept < 700 {
		t.Errorf("the running totals were kept at %d of 800 scrapes only", kept)
	}
	kinds := map[string]int{}
	for _, h := range history {
		kinds[h]++
	}
	t.Logf("tasks made %d, running totals at %d scrapes, steps %v", v.counter, kept, kinds)
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
		if _, err := s.targets[0].reader.read(t.Context()); err != nil {
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
