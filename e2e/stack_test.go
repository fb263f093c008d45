package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mongomigrate/observability/internal/testsupport"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/crypto/bcrypt"
)

const (
	// mongotestd keeps this many change events for resuming change streams. The
	// resume-token fault writes more than this while the collector is stopped; the
	// steady load (a few tens of events a second, the collector's own store writes
	// included) stays far below it between two reads of the collector, and during the
	// seconds the collector-killed fault keeps it down, and until that fault the set's
	// initiation stays its oplog's first entry (the source's resume headroom is days).
	mongoHistory = 20000
	// writeEvery paces the steady write load on the captured source.
	writeEvery = 100 * time.Millisecond
	// waitTimeout bounds every wait on the stack (start-up, scrapes, rule evaluation,
	// notification). Only a hang reaches it: the waits usually end in seconds.
	waitTimeout = 90 * time.Second
	sourceName  = "app" // the collector's source: the source_cluster label
	migration   = "orders"
)

// stack is everything the test runs. Processes belong to the top-level test (owner), so
// a restart inside a subtest outlives that subtest.
type stack struct {
	owner *testing.T
	dir   string
	bin   map[string]string // program name -> built binary

	mongoURI string
	client   *mongo.Client
	writer   *writer

	mongosync *mongosyncStandIn
	verifier  *verifierAPIStandIn
	webhook   *webhook

	configFile   string
	exporter     *process
	exporterAddr string
	exporterRuns int
	// verifierMigration: the exporter takes exporter.verifiers[].migration, so the
	// rechecking verifier is labelled with the migration and counts for its cutover.
	verifierMigration bool
	collector         *process
	collectorAddr     string
	collectorRuns     int
	// collectorLogin is the one user of the collector's web config: its admin API is
	// on, so everything it serves, /metrics included, needs a login.
	collectorLogin *login
	// headroom is the collector's second source, a sharded cluster (headroom_test.go).
	headroom *shardedSource

	alertmanager     *process
	alertmanagerAddr string
	prometheus       *process
	prom             promAPI
	alertRules       []alertRule
}

// requireTools returns the paths of the Prometheus programs the test runs: fatal in CI
// (.ci/run installs them), a skip naming the Debian packages elsewhere.
func requireTools(t *testing.T) map[string]string {
	t.Helper()
	tools := map[string]string{}
	for _, tool := range []struct{ name, pkg string }{
		{"prometheus", "prometheus"}, {"promtool", "prometheus"}, {"prometheus-alertmanager", "prometheus-alertmanager"},
	} {
		tools[tool.name] = testsupport.Tool(t, tool.name, tool.pkg, "the end-to-end test")
	}
	return tools
}

// build compiles the two binaries and mongotestd into dir.
func build(t *testing.T, dir string) map[string]string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building the binaries needs the go command: %v", err)
	}
	pkgs := map[string]string{
		"mongosync_exporter": "./cmd/mongosync_exporter",
		"oplog_collector":    "./cmd/oplog_collector",
		"mongotestd":         "./internal/mongotest/cmd/mongotestd",
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	bins := map[string]string{}
	for name, pkg := range pkgs {
		args = append(args, pkg)
		bins[name] = filepath.Join(dir, name)
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bins
}

func startStack(t *testing.T, tools map[string]string) *stack {
	s := &stack{owner: t, dir: t.TempDir()}
	s.bin = build(t, s.dir)
	ctx := t.Context()

	// The MongoDB server: the verifier's metadata, the collectors' heartbeats, the
	// captured source and the oplog store, all in one. Its replica set was initiated
	// days ago, as a set in service is, so the source's resume headroom is days until
	// the resume-token fault's burst truncates its history.
	s.mongoURI = s.startMongotestd(t, "mongotestd", fmt.Sprint("--history=", mongoHistory), "--initiated-ago=72h", "--ttl-interval=1s")
	s.client = testsupport.Connect(t, s.mongoURI)
	s.headroom = s.startShardedSource(t)

	now := time.Now()
	for what, seed := range map[string]func(context.Context, *mongo.Client, time.Time) error{
		"verifier in its initial check": seedInitialCheck,
		"verifier rechecking":           seedRecheck,
		"old collector's heartbeat":     legacyHeartbeat,
	} {
		if err := seed(ctx, s.client, now); err != nil {
			t.Fatalf("seeding the %s: %v", what, err)
		}
	}
	s.writer = startWriter(s.client, writeEvery)
	t.Cleanup(s.writer.stop)
	t.Cleanup(startVerifierProgress(s.client, time.Second))

	s.mongosync = newMongosyncStandIn(t, map[string]string{"shard0": "v1.22-full.json", "shard1": "shard1.json"}, 5)
	s.verifier = newVerifierAPIStandIn(t)
	s.webhook = newWebhook(t)

	s.verifierMigration = s.acceptsVerifierMigration(t)
	s.configFile = filepath.Join(s.dir, "config.yml")
	if err := os.WriteFile(s.configFile, []byte(s.config()), 0o644); err != nil {
		t.Fatal(err)
	}
	s.startExporter(t, "127.0.0.1:0")
	s.collectorLogin = newLogin(t, s.dir)
	s.startCollector(t, "127.0.0.1:0")

	// Alertmanager, then Prometheus pointed at it.
	amConfig, err := alertmanagerConfig(s.webhook.url())
	if err != nil {
		t.Fatal(err)
	}
	amFile := filepath.Join(s.dir, "alertmanager.yml")
	if err := os.WriteFile(amFile, amConfig, 0o644); err != nil {
		t.Fatal(err)
	}
	s.alertmanager, err = startProcess(t, "alertmanager", tools["prometheus-alertmanager"],
		"--config.file="+amFile, "--storage.path="+filepath.Join(s.dir, "alertmanager-data"),
		"--web.listen-address=127.0.0.1:0", "--cluster.listen-address=")
	if err != nil {
		t.Fatal(err)
	}
	s.alertmanagerAddr = s.alertmanager.address(t)

	alerts, rules, err := writeCompressedAlerts(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	s.alertRules = rules
	recording, err := filepath.Abs(recordingFile)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tools["promtool"], "check", "rules", alerts, recording).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the time-compressed rules: %v\n%s", err, out)
	}
	promConfig, err := prometheusConfig(s.exporterAddr, s.collectorAddr, s.collectorLogin, s.alertmanagerAddr, alerts, recording)
	if err != nil {
		t.Fatal(err)
	}
	promFile := filepath.Join(s.dir, "prometheus.yml")
	if err := os.WriteFile(promFile, promConfig, 0o644); err != nil {
		t.Fatal(err)
	}
	s.prometheus, err = startProcess(t, "prometheus", tools["prometheus"],
		"--config.file="+promFile, "--storage.tsdb.path="+filepath.Join(s.dir, "prometheus-data"),
		"--web.listen-address=127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.prom = promAPI{base: "http://" + s.prometheus.address(t)}
	return s
}

// startMongotestd runs the test MongoDB server with args and returns its URI.
func (s *stack) startMongotestd(t *testing.T, name string, args ...string) string {
	t.Helper()
	p, err := startProcess(t, name, s.bin["mongotestd"], append([]string{"--port", "0", "--noop-interval=1s"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var uri string
	eventually(t, time.Minute, name+" to print its URI", func() (bool, string) {
		if line, _, ok := strings.Cut(p.stdout.String(), "\n"); ok {
			uri = strings.TrimSpace(line)
			return true, ""
		}
		if p.exited() {
			t.Fatalf("%s exited: %v\n%s", name, p.waitErr, p.stderr)
		}
		return false, "nothing printed yet"
	})
	return uri
}

// config is the one config.yml both binaries read.
func (s *stack) config() string {
	return fmt.Sprintf(`exporter:
  mongosync:
    - {migration: %[1]s, name: shard0, url: %[2]q, timeout: 2s}
    - {migration: %[1]s, name: shard1, url: %[3]q, timeout: 2s}
  verifiers:
    # metadata database detected (the default name)
    - {name: initial, uri: %[4]q, namespace_refresh_interval: 1s}
    - {name: recheck, uri: %[4]q, database: %[5]s, api_url: %[6]q, namespace_refresh_interval: 1s%[11]s}
  collector_metadata:
    - {name: central, uri: %[4]q, database: %[7]s, collection: %[8]s}
collector:
  store: {uri: %[4]q, database: oplog_backup_db}
  metadata: {uri: %[4]q, database: %[7]s, collection: %[8]s}
  heartbeat_interval: 1s
  checkpoint_interval: 500ms
  max_backoff: 500ms
  retention: 720h
  lease_ttl: 1s
  batch: {max_events: 100, max_wait: 100ms}
  sources:
    - {name: %[9]s, uri: %[4]q, database: %[10]s}
    - {name: %[12]s, uri: %[13]q, database: ""}
`, migration, s.mongosync.url("shard0"), s.mongosync.url("shard1"), s.mongoURI, verifierRecheckDB,
		s.verifier.srv.URL, heartbeatDB, heartbeatColl, sourceName, sourceDB, s.recheckMigration(), shardedName, s.headroom.mongosURI)
}

// recheckMigration is the rechecking verifier's migration key, when the exporter has it.
func (s *stack) recheckMigration() string {
	if !s.verifierMigration {
		return ""
	}
	return ", migration: " + migration
}

// acceptsVerifierMigration asks the exporter (--config.check) whether its config takes
// exporter.verifiers[].migration.
func (s *stack) acceptsVerifierMigration(t *testing.T) bool {
	t.Helper()
	probe := filepath.Join(s.dir, "probe.yml")
	if err := os.WriteFile(probe, []byte("exporter:\n  verifiers:\n    - {name: v, uri: \"mongodb://127.0.0.1:1\", migration: m}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return exec.Command(s.bin["mongosync_exporter"], "--config.check", "--config.file="+probe).Run() == nil
}

// startExporter starts mongosync_exporter listening on addr; the first start takes any
// free port (127.0.0.1:0), restarts take the same one, which Prometheus scrapes.
func (s *stack) startExporter(t *testing.T, addr string) {
	t.Helper()
	s.exporterRuns++
	p, err := startProcess(s.owner, fmt.Sprintf("mongosync_exporter#%d", s.exporterRuns), s.bin["mongosync_exporter"],
		"--config.file="+s.configFile, "--web.listen-address="+addr)
	if err != nil {
		t.Fatal(err)
	}
	s.exporter = p
	s.exporterAddr = p.address(t)
}

// startCollector starts oplog_collector listening on addr; the first start takes any
// free port (127.0.0.1:0), restarts take the same one, which Prometheus scrapes.
func (s *stack) startCollector(t *testing.T, addr string) {
	t.Helper()
	s.collectorRuns++
	p, err := startProcess(s.owner, fmt.Sprintf("oplog_collector#%d", s.collectorRuns), s.bin["oplog_collector"],
		"run", "--config.file="+s.configFile, "--web.listen-address="+addr,
		"--web.enable-admin-api", "--web.config.file="+s.collectorLogin.webConfig)
	if err != nil {
		t.Fatal(err)
	}
	s.collector = p
	s.collectorAddr = p.address(t)
}

// scrape returns the text of a binary's /metrics, logged in as as when it is not nil.
func scrape(ctx context.Context, addr string, as *login) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	if as != nil {
		req.SetBasicAuth(as.user, as.password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return string(body), nil
}

// metricValue finds the value of one series in a /metrics text (exact series text).
func metricValue(text, series string) (string, bool) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// collectorState waits until the collector's own /metrics says source is in state.
func (s *stack) awaitCollectorState(t *testing.T, state string) {
	t.Helper()
	series := fmt.Sprintf(`oplog_capture_state{source_cluster=%q,state=%q}`, sourceName, state)
	eventually(t, waitTimeout, "the collector to report "+series+" 1", func() (bool, string) {
		if s.collector.exited() {
			t.Fatalf("oplog_collector exited: %v", s.collector.waitErr)
		}
		text, err := scrape(context.Background(), s.collectorAddr, s.collectorLogin)
		if err != nil {
			return false, err.Error()
		}
		v, _ := metricValue(text, series)
		if v == "1" {
			return true, ""
		}
		var states []string
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "oplog_capture_state{") && strings.HasSuffix(line, " 1") {
				states = append(states, line)
			}
		}
		return false, fmt.Sprintf("current: %v", states)
	})
}

// login is a basic-auth user: the web config that accepts it (exporter-toolkit's, with
// a bcrypt hash) and the HTTP client config that logs in as it (for the CLI).
type login struct {
	user, password        string
	webConfig, httpConfig string
}

func newLogin(t *testing.T, dir string) *login {
	t.Helper()
	l := &login{user: "admin", password: "e2e-secret",
		webConfig: filepath.Join(dir, "collector-web.yml"), httpConfig: filepath.Join(dir, "collector-client.yml")}
	hash, err := bcrypt.GenerateFromPassword([]byte(l.password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for file, text := range map[string]string{
		l.webConfig:  "basic_auth_users:\n  " + l.user + ": " + string(hash) + "\n",
		l.httpConfig: "basic_auth:\n  username: " + l.user + "\n  password: " + l.password + "\n",
	} {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return l
}
