package exporter

// One test per rule of migration-verifier v0.2.1 that the verifier scraper follows
// (docs/migration-verifier.md, "What the exporter relies on"): each writes the metadata
// as the verifier does, and reads the figures through a scrape.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/testsupport"
	vf "github.com/mongomigrate/observability/internal/verifierfixture"
)

// A verifier restarted while its processRecheckQueue task runs deletes every
// verifyDocuments task of the generation and creates them again
// (resetProcessRecheckQueueTasksIfNeeded): the generation holds 3,000 tasks, not 6,000.
func TestVerifierRestartWhileCreatingRechecks(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	f := newMetadataFixture(t, client, "vf_requeue", 7).generation(2).primary(vf.StatusCompleted)
	hourAgo := time.Now().Add(-time.Hour)
	queue := vf.Task{ID: oldID(hourAgo, 0), Type: vf.TaskProcessRecheckQueue, Status: vf.StatusProcessing, Generation: 2, Begin: hourAgo}
	rechecks := func(at time.Time, from int) []vf.Task {
		var tasks []vf.Task
		for i := range 3000 {
			tasks = append(tasks, vf.Task{ID: oldID(at, from+i), Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Generation: 2,
				Namespace: fmt.Sprintf("db.c%d", i%10), IDs: []int{i}, Documents: 1, Found: 1, Size: 100, Begin: at})
		}
		return tasks
	}
	f.tasks(append(rechecks(hourAgo, 1), queue)...)
	s, _ := newVerifierForTest(t, verifierConfig("requeue", uri, "vf_requeue"))
	c := collectorOf(s)
	completed := `migration_verifier_tasks{status="completed",type="verifyDocuments"}`
	expectValues(t, "before the restart", scrapeValues(t, c), map[string]float64{completed: 3000})

	// The verifier restarts, deletes the generation's 3,000 and creates them again.
	f.must(f.Restart(t.Context()))
	f.tasks(rechecks(time.Now(), 10_000)...)
	_, err := client.Database("vf_requeue").Collection("verification_tasks").UpdateOne(t.Context(),
		bson.D{{Key: "_id", Value: queue.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: vf.StatusCompleted}}}})
	f.must(err)
	expectValues(t, "after the restart", scrapeValues(t, c), map[string]float64{
		completed:                             3000,
		`migration_verifier_rechecks_total{}`: 3000,
	})
}

// --clean drops the database and the verifier creates it again at once: a scrape sees the
// new verification, already past generation 0, and must not serve the previous one's
// generation-0 figures.
func TestVerifierCleanStartsEveryFigureAgain(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	f := newMetadataFixture(t, client, "vf_cleaned", 7)
	recheckWithEveryKind(f)
	s, _ := newVerifierForTest(t, verifierConfig("cleaned", uri, "vf_cleaned"))
	c := collectorOf(s)
	toCompare := `migration_verifier_initial_documents_to_compare{}`
	expectValues(t, "first verification", scrapeValues(t, c), map[string]float64{toCompare: 1200})

	f.must(f.Clean(t.Context()))
	f.generation(1).primary(vf.StatusCompleted).tasks(
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "app.new", Documents: 7, Size: 70},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Namespace: "app.new", Found: 7, Size: 70},
	)
	expectValues(t, "after --clean", scrapeValues(t, c), map[string]float64{
		toCompare: 7,
		`migration_verifier_mismatches{kind="missing_on_destination"}`: 0,
		`migration_verifier_generation_mismatches{generation="2"}`:     absent,
	})
}

// The verifier remembers the newest change a finished recheck task covered
// (recallLastRecheckedOpTimes; NoteCompareOfOptime as each finishes): a recheck task
// just added does not count.
func TestVerifierLastRecheckedCountsFinishedRechecks(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	newMetadataFixture(t, client, "vf_rechecked", 7).generation(2).primary(vf.StatusCompleted).tasks(
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Generation: 1, Namespace: "a.b", IDs: []int{1}, Documents: 1, SrcTS: unix(1773250000), DstTS: unix(1773250001)},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Generation: 2, Namespace: "a.b", IDs: []int{2}, Documents: 1, SrcTS: unix(1773259999), DstTS: unix(1773259999)},
	)
	s, _ := newVerifierForTest(t, verifierConfig("rechecked", uri, "vf_rechecked"))
	expectValues(t, "", scrapeValues(t, collectorOf(s)), map[string]float64{
		`migration_verifier_last_rechecked_timestamp_seconds{cluster_role="source"}`:      1773250000,
		`migration_verifier_last_rechecked_timestamp_seconds{cluster_role="destination"}`: 1773250001,
	})
}

// The phase is the verifier's own: it reports recheck while it runs generations past
// the first, even between them (a generation with nothing to recheck lasts a second or
// two), and idle only when it does not run; from the metadata alone, the generation
// tells check from recheck. Once its API says idle after the generation the metadata
// names, with nothing left in it, the verifier is done, and that last generation's
// mismatches are the ones that stand.
func TestVerifierPhaseFollowsTheVerifier(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	finishedRun(newMetadataFixture(t, client, "vf_phase", 7)) // generation 5, no task in it
	newMetadataFixture(t, client, "vf_phase", 7).mismatches(
		vf.Mismatch{Generation: 5, TaskType: vf.TaskVerifyDocuments, ID: 9, Details: "Missing", Cluster: "dstClient", Namespace: "app.events"},
	)
	var phase atomic.Value
	phase.Store("recheck")
	api := progressStandIn(t, func() string {
		return fmt.Sprintf(`{"progress":{"phase":%q,"generation":5,"error":null}}`, phase.Load())
	})
	metadataOnly, _ := newVerifierForTest(t, verifierConfig("phase", uri, "vf_phase"))
	expectValues(t, "metadata only", scrapeValues(t, collectorOf(metadataOnly)), map[string]float64{
		`migration_verifier_phase{phase="recheck"}`: 1,
		`migration_verifier_phase{phase="idle"}`:    0,
		`migration_verifier_done{}`:                 0,
	})
	target := verifierConfig("phase-api", uri, "vf_phase")
	target.APIURL = api.URL
	withAPI, _ := newVerifierForTest(t, target)
	c := collectorOf(withAPI)
	expectValues(t, "API running", scrapeValues(t, c), map[string]float64{
		`migration_verifier_phase{phase="recheck"}`:                    1,
		`migration_verifier_done{}`:                                    0,
		`migration_verifier_mismatches{kind="missing_on_destination"}`: 0, // generation 4's
	})
	phase.Store("idle")
	expectValues(t, "API idle after the last generation", scrapeValues(t, c), map[string]float64{
		`migration_verifier_phase{phase="idle"}`:                          1,
		`migration_verifier_done{}`:                                       1,
		`migration_verifier_mismatches{kind="missing_on_destination"}`:    1, // generation 5's
		`migration_verifier_namespace_mismatches{namespace="app.events"}`: 1,
	})
}

// documents_compared and bytes_compared are the verifier's own progress: its finished
// tasks plus what its workers have compared of the tasks they run, which only its API
// reports (up to one 400 MB partition per worker).
func TestVerifierProgressIncludesTasksInProgress(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	initialCheckUnderWay(newMetadataFixture(t, client, "vf_progress", 7)) // 800 documents, 358,400 bytes finished
	api := progressStandIn(t, func() string {
		return `{"progress":{"phase":"check","generation":0,"error":null,
			"generationStats":{"docsCompared":1100,"totalDocs":1250,"srcBytesCompared":460800,"totalSrcBytes":567296,"totalNamespaces":3}}}`
	})
	target := verifierConfig("progress", uri, "vf_progress")
	target.APIURL = api.URL
	s, _ := newVerifierForTest(t, target)
	expectValues(t, "", scrapeValues(t, collectorOf(s)), map[string]float64{
		`migration_verifier_documents_compared{}`:         1100,
		`migration_verifier_bytes_compared{}`:             460800,
		`migration_verifier_initial_documents_compared{}`: 1100,
		`migration_verifier_documents_to_compare{}`:       1250,
	})
}

// A collection whose metadata mismatched is checked again in the next generation by a
// verifyCollection task, whose size the verifier counts as bytes to compare
// (GetPersistedNamespaceStatistics, in any generation).
func TestVerifierBytesToCompareInEveryGeneration(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	newMetadataFixture(t, client, "vf_bytes", 7).generation(1).primary(vf.StatusCompleted).tasks(
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusMismatch, Namespace: "crm.accounts", Documents: 10, Size: 4000},
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusProcessing, Generation: 1, Namespace: "crm.accounts", Documents: 10, Size: 4096},
	)
	s, _ := newVerifierForTest(t, verifierConfig("bytes", uri, "vf_bytes"))
	expectValues(t, "", scrapeValues(t, collectorOf(s)), map[string]float64{`migration_verifier_bytes_to_compare{}`: 4096})
}

// Namespace verdicts are those of the current generation, as the verifier's report of
// the generation counts them: a namespace is complete when its document tasks are, its
// verifyCollection task aside; one with no document task is not.
func TestVerifierNamespaceVerdictsOfTheCurrentGeneration(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	newMetadataFixture(t, client, "vf_ns0", 7).generation(0).primary(vf.StatusCompleted).tasks(
		// partitioned, its partition compared; the task itself not finished yet
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusProcessing, Namespace: "a.partitioned", Documents: 5},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Namespace: "a.partitioned", Found: 5},
		// on neither cluster: the verifyCollection task completes, no document task
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "a.absent"},
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "a.absent-too"},
	)
	newMetadataFixture(t, client, "vf_ns2", 7).generation(2).primary(vf.StatusCompleted).tasks(
		// mismatched in generation 1, matched when rechecked in generation 2
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusFailed, Generation: 1, Namespace: "b.fixed", IDs: []int{1}, Documents: 1, Found: 1},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Generation: 2, Namespace: "b.fixed", IDs: []int{1}, Documents: 1, Found: 1},
	)
	s0, _ := newVerifierForTest(t, verifierConfig("ns0", uri, "vf_ns0"))
	expectValues(t, "generation 0", scrapeValues(t, collectorOf(s0)), map[string]float64{
		`migration_verifier_namespaces{status="complete"}`:                   1,
		`migration_verifier_namespaces{status="in_progress"}`:                2,
		`migration_verifier_namespace_mismatched{namespace="a.partitioned"}`: 0,
	})
	s2, _ := newVerifierForTest(t, verifierConfig("ns2", uri, "vf_ns2"))
	expectValues(t, "generation 2", scrapeValues(t, collectorOf(s2)), map[string]float64{
		`migration_verifier_namespaces{status="complete"}`:             1,
		`migration_verifier_namespaces{status="mismatched"}`:           0,
		`migration_verifier_namespace_mismatched{namespace="b.fixed"}`: 0,
	})
}

// A verifier that crashed after creating its primary task and before finishing it
// leaves it added for good: restarted, it deletes the other tasks, skips the setup (the
// primary task exists) and goes on through its generations (handleIncompletePrimary,
// CreateInitialTasksIfNeeded). It is rechecking, not initializing; and its tasks are
// still counted from running totals, not summed at every scrape.
func TestVerifierPrimaryLeftAddedIsNotInitializing(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	newMetadataFixture(t, client, "vf_stuck", 7).generation(4).primary(vf.StatusAdded).tasks(
		vf.Task{Type: vf.TaskProcessRecheckQueue, Status: vf.StatusCompleted, Generation: 4},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Generation: 4, Namespace: "a.b", IDs: []int{1, 2}, Documents: 2, Found: 2},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Generation: 4, Namespace: "a.b", IDs: []int{3}, Documents: 1},
	)
	s, _ := newVerifierForTest(t, verifierConfig("stuck", uri, "vf_stuck"))
	c := collectorOf(s)
	for range 2 {
		expectValues(t, "", scrapeValues(t, c), map[string]float64{
			`migration_verifier_phase{phase="recheck"}`:      1,
			`migration_verifier_phase{phase="initializing"}`: 0,
			`migration_verifier_documents_to_compare{}`:      3,
		})
	}
	if s.targets[0].reader.tally == nil {
		t.Error("the generation is summed on the server at every scrape")
	}
}

// A verifier that dies as it starts has created its database (AddMetaIndexes) and written
// nothing else: it began, and did not get through its start.
func TestVerifierDeadAtStartUpIsVisible(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	f := newMetadataFixture(t, client, "vf_dead", 7)
	f.must(f.Clean(t.Context()))
	t.Cleanup(func() { _ = client.Database("vf_dead").Drop(context.Background()) })
	s, _ := newVerifierForTest(t, verifierConfig("dead", uri, "vf_dead"))
	expectValues(t, "", scrapeValues(t, collectorOf(s)), map[string]float64{
		`migration_verifier_phase{phase="not_started"}`:  0,
		`migration_verifier_phase{phase="initializing"}`: 1,
	})
}

// docs/migration-verifier.md names the v0.2.1 source of every rule the exporter relies
// on, so that the next release can be checked against it line by line.
func TestVerifierDocCitesTheRulesItRelies(t *testing.T) {
	doc, err := os.ReadFile("../docs/migration-verifier.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range []string{
		"ResetInProgressTasks", "handleIncompletePrimary", "resetCollectionTasksIfNeeded",
		"resetProcessRecheckQueueTasksIfNeeded", "resetDocumentTasksIfNeeded", "CreatePrimaryTaskIfNeeded",
		"clearMismatchesForTask", "setCollectionSizeInTask", "createDocumentRecheckTask", "UpdateVerificationTask",
		"FindNextVerifyTaskAndUpdate", "persistGenerationWhileLocked", "AddMetaIndexes", "getPhaseWhileLocked",
		"getComparisonStatistics", "GetPersistedNamespaceStatistics", "recallLastRecheckedOpTimes", "countAllRechecks",
		"findAndSendMismatches", "ensureCreateRecheckTaskIfNeeded", "persistResumeToken", "WritesOff",
	} {
		if !strings.Contains(string(doc), "`"+rule+"`") {
			t.Errorf("docs/migration-verifier.md does not cite `%s`", rule)
		}
	}
}

// exporter.verifiers[].migration labels every series of the verifier, so that its
// figures join mongosync's.
func TestVerifierMigrationLabel(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	recheckWithEveryKind(newMetadataFixture(t, client, "vf_labelled", 7))
	api, _ := verifierAPIStandIn(t, `{"progress":{"phase":"recheck","generation":3,"error":null,"srcChangeStats":{"lagSecs":2,"bufferSaturation":0.1}}}`)
	target := verifierConfig("labelled", uri, "vf_labelled")
	target.Migration = "orders"
	target.APIURL = api.URL
	s, _ := newVerifierForTest(t, target)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collectorOf(s))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for _, f := range families {
		for _, m := range f.GetMetric() {
			series++
			if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == "migration" && l.GetValue() == "orders" }) {
				t.Errorf("%s %v has no migration=\"orders\"", f.GetName(), m.GetLabel())
			}
		}
	}
	if series < 50 {
		t.Fatalf("only %d series", series)
	}
}

// Mismatch counts by namespace: those with mismatches, most first, at most
// namespace_limit of those namespace_include keeps.
func TestVerifierNamespaceMismatchCounts(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	f := newMetadataFixture(t, client, "vf_nscounts", 7).generation(0).primary(vf.StatusCompleted)
	var ms []vf.Mismatch
	for i, ns := range []string{"shop.a", "shop.b", "shop.c", "shop.d", "other.e"} {
		for j := range 5 - i + 2*boolInt(ns == "other.e") {
			ms = append(ms, vf.Mismatch{Generation: 0, TaskType: vf.TaskVerifyDocuments, ID: j, Details: "Missing", Cluster: "dstClient", Namespace: ns})
		}
	}
	f.mismatches(ms...)
	target := verifierConfig("nscounts", uri, "vf_nscounts")
	limit := 3
	target.NamespaceLimit = &limit
	target.NamespaceInclude = `^shop\.`
	s, _ := newVerifierForTest(t, target)
	got := scrapeValues(t, collectorOf(s))
	expectValues(t, "", got, map[string]float64{
		`migration_verifier_namespace_mismatches{namespace="shop.a"}`:  5,
		`migration_verifier_namespace_mismatches{namespace="shop.b"}`:  4,
		`migration_verifier_namespace_mismatches{namespace="shop.c"}`:  3,
		`migration_verifier_namespace_mismatches{namespace="shop.d"}`:  absent,
		`migration_verifier_namespace_mismatches{namespace="other.e"}`: absent,
	})
}

// Mismatches found by each of the last 10 generations: a finished generation's are
// counted once (but for those that stand), the current one's at every scrape.
func TestVerifierGenerationMismatches(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	f := newMetadataFixture(t, client, "vf_gencounts", 7).generation(14).primary(vf.StatusCompleted)
	var ms []vf.Mismatch
	for g := range int32(15) {
		if g == 9 {
			continue // a generation that found none
		}
		ms = append(ms, vf.Mismatch{Generation: g, TaskType: vf.TaskVerifyDocuments, ID: 1, Field: "x", Details: "Mismatch", Cluster: "dstClient", Namespace: "a.b"})
	}
	f.mismatches(ms...)
	commands := watchCommands(t)
	s, _ := newVerifierForTest(t, verifierConfig("gencounts", uri, "vf_gencounts"))
	c := collectorOf(s)
	want := map[string]float64{
		`migration_verifier_generation_mismatches{generation="4"}`:  absent,
		`migration_verifier_generation_mismatches{generation="5"}`:  1,
		`migration_verifier_generation_mismatches{generation="9"}`:  absent,
		`migration_verifier_generation_mismatches{generation="13"}`: 1,
		`migration_verifier_generation_mismatches{generation="14"}`: 1,
	}
	expectValues(t, "first scrape", scrapeValues(t, c), want)
	f.Now = time.Now() // the mismatch found since is inserted now
	f.mismatches(vf.Mismatch{Generation: 14, TaskType: vf.TaskVerifyDocuments, ID: 2, Details: "Missing", Cluster: "dstClient", Namespace: "a.b"})
	commands.mu.Lock()
	before := len(commands.commands)
	commands.mu.Unlock()
	want[`migration_verifier_generation_mismatches{generation="14"}`] = 2
	expectValues(t, "second scrape", scrapeValues(t, c), want)
	commands.mu.Lock()
	defer commands.mu.Unlock()
	for _, cmd := range commands.commands[before:] {
		// Generation 13's count is the mismatches that stand, which are counted each time.
		if text := cmd.String(); strings.Contains(text, `"$group": {"_id": "$generation"`) && strings.Contains(text, `{"$numberLong":"5"}`) {
			t.Errorf("the finished generations were counted again: %s", cmd)
		}
	}
}

// The newest change the metadata shows: a task inserted or picked, or a change reader's
// saved position, which the verifier saves every 10 s while it reads, events or not.
func TestVerifierLastChange(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	f := newMetadataFixture(t, client, "vf_change", 7)
	f.Now = fixtureTime.Add(-time.Hour) // tasks inserted an hour before
	f.generation(0).primary(vf.StatusCompleted).tasks(
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "a.b", Documents: 5},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusProcessing, Namespace: "a.b", Begin: fixtureTime.Add(-30 * time.Minute)},
	)
	s, _ := newVerifierForTest(t, verifierConfig("change", uri, "vf_change"))
	c := collectorOf(s)
	last := `migration_verifier_last_change_timestamp_seconds{}`
	expectValues(t, "a task picked", scrapeValues(t, c), map[string]float64{last: float64(fixtureTime.Add(-30 * time.Minute).Unix())})
	// The change readers' documents: a change stream's token (its time in _data) and the
	// oplog reader's ({ts}).
	token := fmt.Sprintf("82%08X%08X2B0429296E1404", fixtureTime.Add(-10*time.Second).Unix(), 3)
	_, err := client.Database("vf_change").Collection("changeReader").InsertMany(t.Context(), []any{
		bson.D{{Key: "_id", Value: "srcResumeToken"}, {Key: "token", Value: bson.D{{Key: "_data", Value: token}}}, {Key: "eventCounts", Value: vf.Counts()}},
		bson.D{{Key: "_id", Value: "dstResumeToken"}, {Key: "token", Value: bson.D{{Key: "ts", Value: bson.Timestamp{T: uint32(fixtureTime.Add(-20 * time.Second).Unix())}}}}, {Key: "eventCounts", Value: vf.Counts()}},
	})
	f.must(err)
	expectValues(t, "change readers", scrapeValues(t, c), map[string]float64{last: float64(fixtureTime.Add(-10 * time.Second).Unix())})
}

// The verifier's total of documents rechecked drops when it deletes finished recheck
// tasks as it starts again; the counter does not, and goes on counting the rechecks done
// again.
func TestVerifierRechecksCounterNeverGoesDown(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	f := newMetadataFixture(t, client, "vf_counter", 7).generation(1).primary(vf.StatusCompleted)
	rechecks := func() []vf.Task {
		var tasks []vf.Task
		for i := range 10 {
			tasks = append(tasks, vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Generation: 1, Namespace: "a.b", IDs: []int{i, i + 100}, Documents: 2, Found: 2})
		}
		return tasks
	}
	f.tasks(append(rechecks(), vf.Task{Type: vf.TaskProcessRecheckQueue, Status: vf.StatusProcessing, Generation: 1})...)
	s, _ := newVerifierForTest(t, verifierConfig("counter", uri, "vf_counter"))
	c := collectorOf(s)
	counter, tasks := `migration_verifier_rechecks_total{}`, `migration_verifier_tasks{status="completed",type="verifyDocuments"}`
	expectValues(t, "before", scrapeValues(t, c), map[string]float64{counter: 20, tasks: 10})
	f.must(f.Restart(t.Context()))
	expectValues(t, "restarted", scrapeValues(t, c), map[string]float64{counter: 20, tasks: 0})
	f.Now = time.Now() // the tasks created again are inserted now
	f.tasks(rechecks()...)
	expectValues(t, "rechecked again", scrapeValues(t, c), map[string]float64{counter: 40, tasks: 10})
}
