package exporter

// Hostile data: what a database or a mongosync sends must never end the process, blank
// a whole source, or make series or log lines without bound.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/testsupport"
	vf "github.com/mongomigrate/observability/internal/verifierfixture"
)

const invalid = "\xff\xfe" // not UTF-8

// parseExposition checks that body is exposition text Prometheus accepts, and returns
// its series by metric name.
func parseExposition(t *testing.T, body string) map[string]int {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the scrape is not valid exposition text: %v", err)
	}
	series := map[string]int{}
	for name, f := range families {
		series[name] = len(f.GetMetric())
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if !model.LabelValue(l.GetValue()).IsValid() {
					t.Errorf("%s has an invalid label value %q", name, l.GetValue())
				}
			}
		}
	}
	return series
}

// One invalid UTF-8 byte in a heartbeat name or status, a task status, a namespace or an
// event-count key is no valid label value: MustNewConstMetric would panic on it and
// fail the whole scrape, every mongosync series with it. The scrape stays whole, the
// values are repaired, and the repairs are counted.
func TestInvalidUTF8InDocumentsKeepsTheScrapeWhole(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	insertDocs(t, uri, "hostile_hb", config.DefaultCollectorMetadataCollection, []any{
		bson.D{{Key: "name", Value: "prod" + invalid}, {Key: "collector_status", Value: bson.D{{Key: "status", Value: "running"}}}},
		bson.D{{Key: "name", Value: "ok"}, {Key: "collector_status", Value: bson.D{{Key: "status", Value: "run" + invalid}}}},
	})
	newMetadataFixture(t, client, "hostile_vf", 7).generation(0).primary(vf.StatusCompleted).tasks(
		vf.Task{Type: vf.TaskVerifyDocuments, Status: "done" + invalid, Namespace: "shop.orders"},
		vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusFailed, Namespace: "shop." + invalid, Found: 3},
	).changeReader("changeReader", vf.Counts("insert", 5, "upd"+invalid, 7), vf.Counts())
	server := newStandIn(t, map[string]reply{"m": {file: "v1.22-full.json"}})

	limit := config.DefaultSourceLimit
	e := New(map[string]bool{"mongosync": true, "verifier": true, "collector_heartbeat": true}, 0, log.NewNopLogger())
	err := e.ApplyConfig(&config.Config{Exporter: config.Exporter{
		Mongosync:          []config.Mongosync{server.target("m", time.Second)},
		Verifiers:          []config.Verifier{verifierConfig("v", uri, "hostile_vf")},
		HeartbeatDatabases: []config.HeartbeatDatabase{{Name: "central", MongoURI: config.MongoURI{URI: "mongodb://x"}, Database: "hostile_hb", Collection: config.DefaultCollectorMetadataCollection, Timeout: 5 * time.Second, SourceLimit: &limit}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// The heartbeat target above has a placeholder URI: give it the test server's.
	e.scrapers[2].Scraper.(*heartbeatScraper).Close()
	hb, err := newHeartbeatScraper(&config.Exporter{HeartbeatDatabases: []config.HeartbeatDatabase{metadataTarget("central", uri, "hostile_hb")}}, Env{Logger: log.NewNopLogger(), OnChange: e.onChange, Stats: e.stats["collector_heartbeat"]})
	if err != nil {
		t.Fatal(err)
	}
	e.scrapers[2].Scraper = hb
	t.Cleanup(hb.(*heartbeatScraper).Close)

	for range 2 { // twice: a broken value must not break a later scrape either
		body := get(t, e.Handler(prometheus.NewRegistry(), 0), "")
		testsupport.CheckMetrics(t, body)
		parseExposition(t, body)
		for _, want := range []string{
			`mongosync_up{migration="orders",mongosync="m"} 1`,
			`migration_verifier_up{migration="",verifier="v"} 1`,
			`oplog_collector_metadata_up{metadata="central"} 1`,
			"oplog_collector_status{metadata=\"central\",source_cluster=\"prod\uFFFD\",status=\"running\"} 1",
			`oplog_collector_status{metadata="central",source_cluster="ok",status="other"} 1`,
			`migration_verifier_tasks{migration="",status="other",type="verifyDocuments",verifier="v"} 1`,
			"migration_verifier_namespace_mismatched{migration=\"\",namespace=\"shop.\uFFFD\",verifier=\"v\"} 1",
			"migration_verifier_change_events_total{cluster_role=\"source\",migration=\"\",op_type=\"upd\uFFFD\",verifier=\"v\"} 7",
			`mongosync_exporter_target_panics_total{collector="verifier"} 0`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("scrape lacks %s", want)
			}
		}
		if !strings.Contains(body, `mongosync_exporter_label_values_replaced_total{collector="collector_heartbeat"}`) ||
			strings.Contains(body, `mongosync_exporter_label_values_replaced_total{collector="collector_heartbeat"} 0`) {
			t.Errorf("the repaired heartbeat label was not counted:\n%s", grepLines(body, "label_values_replaced"))
		}
	}
}

func grepLines(body, substring string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.Contains(line, substring) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// A task with a field of the wrong type must not fail the decoding of the whole
// aggregation, and with it every series of the verifier: it is left out, counted, and
// logged once.
func TestMalformedTaskCostsOnlyThatTask(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	f := newMetadataFixture(t, client, "hostile_tasks", 7)
	initialCheckUnderWay(f)
	tasks := client.Database("hostile_tasks").Collection("verification_tasks")
	if _, err := tasks.InsertMany(t.Context(), []any{
		bson.D{{Key: "type", Value: int32(7)}, {Key: "status", Value: vf.StatusCompleted}, {Key: "generation", Value: int32(0)}},
		bson.D{{Key: "type", Value: vf.TaskVerifyDocuments}, {Key: "status", Value: bson.A{"added"}}, {Key: "generation", Value: int32(0)}},
		bson.D{{Key: "type", Value: vf.TaskVerifyDocuments}, {Key: "status", Value: vf.StatusCompleted}, {Key: "generation", Value: int32(0)},
			{Key: "query_filter", Value: bson.D{{Key: "namespace", Value: int64(12)}}}, {Key: "found_source_documents_count", Value: "many"}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct {
		name    string
		watched int
	}{{"running totals", maxWatched}, {"summed on the server", 1}} {
		t.Run(mode.name, func(t *testing.T) {
			lowerWatchLimit(t, mode.watched)
			s, logs := newVerifierForTest(t, verifierConfig("hostile", uri, "hostile_tasks"))
			c := collectorOf(s)
			for range 3 {
				want := `
# HELP migration_verifier_malformed_tasks Verification tasks left out of every figure because their type or status is not a string; each is logged.
# TYPE migration_verifier_malformed_tasks gauge
migration_verifier_malformed_tasks{migration="",verifier="hostile"} 2
# HELP migration_verifier_up Whether the verifier's metadata database was readable (1) or not (0). A database that does not exist yet (not started, or dropped by --clean) is readable.
# TYPE migration_verifier_up gauge
migration_verifier_up{migration="",verifier="hostile"} 1
# HELP migration_verifier_documents_compared Documents compared in the current generation: finished verifyDocuments tasks, plus the tasks in progress as the verifier's API reports them.
# TYPE migration_verifier_documents_compared gauge
migration_verifier_documents_compared{migration="",verifier="hostile"} 800
`
				if err := testutil.CollectAndCompare(c, strings.NewReader(want), "migration_verifier_up", "migration_verifier_malformed_tasks", "migration_verifier_documents_compared"); err != nil {
					t.Fatal(err)
				}
			}
			if n := strings.Count(logs.String(), "Verifier metadata documents are left out"); n != 1 {
				t.Errorf("the malformed tasks were logged %d times in 3 scrapes, want 1:\n%s", n, logs)
			}
			if !strings.Contains(logs.String(), "type 7 (BSON 32-bit integer)") {
				t.Errorf("the log does not say what is wrong:\n%s", logs)
			}
		})
	}
}

// Series that data can multiply are bounded: unknown task types and statuses fold into
// "other", event-count keys and heartbeat documents stop at their limits and say how
// many they left out, and a huge mongosync warnings list is logged cut.
func TestDataCannotMakeUnboundedSeries(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)

	var tasks []vf.Task
	for i := range 5000 {
		tasks = append(tasks, vf.Task{Type: fmt.Sprintf("type%d", i%100), Status: fmt.Sprintf("status%d", i), Namespace: "a.b"})
	}
	counts := bson.D{}
	for i := range 50_000 {
		counts = append(counts, bson.E{Key: fmt.Sprintf("op%05d", i), Value: int64(i)})
	}
	newMetadataFixture(t, client, "hostile_many", 7).generation(0).primary(vf.StatusCompleted).tasks(tasks...).
		changeReader("changeReader", append(bson.D{{Key: "insert", Value: int64(1)}}, counts...), vf.Counts())
	verifier, _ := newVerifierForTest(t, verifierConfig("many", uri, "hostile_many"))
	n := testutil.CollectAndCount(collectorOf(verifier), "migration_verifier_tasks")
	t.Logf("5,000 distinct task types and statuses: %d task series", n)
	if n > len(verifierTaskPairs)+len(taskTypes)+1 {
		t.Errorf("5,000 distinct task types and statuses made %d task series", n)
	}
	eventSeries := testutil.CollectAndCount(collectorOf(verifier), "migration_verifier_change_events_total")
	if eventSeries != config.DefaultChangeEventTypeLimit {
		t.Errorf("50,001 event-count keys made %d series, want the limit %d", eventSeries, config.DefaultChangeEventTypeLimit)
	}
	omitted := `
# HELP migration_verifier_change_event_types_omitted Operation types of the change reader's eventCounts left out of migration_verifier_change_events_total by change_event_type_limit.
# TYPE migration_verifier_change_event_types_omitted gauge
migration_verifier_change_event_types_omitted{cluster_role="destination",migration="",verifier="many"} 0
migration_verifier_change_event_types_omitted{cluster_role="source",migration="",verifier="many"} 49951
`
	if err := testutil.CollectAndCompare(collectorOf(verifier), strings.NewReader(omitted), "migration_verifier_change_event_types_omitted"); err != nil {
		t.Error(err)
	}

	var docs []any
	for i := range 20_000 {
		docs = append(docs, bson.D{{Key: "name", Value: fmt.Sprintf("source%05d", i)}, {Key: "collector_status", Value: bson.D{{Key: "status", Value: "running"}}}})
	}
	insertDocs(t, uri, "hostile_hb_many", config.DefaultCollectorMetadataCollection, docs)
	target := metadataTarget("central", uri, "hostile_hb_many")
	limit := 100
	target.SourceLimit = &limit
	heartbeats, _ := newHeartbeatForTest(t, target)
	n = testutil.CollectAndCount(collectorOf(heartbeats))
	t.Logf("20,000 heartbeat documents, source_limit 100: %d series", n)
	if n > 100*(len(heartbeatDescs)+16)+2 {
		t.Errorf("20,000 heartbeat documents with source_limit 100 made %d series", n)
	}
	want := `
# HELP oplog_collector_sources_omitted Heartbeat documents without series: beyond source_limit (in name order), without a name, or with a name used by an earlier document.
# TYPE oplog_collector_sources_omitted gauge
oplog_collector_sources_omitted{metadata="central"} 19900
`
	if err := testutil.CollectAndCompare(collectorOf(heartbeats), strings.NewReader(want), "oplog_collector_sources_omitted"); err != nil {
		t.Error(err)
	}
}

// A mongosync whose warnings list is hundreds of kilobytes is logged in a line of a few.
func TestHugeWarningsAreLoggedCut(t *testing.T) {
	warning := strings.Repeat("oplog too small; ", 50_000) // 850 KB
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"progress":{"state":"RUNNING","warnings":[%q]}}`, warning)
	}))
	t.Cleanup(s.Close)
	scraper, logs := newMongosyncForTest(t, config.Mongosync{Migration: "m", Name: "w", URL: s.URL, Timeout: 5 * time.Second})
	testutil.CollectAndCount(collectorOf(scraper))
	t.Logf("an 850 KB warnings list made a log of %d bytes", len(logs.String()))
	if n := len(logs.String()); n > 4*maxLoggedText || !strings.Contains(logs.String(), "bytes in all") {
		t.Fatalf("the warnings made a log of %d bytes:\n%.300s", n, logs)
	}
}

// A panic reading one target (a bug no test foresaw) costs that target's series, says
// so with its _up 0, is counted and logged once; the other targets are untouched.
func TestPanicCostsOnlyItsTarget(t *testing.T) {
	logs := &syncBuffer{}
	env := testEnv(logs)
	ch := make(chan prometheus.Metric, 100)
	up := prometheus.NewDesc("test_up", "Up.", []string{"target"}, nil)
	value := prometheus.NewDesc("test_value", "Value.", []string{"target"}, nil)
	for range 2 {
		var wg sync.WaitGroup
		for _, name := range []string{"good", "bad"} {
			wg.Go(func() {
				env.target(ch, "test/"+name, []any{"target", name}, func(out *batch) {
					out.add(up, prometheus.GaugeValue, 1, name)
					out.add(value, prometheus.GaugeValue, 42, name)
					if name == "bad" {
						var fields []string
						_ = fields[len(name)] // out of range: panics
					}
				}, func(out *batch) { out.add(up, prometheus.GaugeValue, 0, name) })
			})
		}
		wg.Wait()
	}
	close(ch)
	var got []string
	for m := range ch {
		got = append(got, fmt.Sprintf("%s=%v", m.Desc().String()[:30], testutil.ToFloat64(constCollector{m})))
	}
	if len(got) != 6 { // good: up and value, twice; bad: up 0, twice
		t.Errorf("sent %d series, want 6: %v", len(got), got)
	}
	if env.Stats.panics.Load() != 2 {
		t.Errorf("panics counted %d, want 2", env.Stats.panics.Load())
	}
	if n := strings.Count(logs.String(), "index out of range [3] with length 0"); n != 1 {
		t.Errorf("the panic was logged %d times, want once:\n%s", n, logs)
	}
}

// Fifty Prometheus servers scraping at once share one scrape: each mongosync gets one
// request, not fifty.
func TestConcurrentScrapesShareOneScrape(t *testing.T) {
	var mu sync.Mutex
	requests := 0
	release := make(chan struct{})
	body := []byte(`{"progress":{"state":"RUNNING"}}`)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		<-release
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	var targets []config.Mongosync
	for i := range 20 {
		targets = append(targets, config.Mongosync{Migration: "m", Name: fmt.Sprintf("i%d", i), URL: fmt.Sprintf("%s/i%d", s.URL, i), Timeout: time.Minute})
	}
	e, _ := newExporterForTest(t, map[string]bool{"mongosync": true}, targets...)
	h := e.Handler(prometheus.NewRegistry(), 0)
	const scrapers = 50
	bodies := make(chan string, scrapers)
	for range scrapers {
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			bodies <- rec.Body.String()
		}()
	}
	// Every scraper is waiting once the 20 requests of the first scrape are held and the
	// flight has had all 50 callers join; joining is not observable, so wait for the
	// requests and then give the callers a moment (only the count below is asserted).
	for deadline := time.Now().Add(time.Minute); ; {
		mu.Lock()
		n := requests
		mu.Unlock()
		if n == len(targets) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	for range scrapers {
		if b := <-bodies; !strings.Contains(b, `mongosync_up{migration="m",mongosync="i19"} 1`) {
			t.Fatalf("a scrape lacks the last instance:\n%s", b)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d concurrent scrapes sent %d requests to %d mongosyncs", scrapers, requests, len(targets))
	if requests > 2*len(targets) {
		t.Fatalf("%d concurrent scrapes sent %d requests to %d mongosyncs", scrapers, requests, len(targets))
	}
}

// --web.max-requests: beyond the limit, a scrape is refused at once with 503.
func TestMaxRequestsInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Write([]byte(`{"progress":{"state":"RUNNING"}}`))
	}))
	t.Cleanup(s.Close)
	e, _ := newExporterForTest(t, map[string]bool{"mongosync": true}, config.Mongosync{Migration: "m", Name: "i", URL: s.URL, Timeout: time.Minute})
	h := e.Handler(prometheus.NewRegistry(), 1)
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		done <- rec.Code
	}()
	<-arrived // the first scrape is in flight
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "Limit of concurrent requests reached (1)") {
		t.Errorf("the second concurrent scrape: %d %s, want 503", rec.Code, rec.Body)
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("the first scrape: %d", code)
	}
}

// The cause of a MongoDB failure reaches the log (connection refused, with the server
// selection detail), in the same words at every scrape.
func TestMongoFailureNamesItsCause(t *testing.T) {
	target := metadataTarget("central", "mongodb://"+freeAddress(t), "hb")
	target.Timeout = 500 * time.Millisecond // also the server selection timeout
	s, logs := newHeartbeatForTest(t, target)
	for range 4 {
		testutil.CollectAndCount(collectorOf(s))
	}
	text := logs.String()
	if !strings.Contains(text, "connection refused") || !strings.Contains(text, "no server available within the server selection timeout") {
		t.Errorf("the log does not name the cause:\n%s", text)
	}
	if n := strings.Count(text, "Read failed"); n != 1 {
		t.Errorf("4 scrapes failing the same way logged %d times, want 1:\n%s", n, text)
	}
}

func freeAddress(t *testing.T) string {
	s := httptest.NewServer(nil)
	addr := s.Listener.Addr().String()
	s.Close()
	return addr
}
