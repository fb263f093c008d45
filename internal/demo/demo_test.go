package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/exporter"
	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongotest"
)

// scrape runs the real exporter, with only the scraper named enabled, on a config's
// exporter: section, and returns its /metrics text.
func scrape(t *testing.T, scraper, section string) string {
	t.Helper()
	cfg, err := config.ForExporter.Parse([]byte("exporter:\n"+section), "demo-test.yml")
	if err != nil {
		t.Fatalf("%v\n%s", err, section)
	}
	exp := exporter.New(map[string]bool{scraper: true}, 0, log.NewNopLogger())
	if err := exp.ApplyConfig(cfg); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(exp.Handler(prometheus.NewRegistry(), 0))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// series checks that text has (want true) or lacks each series, given as
// name{labels} without the value; labels are in the order the exporter writes them.
func series(t *testing.T, when, text string, want map[string]bool) {
	t.Helper()
	for s, present := range want {
		if found := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(s) + ` `).MatchString(text); found != present {
			t.Errorf("%s: %s present: %v, want %v", when, s, found, present)
		}
	}
}

// name is a series as the exporter writes it: name{label="value",...}, labels sorted.
func name(metric string, labels ...string) string {
	var pairs []string
	for i := 0; i+1 < len(labels); i += 2 {
		pairs = append(pairs, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
	}
	slices.Sort(pairs)
	return metric + "{" + strings.Join(pairs, ",") + "}"
}

// value returns a series' value, failing when it is absent.
func value(t *testing.T, text, s string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(s) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no series %s", s)
	}
	var v float64
	if _, err := fmt.Sscan(m[1], &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// The simulated mongosync walks the migration through its states, and the exporter
// reads every step of it as it reads mongosync: the state and phase, the lag (none
// before an event is applied), the catch-up estimate while the lag falls, the copy, the
// index builds, what can commit and write.
func TestMongosyncWalksTheMigration(t *testing.T) {
	at := func(t *testing.T, d time.Duration) string {
		t.Helper()
		m := &mongosync{clock: &clock{base: time.Now().Add(-d)}, sourceHost: "127.0.0.1:1", destinationHost: "127.0.0.1:2"}
		srv := httptest.NewServer(http.StripPrefix("/mongosync", m))
		defer srv.Close()
		var section strings.Builder
		section.WriteString("  mongosync:\n")
		for _, in := range instances {
			fmt.Fprintf(&section, "    - {migration: %s, name: %s, url: '%s/mongosync/%s'}\n", migrationName, in.name, srv.URL, in.name)
		}
		return scrape(t, "mongosync", section.String())
	}
	l := func(metric, instance string, labels ...string) string {
		return name(metric, append([]string{"migration", migrationName, "mongosync", instance}, labels...)...)
	}

	idle := at(t, 10*time.Second)
	series(t, "IDLE", idle, map[string]bool{
		l("mongosync_state", "shard0", "state", "IDLE"): true,
		l("mongosync_lag_seconds", "shard0"):            false,
	})
	if v := value(t, idle, l("mongosync_state", "shard0", "state", "IDLE")); v != 1 {
		t.Errorf("IDLE: state IDLE is %v", v)
	}

	joined := at(t, joinAt)
	if v := value(t, joined, l("mongosync_phase", "shard0", "phase", "change event application")); v != 1 {
		t.Errorf("at the join, shard0 is not applying change events: %v", v)
	}
	if v := value(t, joined, l("mongosync_phase", "shard1", "phase", "collection copy")); v != 1 {
		t.Errorf("at the join, shard1 is not copying: %v", v)
	}
	series(t, "at the join", joined, map[string]bool{
		l("mongosync_cea_catchup_estimated_seconds", "shard0"): true,
		l("mongosync_index_build_indexes_built", "shard0"):     true,
		l("mongosync_lag_seconds", "shard0"):                   true,
		l("mongosync_lag_seconds", "shard1"):                   false, // nothing applied during the copy
		l("mongosync_warnings", "shard1"):                      true,
	})
	if v := value(t, joined, l("mongosync_oplog_time_remaining_seconds", "shard1")); v != 12*3600 {
		t.Errorf("shard1's oplog time remaining during its copy: %v", v)
	}
	if v := value(t, joined, l("mongosync_can_commit", "shard0")); v != 0 {
		t.Errorf("shard0 can commit while draining: %v", v)
	}
	copied := value(t, joined, l("mongosync_collection_copy_estimated_copied_bytes", "shard1"))
	if later := value(t, at(t, joinAt+time.Minute), l("mongosync_collection_copy_estimated_copied_bytes", "shard1")); later <= copied {
		t.Errorf("shard1's copy does not progress: %v then %v", copied, later)
	}

	steady := at(t, burstStart-30*time.Second)
	for _, in := range instances {
		if v := value(t, steady, l("mongosync_can_commit", in.name)); v != 1 {
			t.Errorf("%s cannot commit in steady state: %v", in.name, v)
		}
		if v := value(t, steady, l("mongosync_lag_seconds", in.name)); v <= 0 || v >= 30 {
			t.Errorf("%s's lag in steady state: %v", in.name, v)
		}
	}
	burst := at(t, burstPeak+10*time.Second)
	if v := value(t, burst, l("mongosync_lag_seconds", "shard1")); v < 60 {
		t.Errorf("shard1's lag after the burst's peak: %v", v)
	}
	series(t, "after the burst's peak", burst, map[string]bool{l("mongosync_cea_catchup_estimated_seconds", "shard1"): true})

	committed := at(t, committedAt+time.Minute)
	if v := value(t, committed, l("mongosync_state", "shard0", "state", "COMMITTED")); v != 1 {
		t.Errorf("not COMMITTED after the commit: %v", v)
	}
	if v := value(t, committed, l("mongosync_can_write", "shard0")); v != 1 {
		t.Errorf("cannot write after the commit: %v", v)
	}
}

// The simulated verifier writes its metadata as migration-verifier does, and the
// exporter reads each stage of it: the initial check, the rechecks with the mismatches
// generation 0 found (and the API's longest mismatch), the mismatch gone, and the new
// verification (--clean) of the next cycle.
func TestVerifierWalksItsGenerations(t *testing.T) {
	uri := mongotest.New(t, "the verifier's metadata database, dropped and written again", mongotest.Options{}).URI()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	script := verifiers[0]
	base := time.Now().Add(-2 * cycleLength) // the cycles are laid out in the past, taken as the test goes
	var narrated syncLines
	v := newVerifier(script, client.Database(script.database), &clock{base: base}, &load{every: time.Second}, narrated.add, base)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"progress": v.progress(time.Now())})
	}))
	defer api.Close()
	section := fmt.Sprintf("  verifiers:\n    - {migration: %s, name: %s, uri: '%s', database: %s, api_url: '%s'}\n", migrationName, script.name, uri, script.database, api.URL)
	at := func(d time.Duration) string {
		v.advance(t.Context(), base.Add(d))
		return scrape(t, "verifier", section)
	}
	m := func(metric string, labels ...string) string {
		return name(metric, append([]string{"migration", migrationName, "verifier", script.name}, labels...)...)
	}

	check := at(script.gen0Start + 20*time.Second)
	if v := value(t, check, m("migration_verifier_phase", "phase", "check")); v != 1 {
		t.Errorf("not in its initial check: %v\n%s", v, check)
	}
	if v := value(t, check, m("migration_verifier_bytes_to_compare")); v != 360<<20 {
		t.Errorf("bytes to compare in generation 0: %v", v)
	}

	// Every partition is compared before generation 0 ends.
	between := at(script.gen0End - 500*time.Millisecond)
	if v := value(t, between, m("migration_verifier_phase", "phase", "idle")); v != 1 {
		t.Errorf("generation 0 still has tasks to do as it ends: %v\n%s", v, between)
	}

	recheck := at(script.gen0End + 10*time.Second)
	if v := value(t, recheck, m("migration_verifier_generation")); v != 1 {
		t.Errorf("generation %v after the initial check", v)
	}
	if v := value(t, recheck, m("migration_verifier_phase", "phase", "recheck")); v != 1 {
		t.Errorf("not rechecking in generation 1: %v", v)
	}
	for kind, want := range map[string]float64{"missing_on_destination": 2, "content": 1} {
		if v := value(t, recheck, m("migration_verifier_mismatches", "kind", kind)); v != want {
			t.Errorf("generation 0's %s mismatches, read in generation 1: %v, want %v", kind, v, want)
		}
	}
	series(t, "rechecking", recheck, map[string]bool{
		m("migration_verifier_longest_mismatch_duration_seconds"): true,
		m("migration_verifier_initial_documents_compared"):        true,
	})

	fixed := at(script.gen0End + time.Duration(script.namespaces[0].contentFixedIn)*recheckEvery + 10*time.Second)
	if v := value(t, fixed, m("migration_verifier_mismatches", "kind", "content")); v != 0 {
		t.Errorf("the content mismatch is still there once fixed: %v", v)
	}
	if v := value(t, fixed, m("migration_verifier_rechecks_total")); v <= 0 {
		t.Errorf("no rechecks counted: %v", v)
	}

	again := at(cycleLength + script.gen0Start - time.Second) // the next verification, started with --clean
	if v := value(t, again, m("migration_verifier_generation")); v != 0 {
		t.Errorf("generation %v in the next cycle's verification", v)
	}
	if v := value(t, again, m("migration_verifier_mismatches", "kind", "content")); v != 0 {
		t.Errorf("the dropped database's mismatches are still read: %v", v)
	}
	for _, want := range []string{"mismatches found in shop.orders", "initial check done", "the last mismatch in shop.orders is gone"} {
		if !strings.Contains(narrated.String(), want) {
			t.Errorf("the narration lacks %q:\n%s", want, narrated.String())
		}
	}
}

type syncLines struct {
	mu    sync.Mutex
	lines []string
}

func (s *syncLines) add(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, fmt.Sprintf(format, args...))
}

func (s *syncLines) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}
