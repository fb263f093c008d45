package exporter

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/mongomigrate/observability/internal/config"
)

// Each recorded reply (docs/mongosync.md, with the documented
// examples verbatim) against its golden exposition text in testdata/mongosync/*.prom.
func TestMongosyncGolden(t *testing.T) {
	cases := map[string]reply{
		"v0.9-documented":  {file: "v0.9-documented.json"},
		"v1.9-documented":  {file: "v1.9-documented.json"},
		"v1.22-documented": {file: "v1.22-documented.json"},
		"v1.22-full":       {file: "v1.22-full.json"},
		"idle":             {file: "idle.json"},
		"starting":         {file: "starting.json"},
		"paused":           {file: "paused.json"},
		"committed":        {file: "committed.json"},
		"unknown-values":   {file: "unknown-values.json"},
		"wrong-type":       {file: "wrong-type.json"},
		"error-1.8":        {file: "error-1.8.json"},
		"error-pre-1.8":    {file: "error-pre-1.8.json"},
		"http-500":         {file: "error-1.8.json", status: http.StatusInternalServerError},
		"http-404-empty":   {status: http.StatusNotFound},
		"garbage":          {file: "garbage.txt"},
		"timeout":          {hang: true},
	}
	server := newStandIn(t, cases)
	for name := range cases {
		t.Run(name, func(t *testing.T) {
			timeout := time.Second
			if cases[name].hang {
				timeout = 100 * time.Millisecond
			}
			s, _ := newMongosyncForTest(t, server.target(name, timeout))
			compareGolden(t, collectorOf(s), filepath.Join("mongosync", name+".prom"))
		})
	}
}

// A sharded migration: one mongosync per source shard, each with its own series, the
// grouping label shared.
func TestMongosyncShardedMigration(t *testing.T) {
	server := newStandIn(t, map[string]reply{
		"shard0": {file: "v1.22-full.json"},
		"shard1": {file: "shard1.json"},
	})
	s, _ := newMongosyncForTest(t, server.target("shard0", time.Second), server.target("shard1", time.Second))
	compareGolden(t, collectorOf(s), filepath.Join("mongosync", "sharded.prom"))
}

func TestMongosyncErrorsAreLoggedOncePerChange(t *testing.T) {
	server := newStandIn(t, map[string]reply{"m": {file: "error-1.8.json", status: http.StatusInternalServerError}})
	s, logs := newMongosyncForTest(t, server.target("m", time.Second))
	c := collectorOf(s)
	scrape := func() { testutil.CollectAndCount(c) }

	for range 3 {
		scrape()
	}
	if n := strings.Count(logs.String(), "level=warn"); n != 1 {
		t.Fatalf("3 failing scrapes logged %d warnings, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "hunter2") {
		t.Fatalf("the password in mongosync's error text reached the log:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "InvalidStateTransition") {
		t.Fatalf("the log does not carry mongosync's error text:\n%s", logs)
	}

	server.set("m", reply{file: "v1.22-full.json"})
	scrape()
	scrape()
	if n := strings.Count(logs.String(), "Read succeeds again"); n != 1 {
		t.Fatalf("recovery logged %d times, want 1:\n%s", n, logs)
	}
	// v1.22-full.json carries two warnings: logged once, while they last.
	if n := strings.Count(logs.String(), "writes to the source are blocked"); n != 1 {
		t.Fatalf("mongosync's warnings logged %d times, want 1:\n%s", n, logs)
	}

	server.set("m", reply{file: "garbage.txt"})
	scrape()
	scrape()
	if n := strings.Count(logs.String(), "level=warn"); n != 3 {
		t.Fatalf("a different error must be logged once more (warnings so far: %d, want 3):\n%s", n, logs)
	}
}

// A target that never answers costs its own timeout, is abandoned, and does not take
// the other targets' series with it.
func TestMongosyncDeadTargetDoesNotBlockOthers(t *testing.T) {
	server := newStandIn(t, map[string]reply{
		"dead":  {hang: true},
		"alive": {file: "v1.22-documented.json"},
	})
	s, logs := newMongosyncForTest(t, server.target("dead", 100*time.Millisecond), server.target("alive", 10*time.Second))
	c := collectorOf(s)
	want := `
# HELP mongosync_up Whether the last read of the instance's /api/v1/progress succeeded (1) or not (0).
# TYPE mongosync_up gauge
mongosync_up{migration="orders",mongosync="alive"} 1
mongosync_up{migration="orders",mongosync="dead"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "mongosync_up"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "within its timeout of 100ms") {
		t.Fatalf("the log does not say the dead target timed out:\n%s", logs)
	}
	select {
	case name := <-server.abandoned:
		if name != "dead" {
			t.Fatalf("abandoned the request to %q, want dead", name)
		}
	case <-time.After(time.Minute): // a deadline against hanging, not a measurement
		t.Fatal("the request to the dead target was never cancelled")
	}
}

// The exporter only reads: it must never POST to mongosync (start, pause, commit...).
func TestMongosyncOnlyGETs(t *testing.T) {
	server := newStandIn(t, map[string]reply{"m": {file: "v1.22-full.json"}})
	s, _ := newMongosyncForTest(t, server.target("m", time.Second))
	testutil.CollectAndCount(collectorOf(s))
	server.mu.Lock()
	defer server.mu.Unlock()
	if len(server.methods) != 1 || server.methods[http.MethodGet] != 1 {
		t.Fatalf("requests by method: %v, want exactly one GET", server.methods)
	}
}

func TestMongosyncScrapeDeadlineIsAnError(t *testing.T) {
	server := newStandIn(t, map[string]reply{"m": {hang: true}})
	s, logs := newMongosyncForTest(t, server.target("m", time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ch := make(chan prometheus.Metric, 100)
	err := s.Scrape(ctx, ch)
	if err == nil || !strings.Contains(err.Error(), "scrape deadline") {
		t.Fatalf("Scrape error = %v, want one about the scrape deadline", err)
	}
	if !strings.Contains(logs.String(), "before the scrape deadline") {
		t.Fatalf("the log does not say which deadline cut the read:\n%s", logs)
	}
}

func TestParseOplogTimeRemaining(t *testing.T) {
	cases := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"12 hours", 43200, true},
		{"45 minutes", 2700, true},
		{"1 hour", 3600, true},
		{"1 minute", 60, true},
		{"30 seconds", 30, true},
		{"2 days", 172800, true},
		{"more than 72 hours", 259200, true},
		{"less than 15 minutes", 900, true},
		{"More Than 72 Hours", 259200, true},
		{"not checked yet", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"12 fortnights", 0, false},
		{"-3 hours", 0, false},
	}
	for _, c := range cases {
		got, ok := parseOplogTimeRemaining(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("parseOplogTimeRemaining(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// FuzzParseProgress feeds arbitrary replies to the parser and the metric builder: no
// input may panic, and a reply that parses must produce valid metrics. `make test` runs
// a short seeded pass; the seeds are every recorded reply.
func FuzzParseProgress(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "mongosync", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed replies: %v", err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"progress":{"state":1,"lag":{"overallLagSeconds":"x"},"warnings":[null,1]}}`))
	f.Add([]byte(`{"progress":{"source":{"pingLatencyMs":-1e308},"verification":{"source":[]}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, _, err := parseProgress(body)
		if err != nil {
			if p != nil {
				t.Fatal("an error came with a progress report")
			}
			return
		}
		out := newBatch(&scraperStats{})
		emitProgress(emitter{out: out, labels: []string{"m", "i"}}, p)
		for _, m := range out.metrics {
			if err := m.Write(&dto.Metric{}); err != nil {
				t.Errorf("invalid metric %s: %v", m.Desc(), err)
			}
		}
	})
}

// A mongosync behind a TLS proxy with basic auth, configured the way a user would: the
// proxy's CA and the password in files.
func TestMongosyncBehindTLSProxyWithBasicAuth(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "mongosync", "idle.json"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "monitor" || pass != "s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Write(body)
	}))
	defer proxy.Close()

	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Certificate().Raw})
	passwordFile := filepath.Join(dir, "password")
	if err := os.WriteFile(caFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := []byte(fmt.Sprintf(`exporter:
  mongosync:
    - migration: orders
      name: right
      url: %[1]s
      tls_config: {ca_file: ca.pem}
      basic_auth: {username: monitor, password_file: password}
    - migration: orders
      name: wrong-password
      url: %[1]s
      tls_config: {ca_file: ca.pem}
      basic_auth: {username: monitor, password: guess}
    - migration: orders
      name: untrusted
      url: %[1]s
      basic_auth: {username: monitor, password_file: password}
`, proxy.URL))
	if err := os.WriteFile(passwordFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed, err := config.ForExporter.Parse(cfg, filepath.Join(dir, "config.yml"))
	if err != nil {
		t.Fatal(err)
	}
	s, logs := newMongosyncForTest(t, parsed.Exporter.Mongosync...)
	want := `
# HELP mongosync_up Whether the last read of the instance's /api/v1/progress succeeded (1) or not (0).
# TYPE mongosync_up gauge
mongosync_up{migration="orders",mongosync="right"} 1
mongosync_up{migration="orders",mongosync="untrusted"} 0
mongosync_up{migration="orders",mongosync="wrong-password"} 0
`
	if err := testutil.CollectAndCompare(collectorOf(s), strings.NewReader(want), "mongosync_up"); err != nil {
		t.Fatal(err)
	}
	for _, wantLog := range []string{"HTTP 401 Unauthorized", "certificate signed by unknown authority"} {
		if !strings.Contains(logs.String(), wantLog) {
			t.Errorf("log lacks %q:\n%s", wantLog, logs)
		}
	}
	if strings.Contains(logs.String(), "s3cret") || strings.Contains(logs.String(), "guess") {
		t.Errorf("a password reached the log:\n%s", logs)
	}
}

// A URL that came from the environment is logged as the configuration writes it: the
// environment may put in it what must not reach a log.
func TestMongosyncURLFromTheEnvironmentIsNotLogged(t *testing.T) {
	target := config.Mongosync{Migration: "m", Name: "env", URL: "http://" + freeAddress(t) + "/secret-path-token", URLShown: "${MONGOSYNC_URL}", Timeout: time.Second}
	s, logs := newMongosyncForTest(t, target)
	testutil.CollectAndCount(collectorOf(s))
	if text := logs.String(); strings.Contains(text, "secret-path-token") || !strings.Contains(text, "GET ${MONGOSYNC_URL}/api/v1/progress: dial tcp") {
		t.Errorf("log:\n%s", text)
	}
}
