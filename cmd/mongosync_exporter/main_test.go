package main

// These tests build the real binary and drive it as a user and Prometheus would: flags,
// config file, signals and HTTP.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/bcrypt"

	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/testsupport"
)

const testVersion = "9.9.9-test"

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mongosync_exporter-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, program)
	build := exec.Command("go", "build", "-o", binary,
		"-ldflags", "-X github.com/prometheus/common/version.Version="+testVersion+" -X github.com/prometheus/common/version.Revision=abc123", ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binary:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	writeConfig(t, good, "http://127.0.0.1:27182", "http://127.0.0.1:27183")
	code, stdout, _ := runBinary(t, "--config.check", "--config.file", good)
	if code != 0 || !strings.Contains(stdout, "is valid: 2 mongosync instance(s), 0 verifier(s)") {
		t.Fatalf("--config.check on a good file: exit %d, stdout %q", code, stdout)
	}

	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("exporter:\n  mongosync:\n    - name: a\n      url: http://h\n      timeout: soon\n"), 0o600)
	code, _, stderr := runBinary(t, "--config.check", "--config.file", bad)
	for _, want := range []string{
		bad + `:3: exporter.mongosync[0]: missing required key "migration"`,
		bad + `:5: exporter.mongosync[0].timeout: "soon" is not a duration`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("--config.check stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code != 1 {
		t.Errorf("--config.check on a bad file: exit %d, want 1", code)
	}

	if code, _, stderr := runBinary(t, "--config.check", "--config.file", filepath.Join(dir, "missing.yml")); code != 1 || !strings.Contains(stderr, "missing.yml") {
		t.Errorf("--config.check on a missing file: exit %d, stderr %q", code, stderr)
	}
}

// --config.check lists every problem of every stage at once (keys, types, required keys,
// connection strings as the driver reads them, files the HTTP client needs), each as
// file:line: key:, and reads the collector: section for its key names only.
func TestConfigCheckReportsEveryStage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yml")
	os.WriteFile(path, []byte(`exporter:
  mongosync:
    - migration: m
      name: a
      url: http://h
      tls_config: {ca_file: missing-ca.pem}
    - migration: m
      url: http://h
      timeout: soon
      timout: 5s
  verifiers:
    - name: v
      uri: mongodb://monitor:hunter2@h/?authMechanism=FOO
collector:
  store: {uri: "${OPLOG_STORE_URI_NOT_SET_HERE}"}
  sources: [{name: prod, uri: "${SOURCE_URI_NOT_SET_HERE}"}]
`), 0o600)
	code, _, stderr := runBinary(t, "--config.check", "--config.file", path)
	want := path + ` is not valid:
` + path + `:3: exporter.mongosync[0]: unable to read CA cert: unable to read file ` + filepath.Join(dir, "missing-ca.pem") + `: open ` + filepath.Join(dir, "missing-ca.pem") + `: no such file or directory
` + path + `:7: exporter.mongosync[1]: missing required key "name"
` + path + `:9: exporter.mongosync[1].timeout: "soon" is not a duration such as 5s, 1m30s, 12h or 30d
` + path + `:10: exporter.mongosync[1].timout: unknown key; did you mean "timeout"?
` + path + `:13: exporter.verifiers[0].uri: error parsing uri: invalid auth mechanism
`
	if code != 1 || stderr != want {
		t.Errorf("--config.check: exit %d, stderr:\n%s\nwant:\n%s", code, stderr, want)
	}
}

func TestProjectConfigChecks(t *testing.T) {
	if code, stdout, stderr := runBinary(t, "--config.check", "--config.file", "../../config.yml"); code != 0 {
		t.Fatalf("the project's config.yml fails --config.check: %s%s", stdout, stderr)
	}
}

func TestBadFlags(t *testing.T) {
	code, _, stderr := runBinary(t, "--no-such-flag")
	if code != 2 || !strings.Contains(stderr, "no-such-flag") {
		t.Fatalf("unknown flag: exit %d, stderr %q", code, stderr)
	}
	if code, stdout, _ := runBinary(t, "--version"); code != 0 || !strings.Contains(stdout, testVersion) {
		t.Fatalf("--version: exit %d, %q", code, stdout)
	}
	code, stdout, _ := runBinary(t, "-h")
	for _, flag := range []string{"--config.file", "--web.listen-address", "--web.config.file", "--web.telemetry-path", "--log.level",
		"--log.format", "--timeout-offset", "--[no-]collect.mongosync", "--[no-]collect.verifier", "--[no-]collect.collector_heartbeat"} {
		if !strings.Contains(stdout, flag) {
			t.Errorf("-h does not list %s", flag)
		}
	}
	if code != 0 {
		t.Errorf("-h exit %d", code)
	}
}

// seedMetadata writes a verifier's metadata and a collector heartbeat, shaped as the
// reference documents describe them, into the MongoDB at uri.
func seedMetadata(t *testing.T, uri string) {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	insert := func(db, coll string, docs ...any) {
		if _, err := client.Database(db).Collection(coll).InsertMany(t.Context(), docs); err != nil {
			t.Fatal(err)
		}
	}
	verifier := "__mdb_internal_migration_verifier"
	insert(verifier, "generation", bson.D{{Key: "generation", Value: int32(1)}, {Key: "metadataversion", Value: int32(7)}})
	insert(verifier, "verification_tasks",
		bson.D{{Key: "type", Value: "primary"}, {Key: "status", Value: "completed"}},
		bson.D{{Key: "type", Value: "verifyCollection"}, {Key: "status", Value: "completed"}, {Key: "generation", Value: int32(0)},
			{Key: "query_filter", Value: bson.D{{Key: "namespace", Value: "shop.orders"}}}, {Key: "documents_count", Value: int64(10)}, {Key: "source_bytes_count", Value: int64(999)}},
		bson.D{{Key: "type", Value: "verifyDocuments"}, {Key: "status", Value: "failed"}, {Key: "generation", Value: int32(0)},
			{Key: "query_filter", Value: bson.D{{Key: "namespace", Value: "shop.orders"}}}, {Key: "found_source_documents_count", Value: int64(10)}, {Key: "source_bytes_count", Value: int64(999)}},
		bson.D{{Key: "type", Value: "verifyDocuments"}, {Key: "status", Value: "processing"}, {Key: "generation", Value: int32(1)},
			{Key: "query_filter", Value: bson.D{{Key: "namespace", Value: "shop.orders"}}}, {Key: "documents_count", Value: int64(1)}, {Key: "begin_time", Value: bson.NewDateTimeFromTime(time.Now())}})
	insert(verifier, "mismatches", bson.D{{Key: "generation", Value: int32(0)}, {Key: "taskType", Value: "verifyDocuments"},
		{Key: "detail", Value: bson.D{{Key: "id", Value: 1}, {Key: "field", Value: ""}, {Key: "details", Value: "Missing"}, {Key: "cluster", Value: "dstClient"}}}})
	insert(verifier, "changeReader", bson.D{{Key: "_id", Value: "srcResumeToken"}, {Key: "eventCounts", Value: bson.D{{Key: "insert", Value: int64(5)}}}})
	insert("oplog_manager_orchestrator_db", "source_clusters_info", bson.D{{Key: "_id", Value: "u1"}, {Key: "name", Value: "prod"},
		{Key: "collector_status", Value: bson.D{{Key: "status", Value: "running"}, {Key: "last_collector_reported_utc", Value: "2025-06-02T10:00:00+00:00"},
			{Key: "last_oplog_time_utc", Value: "2025-06-02T09:59:58+00:00"}, {Key: "first_oplog_time_utc", Value: "2025-06-01T08:00:05+00:00"}, {Key: "error_message", Value: nil}}}})
}

// A full scrape with all three kinds of source, checked by promtool.
func TestServesMetrics(t *testing.T) {
	standIn := mongosyncStandIn(t, "v1.22-full.json")
	uri := mongotest.URI(t)
	seedMetadata(t, uri)
	cfg := filepath.Join(t.TempDir(), "config.yml")
	writeConfig(t, cfg, standIn.URL)
	t.Setenv("TEST_METADATA_URI", uri)
	extra := "  verifiers:\n    - name: orders-verify\n      migration: orders\n      uri: ${TEST_METADATA_URI}\n  collector_metadata:\n    - name: central\n      uri: ${TEST_METADATA_URI}\n"
	appendFile(t, cfg, extra)
	p := start(t, "--config.file", cfg)
	body := p.metrics(t)
	for _, want := range []string{
		`migration_verifier_up{migration="orders",verifier="orders-verify"} 1`,
		`migration_verifier_phase{migration="orders",phase="recheck",verifier="orders-verify"} 1`,
		`migration_verifier_mismatches{kind="missing_on_destination",migration="orders",verifier="orders-verify"} 1`,
		`oplog_collector_metadata_up{metadata="central"} 1`,
		`oplog_collector_status{metadata="central",source_cluster="prod",status="running"} 1`,
		`mongosync_exporter_collector_success{collector="verifier"} 1`,
		`mongosync_exporter_collector_success{collector="collector_heartbeat"} 1`,
		`mongosync_up{migration="orders",mongosync="shard0"} 1`,
		`mongosync_lag_seconds{migration="orders",mongosync="shard0"} 125`,
		`mongosync_exporter_collector_success{collector="mongosync"} 1`,
		`mongosync_exporter_config_last_reload_successful 1`,
		`mongosync_exporter_build_info{`,
		`version="` + testVersion + `"`,
		`revision="abc123"`,
		`process_cpu_seconds_total`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	testsupport.CheckMetrics(t, body)

	code, landing := httpGet(t, p.url+"/")
	if code != http.StatusOK || !strings.Contains(landing, program) || !strings.Contains(landing, `href="/metrics"`) {
		t.Errorf("landing page: %d\n%s", code, landing)
	}
}

func TestReloadBySignalAndHTTP(t *testing.T) {
	first := mongosyncStandIn(t, "v1.22-full.json")
	second := mongosyncStandIn(t, "shard1.json")
	cfg := filepath.Join(t.TempDir(), "config.yml")
	writeConfig(t, cfg, first.URL)
	p := start(t, "--config.file", cfg)
	p.waitFor(t, `mongosync_up{migration="orders",mongosync="shard0"} 1`)

	writeConfig(t, cfg, first.URL, second.URL)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, `mongosync_up{migration="orders",mongosync="shard1"} 1`)

	os.WriteFile(cfg, []byte("exporter:\n  mongosync: oops\n"), 0o600)
	resp, err := http.Post(p.url+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(msg), "expected a list") {
		t.Fatalf("POST /-/reload with a bad file: %d %s", resp.StatusCode, msg)
	}
	body := p.metrics(t)
	for _, want := range []string{
		"mongosync_exporter_config_last_reload_successful 0",
		`mongosync_up{migration="orders",mongosync="shard0"} 1`,
		`mongosync_up{migration="orders",mongosync="shard1"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("after a failed reload /metrics lacks %q", want)
		}
	}
}

func TestNoCollectFlag(t *testing.T) {
	standIn := mongosyncStandIn(t, "v1.22-full.json")
	cfg := filepath.Join(t.TempDir(), "config.yml")
	writeConfig(t, cfg, standIn.URL)
	p := start(t, "--config.file", cfg, "--no-collect.mongosync")
	if body := p.metrics(t); strings.Contains(body, "mongosync_up") {
		t.Fatal("--no-collect.mongosync still scraped mongosync")
	}
}

// --web.config.file is exporter-toolkit's: basic auth with a bcrypt hash here.
func TestWebConfigBasicAuth(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	writeConfig(t, cfg)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := filepath.Join(dir, "web.yml")
	os.WriteFile(webCfg, []byte("basic_auth_users:\n  prometheus: "+string(hash)+"\n"), 0o600)
	p := start(t, "--config.file", cfg, "--web.config.file", webCfg, "--web.telemetry-path", "/custom")

	if code, _ := httpGet(t, p.url+"/custom"); code != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d, want 401", code)
	}
	req, _ := http.NewRequest(http.MethodGet, p.url+"/custom", nil)
	req.SetBasicAuth("prometheus", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "mongosync_exporter_build_info") {
		t.Fatalf("with credentials on /custom: %d\n%s", resp.StatusCode, body)
	}
}

func TestJSONLogFormatAndStartupFailure(t *testing.T) {
	code, _, stderr := runBinary(t, "--config.file", filepath.Join(t.TempDir(), "absent.yml"), "--log.format", "json", "--web.listen-address", "127.0.0.1:0")
	if code != 1 {
		t.Fatalf("start with a missing config: exit %d, want 1", code)
	}
	if !strings.Contains(stderr, `"level":"error"`) || !strings.Contains(stderr, "absent.yml") {
		t.Fatalf("expected a JSON error log naming the file, got:\n%s", stderr)
	}
}

// --help names everything the exporter reads, not only mongosync.
func TestHelpNamesEverySource(t *testing.T) {
	code, stdout, stderr := runBinary(t, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d\n%s", code, stderr)
	}
	intro, _, _ := strings.Cut(stdout, "Flags:")
	intro = strings.Join(strings.Fields(intro), " ") // kingpin wraps the text
	for _, source := range []string{"mongosync's progress API", "migration-verifier's metadata database", "oplog collectors' heartbeats"} {
		if !strings.Contains(intro, source) {
			t.Errorf("--help does not name %q:\n%s", source, intro)
		}
	}
}

// /-/ready answers 200 once the config is loaded and the exporter serves; the landing
// page links it.
func TestReady(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yml")
	writeConfig(t, cfg, "http://127.0.0.1:1")
	p := start(t, "--config.file", cfg)
	if code, body := httpGet(t, p.url+"/-/ready"); code != http.StatusOK || strings.TrimSpace(body) != "Ready" {
		t.Errorf("GET /-/ready: %d %q", code, body)
	}
	if _, landing := httpGet(t, p.url+"/"); !strings.Contains(landing, `href="/-/ready"`) {
		t.Errorf("the landing page does not link /-/ready:\n%s", landing)
	}
}
