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

	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/testsupport"
	vf "github.com/mongomigrate/observability/internal/verifierfixture"
)

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
	client := testsupport.Connect(t, uri)
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
	client := testsupport.Connect(t, uri)
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
	client := testsupport.Connect(t, srv.URI())
	seedFinishedVerification(t, client, "vf_restart")
	readInParts(t, 0, chunkSizes{first: 100, min: 50, max: 200})

	target := verifierConfig("restart", srv.URI(), "vf_restart")
	target.Timeout = 3 * time.Second
	s, _ := newVerifierForTest(t, target)
	c := collectorOf(s)
	read := `migration_verifier_totals_read_ratio{}`
	previous := 0.0
	for i := range 3 {
		holdSecondChunk(t, client)
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

// seedFinishedVerification writes a verification in generation 2 whose tasks and
// mismatches are an hour old, but for 15 tasks added and 15 processing in generation 2:
// 1,802 tasks, the failed ones with their mismatches.
func seedFinishedVerification(t *testing.T, client *mongo.Client, database string) {
	f := newMetadataFixture(t, client, database, 7).generation(2).primary(vf.StatusCompleted)
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
}

// holdSecondChunk holds the scraper's next aggregation but one (the walk's second chunk)
// on the server for a minute: longer than any scrape's time.
func holdSecondChunk(t *testing.T, client *mongo.Client) {
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

// With more unfinished tasks than it reads one by one, the exporter sums the generation
// on the server; once at most half as many are left it reads running totals again
// (summing meanwhile, so that no scrape lacks a figure), and keeps them.
func TestVerifierSumsOnTheServerThenKeepsTotalsAgain(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
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
