package exporter

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mongomigrate/observability/internal/config"
)

func newExporterForTest(t *testing.T, enabled map[string]bool, targets ...config.Mongosync) (*Exporter, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	e := New(enabled, 250*time.Millisecond, log.NewLogfmtLogger(logs))
	if err := e.ApplyConfig(&config.Config{Exporter: config.Exporter{Mongosync: targets}}); err != nil {
		t.Fatal(err)
	}
	return e, logs
}

// get scrapes the exporter's handler as Prometheus would, with its timeout header when
// timeout is not empty.
func get(t *testing.T, h http.Handler, timeout string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if timeout != "" {
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeout)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", rec.Code, body)
	}
	return string(body)
}

func TestHandlerEmitsCollectorMetricsAndBase(t *testing.T) {
	server := newStandIn(t, map[string]reply{"m": {file: "v1.22-full.json"}})
	e, _ := newExporterForTest(t, map[string]bool{"mongosync": true}, server.target("m", time.Second))
	base := prometheus.NewRegistry()
	base.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "base_metric", Help: "From the base gatherer."}))
	body := get(t, e.Handler(base, 0), "")
	for _, want := range []string{
		"base_metric 0",
		`mongosync_exporter_collector_success{collector="mongosync"} 1`,
		`mongosync_exporter_collector_duration_seconds{collector="mongosync"}`,
		`mongosync_up{migration="orders",mongosync="m"} 1`,
		`mongosync_lag_seconds{migration="orders",mongosync="m"} 125`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
}

// Prometheus' scrape timeout, less --timeout-offset, bounds the scrape even when a
// target's own timeout is longer; the scraper then reports failure.
func TestHandlerHonoursScrapeTimeoutHeader(t *testing.T) {
	server := newStandIn(t, map[string]reply{"slow": {hang: true}, "fast": {file: "idle.json"}})
	e, logs := newExporterForTest(t, map[string]bool{"mongosync": true},
		server.target("slow", time.Hour), server.target("fast", time.Hour))
	body := get(t, e.Handler(prometheus.NewRegistry(), 0), "0.5")
	for _, want := range []string{
		`mongosync_exporter_collector_success{collector="mongosync"} 0`,
		`mongosync_up{migration="orders",mongosync="slow"} 0`,
		`mongosync_up{migration="orders",mongosync="fast"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
	if !strings.Contains(logs.String(), "before the scrape deadline") {
		t.Errorf("the log does not name the scrape deadline:\n%s", logs)
	}
}

func TestScrapeContextDeadline(t *testing.T) {
	e := New(nil, 250*time.Millisecond, log.NewNopLogger())
	cases := []struct {
		header string
		want   time.Duration // 0: no deadline
	}{
		{"", 0},
		{"10", 9750 * time.Millisecond},
		{"0.2", 200 * time.Millisecond}, // offset larger than the timeout: the timeout itself
		{"junk", 0},
		{"-1", 0},
	}
	for _, c := range cases {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if c.header != "" {
			req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", c.header)
		}
		before := time.Now()
		ctx, cancel := e.scrapeContext(req)
		deadline, ok := ctx.Deadline()
		cancel()
		if c.want == 0 {
			if ok {
				t.Errorf("header %q: deadline set, want none", c.header)
			}
			continue
		}
		// The deadline is computed from time.Now inside scrapeContext: compare the
		// duration it encodes, with the interval between the two clock reads as slack.
		if got := deadline.Sub(before); !ok || got < c.want || got > c.want+time.Since(before) {
			t.Errorf("header %q: deadline in %v, want %v", c.header, got, c.want)
		}
	}
}

func TestDisabledScraperDoesNotRun(t *testing.T) {
	server := newStandIn(t, map[string]reply{"m": {file: "idle.json"}})
	e, _ := newExporterForTest(t, map[string]bool{"mongosync": false}, server.target("m", time.Second))
	body := get(t, e.Handler(prometheus.NewRegistry(), 0), "")
	if strings.Contains(body, "mongosync_up") || strings.Contains(body, `collector="mongosync"`) {
		t.Fatalf("disabled scraper ran:\n%s", body)
	}
	server.mu.Lock()
	defer server.mu.Unlock()
	if len(server.methods) != 0 {
		t.Fatalf("disabled scraper sent requests: %v", server.methods)
	}
}

// A config whose scrapers cannot be built is refused whole; the old one keeps serving.
func TestApplyConfigKeepsOldOnError(t *testing.T) {
	server := newStandIn(t, map[string]reply{"m": {file: "idle.json"}})
	e, _ := newExporterForTest(t, map[string]bool{"mongosync": true}, server.target("m", time.Second))
	bad := server.target("other", time.Second)
	bad.HTTPClientConfig.TLSConfig.CAFile = "/nonexistent/ca.pem"
	err := e.ApplyConfig(&config.Config{Exporter: config.Exporter{Mongosync: []config.Mongosync{bad}}})
	if err == nil || !strings.Contains(err.Error(), `mongosync "other"`) {
		t.Fatalf("ApplyConfig error = %v, want one naming the instance", err)
	}
	body := get(t, e.Handler(prometheus.NewRegistry(), 0), "")
	if !strings.Contains(body, `mongosync_up{migration="orders",mongosync="m"} 1`) {
		t.Fatalf("the old config stopped serving after a failed apply:\n%s", body)
	}
}

func TestRegistrationsHaveUniqueNamesAndHelp(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Registrations() {
		if r.Name == "" || r.Help == "" || r.New == nil || seen[r.Name] {
			t.Errorf("bad registration %+v", r)
		}
		seen[r.Name] = true
	}
}

// The exporter's own metrics pass promlint too.
func TestScrapeCollectorLint(t *testing.T) {
	server := newStandIn(t, map[string]reply{"m": {file: "v1.22-full.json"}})
	s, _ := newMongosyncForTest(t, server.target("m", time.Second))
	c := &scrape{ctx: t.Context(), scrapers: []namedScraper{{name: "mongosync", Scraper: s}}, onChange: NewOnChangeLogger(log.NewNopLogger()),
		stats: map[string]*scraperStats{"mongosync": {}}}
	problems, err := testutil.CollectAndLint(collected(c.run()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
