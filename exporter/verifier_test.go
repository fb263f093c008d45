package exporter

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/testsupport"
	vf "github.com/mongomigrate/observability/internal/verifierfixture"
)

// Scenario fixtures. Each writes one verifier's metadata into database db.

func initialCheckUnderWay(f *metadataFixture) {
	started := fixtureTime.Add(-10 * time.Minute)
	f.generation(0).primary(vf.StatusCompleted).tasks(
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "shop.orders", Documents: 1000, Size: 512000, Begin: started},
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "shop.users", Documents: 200, Size: 51200, Begin: started},
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusProcessing, Namespace: "shop.carts", Documents: 50, Size: 4096, Begin: started},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Namespace: "shop.orders", Found: 600, Size: 307200, Begin: started},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusProcessing, Namespace: "shop.orders", Begin: fixtureTime.Add(-2 * time.Minute)},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusFailed, Namespace: "shop.users", Found: 200, Size: 51200, Begin: started},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Namespace: "shop.carts"},
	).mismatches(
		vf.Mismatch{Generation: 0, TaskType: vf.TaskVerifyDocuments, ID: 17, Field: "email", Details: "Different", Cluster: "dstClient", Namespace: "shop.users"},
	).changeReader("changeReader", vf.Counts("insert", 120, "update", 30), vf.Counts())
}

func recheckWithEveryKind(f *metadataFixture) {
	f.generation(3).primary(vf.StatusCompleted).tasks(
		// generation 0: all done, orders mismatched by content, users by metadata
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "shop.orders", Documents: 1000, Size: 512000, Begin: fixtureTime.Add(-3 * time.Hour)},
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusMismatch, Namespace: "shop.users", Documents: 200, Size: 51200, Begin: fixtureTime.Add(-3 * time.Hour)},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusFailed, Namespace: "shop.orders", Found: 1000, Size: 512000, Begin: fixtureTime.Add(-3 * time.Hour)},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Namespace: "shop.users", Found: 200, Size: 51200, Begin: fixtureTime.Add(-3 * time.Hour)},
		// generation 1 and 2: rechecks, finished
		vf.Task{Type: vf.TaskProcessRecheckQueue, Status: vf.StatusCompleted, Generation: 1},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusFailed, Generation: 1, Namespace: "shop.orders", IDs: []int{1, 2, 3}, Documents: 3, Found: 3, Size: 900, SrcTS: unix(1773250000), DstTS: unix(1773250001)},
		vf.Task{Type: vf.TaskProcessRecheckQueue, Status: vf.StatusCompleted, Generation: 2},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusFailed, Generation: 2, Namespace: "shop.orders", IDs: []int{1, 2, 4, 5}, Documents: 4, Found: 3, Size: 1200, SrcTS: unix(1773253202), DstTS: unix(1773253100)},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Generation: 2, Namespace: "shop.users", IDs: []int{9}, Documents: 1, Found: 1, Size: 256, SrcTS: unix(1773253000)},
		// generation 3: under way
		vf.Task{Type: vf.TaskProcessRecheckQueue, Status: vf.StatusCompleted, Generation: 3},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusProcessing, Generation: 3, Namespace: "shop.orders", IDs: []int{1, 2, 4}, Documents: 3, Begin: fixtureTime.Add(-30 * time.Second)},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Generation: 3, Namespace: "shop.carts", IDs: []int{8, 9}, Documents: 2},
	).mismatches(
		// generation 1 (superseded: not counted)
		vf.Mismatch{Generation: 1, TaskType: vf.TaskVerifyDocuments, ID: 3, Details: "Missing", Cluster: "dstClient", Namespace: "shop.orders"},
		// generation 2: the current verdict, one of every kind
		vf.Mismatch{Generation: 2, TaskType: vf.TaskVerifyDocuments, ID: 1, Details: "Missing", Cluster: "dstClient", Namespace: "shop.orders"},
		vf.Mismatch{Generation: 2, TaskType: vf.TaskVerifyDocuments, ID: 2, Details: "Missing", Cluster: "dstClient", Namespace: "shop.orders"},
		vf.Mismatch{Generation: 2, TaskType: vf.TaskVerifyDocuments, ID: 4, Details: "Missing", Cluster: "srcClient", Namespace: "shop.orders"},
		vf.Mismatch{Generation: 2, TaskType: vf.TaskVerifyDocuments, ID: 5, Field: "total", Details: "Different", Cluster: "dstClient", Namespace: "shop.orders"},
		vf.Mismatch{Generation: 2, TaskType: vf.TaskVerifyCollection, ID: "email_1", Field: "unique", Details: "Different", Cluster: "dstClient", Namespace: "shop.users"},
	).changeReader("changeReader", vf.Counts("insert", 5000, "update", 1200, "delete", 40, "createIndexes", 1), vf.Counts("insert", 4990, "update", 1200))
}

func finishedRun(f *metadataFixture) {
	f.generation(5).primary(vf.StatusCompleted).tasks(
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "app.events", Documents: 10, Size: 1000, Begin: fixtureTime.Add(-2 * time.Hour)},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Namespace: "app.events", Found: 10, Size: 1000, Begin: fixtureTime.Add(-2 * time.Hour)},
		vf.Task{Type: vf.TaskProcessRecheckQueue, Status: vf.StatusCompleted, Generation: 4},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Generation: 4, Namespace: "app.events", IDs: []int{1}, Documents: 1, Found: 1, Size: 100, SrcTS: unix(1773200000), DstTS: unix(1773200000)},
	).changeReader("changeReader", vf.Counts("insert", 11), vf.Counts("insert", 11))
}

func stalledRun(f *metadataFixture) {
	f.Now = fixtureTime.Add(-26 * time.Hour) // when it started; nothing has happened for 3 hours
	f.generation(0).primary(vf.StatusCompleted).tasks(
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "big.blobs", Documents: 1e6, Size: 1 << 40, Begin: fixtureTime.Add(-26 * time.Hour)},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusProcessing, Namespace: "big.blobs", Begin: fixtureTime.Add(-25 * time.Hour)},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusProcessing, Namespace: "big.blobs", Begin: fixtureTime.Add(-3 * time.Hour)},
	)
}

func metadataMismatchOnly(f *metadataFixture) {
	f.generation(0).primary(vf.StatusCompleted).tasks(
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusFailed, Namespace: "crm.accounts", Documents: 10, Size: 4000, Begin: fixtureTime.Add(-time.Hour)},
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "crm.notes", Documents: 5, Size: 500, Begin: fixtureTime.Add(-time.Hour)},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Namespace: "crm.notes", Found: 5, Size: 500, Begin: fixtureTime.Add(-time.Hour)},
	).mismatches(
		vf.Mismatch{Generation: 0, TaskType: vf.TaskVerifyCollection, ID: "spec", Field: "shardKey", Details: "Different", Cluster: "dstClient", Namespace: "crm.accounts"},
	)
}

func initializing(f *metadataFixture) {
	f.primary(vf.StatusAdded)
}

func TestVerifierGolden(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	cases := []struct {
		name     string
		database string // "" to detect
		write    func(*metadataFixture)
		dbName   string // where the fixture is written
		version  int32
	}{
		{"initial-check", "", initialCheckUnderWay, verifierDatabase, 7},
		{"recheck-every-kind", "vf_recheck", recheckWithEveryKind, "vf_recheck", 7},
		{"recheck-v6", "vf_recheck_v6", recheckWithEveryKind, "vf_recheck_v6", 6},
		{"finished", "vf_finished", finishedRun, "vf_finished", 7},
		{"stalled", "vf_stalled", stalledRun, "vf_stalled", 7},
		{"metadata-mismatch", "vf_metadata", metadataMismatchOnly, "vf_metadata", 7},
		{"initializing", "vf_init", initializing, "vf_init", 7},
		{"empty", "vf_never_created", nil, "", 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.write != nil {
				c.write(newMetadataFixture(t, client, c.dbName, c.version))
				t.Cleanup(func() { _ = client.Database(c.dbName).Drop(context.Background()) })
			}
			s, logs := newVerifierForTest(t, verifierConfig(c.name, uri, c.database))
			compareGolden(t, collectorOf(s), filepath.Join("verifier", c.name+".prom"))
			if strings.Contains(logs.String(), "level=warn") {
				t.Errorf("unexpected warnings:\n%s", logs)
			}
		})
	}
}

// Verifiers before v0.2.0 used another database name; detection finds it when the
// current default is absent, and a metadata v2-v3 database keeps its counters in
// changeStream.
func TestVerifierOldDatabaseName(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	f := newMetadataFixture(t, client, verifierDatabaseOld, 3)
	f.generation(1).primary(vf.StatusCompleted).tasks(
		vf.Task{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "old.things", Documents: 3, Size: 30},
	).changeReader("changeStream", vf.Counts("insert", 7), vf.Counts("insert", 6))
	t.Cleanup(func() { _ = client.Database(verifierDatabaseOld).Drop(context.Background()) })
	s, _ := newVerifierForTest(t, verifierConfig("old", uri, ""))
	compareGolden(t, collectorOf(s), filepath.Join("verifier", "old-database.prom"))
}

// The verifier's --clean drops the whole database: the next scrape says not_started,
// with no error and no warning.
func TestVerifierDatabaseDropped(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	finishedRun(newMetadataFixture(t, client, "vf_clean", 7))
	s, logs := newVerifierForTest(t, verifierConfig("clean", uri, "vf_clean"))
	c := collectorOf(s)
	if n := testutil.CollectAndCount(c, "migration_verifier_generation"); n != 1 {
		t.Fatalf("generation series before --clean: %d", n)
	}
	if err := client.Database("vf_clean").Drop(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP migration_verifier_done Whether the verifier has finished (1): its API reports it idle after its final generation (the one after writesOff), whose tasks are all finished. 0 otherwise, and whenever the API is not configured or not read.
# TYPE migration_verifier_done gauge
migration_verifier_done{migration="",verifier="clean"} 0
# HELP migration_verifier_phase Phase of the verification (state-set): the verifier's own from its API (idle: not running), else from the metadata database (check in generation 0, recheck after); not_started without a metadata database, initializing before its generation document.
# TYPE migration_verifier_phase gauge
migration_verifier_phase{migration="",phase="check",verifier="clean"} 0
migration_verifier_phase{migration="",phase="idle",verifier="clean"} 0
migration_verifier_phase{migration="",phase="initializing",verifier="clean"} 0
migration_verifier_phase{migration="",phase="not_started",verifier="clean"} 1
migration_verifier_phase{migration="",phase="other",verifier="clean"} 0
migration_verifier_phase{migration="",phase="recheck",verifier="clean"} 0
# HELP migration_verifier_up Whether the verifier's metadata database was readable (1) or not (0). A database that does not exist yet (not started, or dropped by --clean) is readable.
# TYPE migration_verifier_up gauge
migration_verifier_up{migration="",verifier="clean"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if logs.String() != "" {
		t.Fatalf("a dropped database is normal, yet it was logged:\n%s", logs)
	}
}

// verifierAPIStandIn serves a recorded GET /api/v1/progress, and fails any other request.
func verifierAPIStandIn(t *testing.T, body string) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var requests []string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/progress" {
			http.Error(w, "the exporter must only GET /api/v1/progress", http.StatusTeapot)
			return
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s, &requests
}

// The API example of the reference, with the metadata database unreachable: the API's
// series and phase stand in, and each source says whether it was read.
func TestVerifierAPIWhenDatabaseIsDown(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "verifier", "api-progress.json"))
	if err != nil {
		t.Fatal(err)
	}
	api, requests := verifierAPIStandIn(t, string(body))
	target := verifierConfig("api", "mongodb://127.0.0.1:1/?connectTimeoutMS=200", "")
	target.Timeout = 500 * time.Millisecond
	target.APIURL = api.URL
	s, logs := newVerifierForTest(t, target)
	compareGolden(t, collectorOf(s), filepath.Join("verifier", "api-only.prom"))
	if !strings.Contains(logs.String(), `source="metadata database"`) {
		t.Errorf("the database failure was not logged:\n%s", logs)
	}
	for _, r := range *requests {
		if r != "GET /api/v1/progress" {
			t.Errorf("the exporter sent %s", r)
		}
	}
}

// An API that answers {"error": ...} with HTTP 200 is down; the database's series stay.
func TestVerifierAPIErrorKeepsDatabaseSeries(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	finishedRun(newMetadataFixture(t, client, "vf_apierr", 7))
	api, _ := verifierAPIStandIn(t, `{"error":"verifier is shutting down"}`)
	target := verifierConfig("apierr", uri, "vf_apierr")
	target.APIURL = api.URL
	s, logs := newVerifierForTest(t, target)
	c := collectorOf(s)
	want := `
# HELP migration_verifier_api_up Whether the verifier's GET /api/v1/progress answered without error (1) or not (0); only when api_url is configured.
# TYPE migration_verifier_api_up gauge
migration_verifier_api_up{migration="",verifier="apierr"} 0
# HELP migration_verifier_up Whether the verifier's metadata database was readable (1) or not (0). A database that does not exist yet (not started, or dropped by --clean) is readable.
# TYPE migration_verifier_up gauge
migration_verifier_up{migration="",verifier="apierr"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "migration_verifier_up", "migration_verifier_api_up"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "migration_verifier_generation"); n != 1 {
		t.Fatalf("the database's series went with the API: %d generation series", n)
	}
	if !strings.Contains(logs.String(), "verifier is shutting down") {
		t.Errorf("the API's error text was not logged:\n%s", logs)
	}
}

func TestVerifierNamespaceLimitAndFilter(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	f := newMetadataFixture(t, client, "vf_many", 7).generation(0)
	var tasks []vf.Task
	for i := range 6 {
		status := vf.StatusCompleted
		if i == 4 || i == 5 {
			status = vf.StatusFailed
		}
		tasks = append(tasks, vf.Task{Type: vf.TaskVerifyDocuments, Status: status, Namespace: fmt.Sprintf("db%d.coll", i), Found: 1})
	}
	tasks = append(tasks, vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Namespace: "skip.me"})
	f.tasks(tasks...)
	target := verifierConfig("many", uri, "vf_many")
	limit := 3
	target.NamespaceLimit = &limit
	target.NamespaceInclude = `^db`
	s, _ := newVerifierForTest(t, target)
	want := `
# HELP migration_verifier_namespace_mismatched Whether the namespace has a mismatch (1) or not (0) in the current generation; at most namespace_limit namespaces, mismatched first, filtered by namespace_include.
# TYPE migration_verifier_namespace_mismatched gauge
migration_verifier_namespace_mismatched{migration="",namespace="db0.coll",verifier="many"} 0
migration_verifier_namespace_mismatched{migration="",namespace="db4.coll",verifier="many"} 1
migration_verifier_namespace_mismatched{migration="",namespace="db5.coll",verifier="many"} 1
# HELP migration_verifier_namespaces Namespaces of the current generation by verdict: mismatched, complete (its document tasks finished), in_progress.
# TYPE migration_verifier_namespaces gauge
migration_verifier_namespaces{migration="",status="complete",verifier="many"} 4
migration_verifier_namespaces{migration="",status="in_progress",verifier="many"} 1
migration_verifier_namespaces{migration="",status="mismatched",verifier="many"} 2
# HELP migration_verifier_namespaces_omitted Namespaces left out of migration_verifier_namespace_mismatched by namespace_limit or namespace_include.
# TYPE migration_verifier_namespaces_omitted gauge
migration_verifier_namespaces_omitted{migration="",verifier="many"} 4
`
	if err := testutil.CollectAndCompare(collectorOf(s), strings.NewReader(want),
		"migration_verifier_namespace_mismatched", "migration_verifier_namespaces", "migration_verifier_namespaces_omitted"); err != nil {
		t.Fatal(err)
	}
}

// Every query carries maxTimeMS, so the server stops it when the exporter stops waiting.
func TestVerifierQueriesAreBoundedOnTheServer(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	recheckWithEveryKind(newMetadataFixture(t, client, "vf_bounded", 7))
	commands := watchCommands(t)
	s, _ := newVerifierForTest(t, verifierConfig("bounded", uri, "vf_bounded"))
	testutil.CollectAndCount(collectorOf(s))
	commands.mu.Lock()
	defer commands.mu.Unlock()
	queries := 0
	for i, cmd := range commands.commands {
		switch commands.names[i] {
		case "find", "aggregate", "count", "listDatabases", "getMore":
			queries++
			if _, err := cmd.LookupErr("maxTimeMS"); err != nil && commands.names[i] != "getMore" {
				t.Errorf("%s without maxTimeMS: %s", commands.names[i], cmd)
			}
		}
	}
	if queries == 0 {
		t.Fatal("no query seen")
	}
}

// constCollector collects one metric, for testutil.ToFloat64.
type constCollector struct{ m prometheus.Metric }

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.Desc() }
func (c constCollector) Collect(ch chan<- prometheus.Metric) { ch <- c.m }

// While rechecking, the verdict is the previous generation's, which no longer changes:
// its namespaces are grouped once, whatever the refresh interval.
func TestVerifierFinishedGenerationNamespacesReadOnce(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	recheckWithEveryKind(newMetadataFixture(t, client, "vf_cached", 7))
	commands := watchCommands(t)
	target := verifierConfig("cached", uri, "vf_cached")
	target.NamespaceRefresh = time.Nanosecond
	s, _ := newVerifierForTest(t, target)
	for range 3 {
		testutil.CollectAndCount(collectorOf(s))
	}
	if n := commands.namespaceScans(); n != 1 {
		t.Fatalf("3 scrapes grouped a finished generation by namespace %d times, want 1", n)
	}
}

// When the initial check has more unfinished tasks than the exporter watches, the
// generation is summed on the server and its namespaces grouped at most once per
// refresh interval.
func TestVerifierNamespaceAggregationIsCached(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	initialCheckUnderWay(newMetadataFixture(t, client, "vf_refresh", 7))
	lowerWatchLimit(t, 1)
	commands := watchCommands(t)
	s, _ := newVerifierForTest(t, verifierConfig("refresh", uri, "vf_refresh"))
	for range 3 {
		testutil.CollectAndCount(collectorOf(s))
	}
	if n := commands.namespaceScans(); n != 1 {
		t.Fatalf("3 scrapes within the refresh interval grouped by namespace %d times, want 1", n)
	}
	s.targets[0].reader.refresh = 0 // every scrape is past the interval
	testutil.CollectAndCount(collectorOf(s))
	if n := commands.namespaceScans(); n != 2 {
		t.Fatalf("a scrape past the refresh interval did not group again (%d)", n)
	}
}

func TestParseVerifierProgress(t *testing.T) {
	for _, c := range []struct{ body, err string }{
		{`{"error":"boom"}`, "the verifier reported an error: boom"},
		{`{"progress":{"phase":"idle","error":"stuck"}}`, "the verifier reported an error: stuck"},
		{`{"progress":{"phase":"idle","generation":0,"error":null}}`, ""},
		{`not json`, "not a JSON progress report"},
		{`{}`, `no "progress" object`},
	} {
		_, err := parseVerifierProgress([]byte(c.body))
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("parseVerifierProgress(%s) error = %v, want %q", c.body, err, c.err)
		}
	}
}

func TestVerifierLongestMismatchFromAPI(t *testing.T) {
	p, err := parseVerifierProgress([]byte(`{"progress":{"phase":"recheck","error":null,
		"longestDocMismatch":{"type":"Different","namespace":"shop.orders","_id":"5","field":"total","detail":"Different","durationSecs":3600.5}}}`))
	if err != nil {
		t.Fatal(err)
	}
	out := newBatch(&scraperStats{})
	emitVerifierAPI(emitter{out: out, labels: []string{"", "v"}}, p)
	var got []string
	for _, m := range out.metrics {
		got = append(got, fmt.Sprintf("%s=%v", m.Desc(), testutil.ToFloat64(constCollector{m})))
	}
	if len(got) != 1 || !strings.Contains(got[0], "migration_verifier_longest_mismatch_duration_seconds") || !strings.HasSuffix(got[0], "=3600.5") {
		t.Fatalf("emitted %v, want the longest mismatch at 3600.5 s", got)
	}
}
