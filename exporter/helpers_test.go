package exporter

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/testsupport"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current output")

// reply is what the mongosync stand-in answers on one path.
type reply struct {
	file   string        // under testdata/mongosync; "" for an empty body
	status int           // 0 means 200
	hang   bool          // never answer: wait until the client gives up
	delay  time.Duration // answer after this long
}

// standIn is an HTTP server answering GET /<name>/api/v1/progress with recorded
// mongosync replies, as a mongosync behind a path-prefixing proxy would.
type standIn struct {
	*httptest.Server
	mu        sync.Mutex
	replies   map[string]reply
	abandoned chan string // paths whose client went away before a hanging reply
	methods   map[string]int
}

func newStandIn(t testing.TB, replies map[string]reply) *standIn {
	s := &standIn{replies: replies, methods: map[string]int{}, abandoned: make(chan string, 100)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *standIn) serve(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/api/v1/progress")
	s.mu.Lock()
	s.methods[r.Method]++
	rep, known := s.replies[name]
	s.mu.Unlock()
	if !ok || !known {
		http.NotFound(w, r)
		return
	}
	if rep.hang {
		<-r.Context().Done()
		select {
		case s.abandoned <- name:
		default:
		}
		return
	}
	if rep.delay > 0 {
		time.Sleep(rep.delay)
	}
	var body []byte
	if rep.file != "" {
		var err error
		if body, err = os.ReadFile(filepath.Join("testdata", "mongosync", rep.file)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if rep.status != 0 {
		w.WriteHeader(rep.status)
	}
	w.Write(body)
}

func (s *standIn) set(name string, rep reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies[name] = rep
}

// target configures the stand-in path name as a mongosync of migration "orders".
func (s *standIn) target(name string, timeout time.Duration) config.Mongosync {
	return config.Mongosync{Migration: "orders", Name: name, URL: s.URL + "/" + name, Timeout: timeout}
}

type syncBuffer = testsupport.LogBuffer

// testEnv logs to logs in logfmt.
func testEnv(logs *syncBuffer) Env {
	logger := log.NewLogfmtLogger(logs)
	return Env{Logger: logger, OnChange: NewOnChangeLogger(logger), Stats: &scraperStats{}}
}

func newMongosyncForTest(t testing.TB, targets ...config.Mongosync) (Scraper, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := newMongosyncScraper(&config.Exporter{Mongosync: targets}, testEnv(logs))
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

// scraperCollector lets testutil collect one scraper directly.
type scraperCollector struct {
	Scraper
	ctx context.Context
}

// Describe sends the metrics of every scraper (as docs_test.go lists them), so that a
// pedantic registry refuses a series of a metric the list and docs/metrics.md lack.
func (c scraperCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, descs := range [][]*prometheus.Desc{mongosyncDescs, verifierDescs, heartbeatDescs} {
		for _, d := range descs {
			ch <- d
		}
	}
}

func (c scraperCollector) Collect(ch chan<- prometheus.Metric) {
	_ = c.Scrape(c.ctx, ch)
}

func collectorOf(s Scraper) prometheus.Collector {
	return scraperCollector{Scraper: s, ctx: context.Background()}
}

// compareGolden compares what c collects with testdata/<golden>, or rewrites the file
// with -update. It also runs promlint on the output.
func compareGolden(t *testing.T, c prometheus.Collector, golden string) {
	t.Helper()
	path := filepath.Join("testdata", golden)
	if *update {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		for _, mf := range families {
			if _, err := expfmt.MetricFamilyToText(&out, mf); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	expected, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	defer expected.Close()
	if err := testutil.CollectAndCompare(c, expected); err != nil {
		t.Errorf("output differs from %s:\n%v", path, err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
