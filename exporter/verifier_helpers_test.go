package exporter

// What the verifier scraper's tests share: a metadata database written as the verifier
// writes it, scrapers of it, the commands they send, and the values a scrape exports.

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	commoncfg "github.com/prometheus/common/config"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
	vf "github.com/mongomigrate/observability/internal/verifierfixture"
)

// What the verifier scraper's tests share: a metadata database written as the verifier
// writes it, scrapers of it, and the values a scrape exports.

// A fixed clock for fixtures, so golden files do not change from run to run.
var fixtureTime = time.Date(2026, 3, 11, 18, 0, 0, 0, time.UTC)

// metadataFixture writes a verifier's metadata database through the driver, failing the
// test on error, with documents shaped as docs/migration-verifier.md
// describes them.
type metadataFixture struct {
	t *testing.T
	vf.Fixture
}

func newMetadataFixture(t *testing.T, client *mongo.Client, database string, version int32) *metadataFixture {
	return &metadataFixture{t: t, Fixture: vf.Fixture{DB: client.Database(database), Version: version, Now: fixtureTime}}
}

func (f *metadataFixture) must(err error) *metadataFixture {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
	return f
}

func (f *metadataFixture) generation(g int32) *metadataFixture {
	return f.must(f.Generation(f.t.Context(), g))
}

func (f *metadataFixture) primary(status string) *metadataFixture {
	return f.must(f.Tasks(f.t.Context(), vf.Task{Type: vf.TaskPrimary, Status: status}))
}

func (f *metadataFixture) tasks(tasks ...vf.Task) *metadataFixture {
	return f.must(f.Tasks(f.t.Context(), tasks...))
}

func (f *metadataFixture) mismatches(ms ...vf.Mismatch) *metadataFixture {
	return f.must(f.Mismatches(f.t.Context(), ms...))
}

func (f *metadataFixture) changeReader(collection string, src, dst bson.D) *metadataFixture {
	return f.must(f.ChangeReader(f.t.Context(), collection, src, dst))
}

// unix is a recheck's cluster time, in seconds.
func unix(seconds int64) time.Time { return time.Unix(seconds, 0) }

func verifierConfig(name, uri, database string) config.Verifier {
	limit, eventTypes := config.DefaultNamespaceLimit, config.DefaultChangeEventTypeLimit
	return config.Verifier{
		Name: name, MongoURI: config.MongoURI{URI: commoncfg.Secret(uri)}, Database: database,
		Timeout: 10 * time.Second, NamespaceLimit: &limit, NamespaceRefresh: config.DefaultNamespaceRefresh,
		ChangeEventTypeLimit: &eventTypes,
	}
}

func newVerifierForTest(t *testing.T, targets ...config.Verifier) (*verifierScraper, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := newVerifierScraper(&config.Exporter{Verifiers: targets}, testEnv(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.(*verifierScraper).Close)
	return s.(*verifierScraper), logs
}

// lowerWatchLimit makes the exporter sum generations on the server beyond n unfinished tasks.
func lowerWatchLimit(t *testing.T, n int) {
	previous := maxWatched
	maxWatched = n
	t.Cleanup(func() { maxWatched = previous })
}

// noAPI stands for a verifier read without its API.
func noAPI() *verifierProgress { return nil }

// scrapeValues scrapes c once and returns each series' value by its name and its labels
// but the verifier's own (migration, verifier), as name{a="x",b="y"}.
func scrapeValues(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if l.GetName() != "verifier" && l.GetName() != "migration" {
					labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
			}
			out[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = metricValue(m)
		}
	}
	return out
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// expectValues fails the test for each series of want whose value differs in got, or is
// absent (want NaN: must be absent).
func expectValues(t *testing.T, what string, got map[string]float64, want map[string]float64) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(want)) {
		v, ok := got[name]
		switch w := want[name]; {
		case w != w: // NaN
			if ok {
				t.Errorf("%s: %s = %v, want no such series", what, name, v)
			}
		case !ok:
			t.Errorf("%s: %s absent, want %v", what, name, w)
		case v != w:
			t.Errorf("%s: %s = %v, want %v", what, name, v, w)
		}
	}
}

// absent stands for a series that must not be there.
var absent = math.NaN()

// oldID makes the _id of a task inserted at, with i to make it unique.
func oldID(at time.Time, i int) bson.ObjectID {
	id := bson.NewObjectIDFromTimestamp(at)
	binary.BigEndian.PutUint64(id[4:], uint64(i))
	return id
}

// progressStandIn serves GET /api/v1/progress with the body progress returns.
func progressStandIn(t *testing.T, progress func() string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/progress" {
			http.Error(w, "the exporter must only GET /api/v1/progress", http.StatusTeapot)
			return
		}
		w.Write([]byte(progress()))
	}))
	t.Cleanup(s.Close)
	return s
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// commandLog records the commands the exporter's MongoDB clients send.
type commandLog struct {
	mu       sync.Mutex
	commands []bson.Raw
	names    []string
	// hold, when set, is called before a command is sent (on the driver's goroutine).
	hold func(name string)
	// returned counts the documents the replies carried.
	returned int
}

func (l *commandLog) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		l.mu.Lock()
		l.commands = append(l.commands, append(bson.Raw(nil), e.Command...))
		l.names = append(l.names, e.CommandName)
		hold := l.hold
		l.mu.Unlock()
		if hold != nil {
			hold(e.CommandName)
		}
	}, Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, batch := range []string{"firstBatch", "nextBatch"} {
			if docs, ok := e.Reply.Lookup("cursor", batch).ArrayOK(); ok {
				values, _ := docs.Values()
				l.returned += len(values)
			}
		}
	}}
}

// watchCommands makes the exporter's MongoDB clients report to the returned log.
func watchCommands(t *testing.T) *commandLog {
	l := &commandLog{}
	previous := mongoClientOptions
	mongoClientOptions = func(o *options.ClientOptions) *options.ClientOptions { return o.SetMonitor(l.monitor()) }
	t.Cleanup(func() { mongoClientOptions = previous })
	return l
}

// namespaceScans counts the commands that group tasks by namespace.
func (l *commandLog) namespaceScans() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.commands {
		if strings.Contains(c.String(), `"$query_filter.namespace"`) {
			n++
		}
	}
	return n
}
