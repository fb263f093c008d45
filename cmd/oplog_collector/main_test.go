package main

// These tests build the real binary and a real mongotestd process and drive them as a
// user would: config checks, signals, the CLI, and SIGKILL at random moments.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mongomigrate/observability/internal/testsupport"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/bcrypt"
)

var binary, mongotestd string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oplog_collector-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, program)
	mongotestd = filepath.Join(dir, "mongotestd")
	for out, pkg := range map[string]string{binary: ".", mongotestd: "../../internal/mongotest/cmd/mongotestd"} {
		build := exec.Command("go", "build", "-o", out, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startMongotestd runs the test MongoDB server as its own process.
func startMongotestd(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(mongotestd, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	uri, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("mongotestd printed no URI: %v", err)
	}
	return strings.TrimSpace(uri)
}

func writeCollectorConfig(t *testing.T, uri string, sources ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "collector:\n  store: {uri: %q}\n  metadata: {uri: %q}\n", uri, uri)
	// A short lease: a collector restarted after a SIGKILL waits for its predecessor's
	// lease to expire before it captures again.
	b.WriteString("  heartbeat_interval: 200ms\n  checkpoint_interval: 50ms\n  max_backoff: 200ms\n  lease_ttl: 1s\n  batch: {max_events: 100, max_wait: 20ms}\n  sources:\n")
	for _, s := range sources {
		fmt.Fprintf(&b, "    - {name: %s, uri: %q, database: %s}\n", s, uri, s)
	}
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// daemon is a running oplog_collector.
type daemon struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

var listeningOn = regexp.MustCompile(`msg="?Listening on"? .*address=(\S+)`)

func startDaemon(t *testing.T, configFile string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--config.file", configFile, "--web.listen-address=127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, logs: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	address := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			d.mu.Lock()
			d.logs.WriteString(scanner.Text() + "\n")
			d.mu.Unlock()
			if m := listeningOn.FindStringSubmatch(scanner.Text()); m != nil {
				address <- m[1]
			}
		}
		_ = cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-d.done })
	select {
	case a := <-address:
		d.url = "http://" + a
	case <-d.done:
		t.Fatalf("oplog_collector exited before listening:\n%s", d.log())
	case <-time.After(time.Minute): // against hanging only
		t.Fatalf("oplog_collector did not start listening:\n%s", d.log())
	}
	return d
}

func (d *daemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// stop sends sig and waits for the exit; it returns the exit code.
func (d *daemon) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(time.Minute): // against hanging only
		t.Fatalf("oplog_collector did not exit on %v:\n%s", sig, d.log())
	}
	return d.cmd.ProcessState.ExitCode()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute) // against hanging only
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// storedInserts returns the documentKey ids of the stored inserts, in source order.
func storedInserts(t *testing.T, client *mongo.Client, source string) []int32 {
	t.Helper()
	cursor, err := client.Database("oplog_backup_db").Collection("oplogs_"+source).Find(t.Context(),
		bson.D{{Key: "op_type", Value: "insert"}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.Raw
	if err := cursor.All(t.Context(), &docs); err != nil {
		t.Fatal(err)
	}
	ids := make([]int32, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.Lookup("doc_key", "_id").Int32())
	}
	return ids
}

// storedCount is how many documents a source's store holds.
func storedCount(t *testing.T, client *mongo.Client, source string) int64 {
	t.Helper()
	n, err := client.Database("oplog_backup_db").Collection("oplogs_"+source).CountDocuments(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func tokenSaved(t *testing.T, client *mongo.Client, source string) bool {
	return client.Database("oplog_backup_db").Collection("resume_tokens_for_"+source).FindOne(t.Context(), bson.D{}).Err() == nil
}

func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return runCLIWithInput(t, "", args...)
}

// runCLIWithInput runs the binary with input on its standard input, as a user typing.
func runCLIWithInput(t *testing.T, input string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func TestConfigCheck(t *testing.T) {
	good := writeCollectorConfig(t, "mongodb://127.0.0.1:1", "a", "b")
	if code, out := runCLI(t, "--config.check", "--config.file", good); code != 0 || !strings.Contains(out, "is valid: 2 source(s)") {
		t.Fatalf("--config.check on a good file: %d %s", code, out)
	}
	empty := filepath.Join(t.TempDir(), "empty.yml")
	os.WriteFile(empty, []byte("exporter: {}\n"), 0o600)
	if code, out := runCLI(t, "--config.check", "--config.file", empty); code != 1 || !strings.Contains(out, "collector: no sources to capture") {
		t.Fatalf("--config.check without sources: %d %s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("collector:\n  store: {uri: mongodb://h}\n  sources:\n    - {name: a, uri: mongodb://h, full_document: yes}\n"), 0o600)
	if code, out := runCLI(t, "--config.check", "--config.file", bad); code != 1 || !strings.Contains(out, bad+":4: collector.sources[0].full_document") {
		t.Fatalf("--config.check on a bad file: %d %s", code, out)
	}
}

// A running daemon: its metrics pass promtool, status shows each source, reset and
// deregister work through its admin API for an authenticated user, SIGTERM stops it
// cleanly and reports stopped, and with no daemon the store can be reset offline.
func TestDaemonLifecycle(t *testing.T) {
	uri := startMongotestd(t)
	client := testsupport.Connect(t, uri)
	cfg := writeCollectorConfig(t, uri, "alpha", "beta")
	auth := writeAuth(t)
	d := startDaemon(t, cfg, "--web.enable-admin-api", "--web.config.file", auth.web)
	eventually(t, "both sources' first tokens", func() bool { return tokenSaved(t, client, "alpha") && tokenSaved(t, client, "beta") })
	for i := range 5 {
		for _, db := range []string{"alpha", "beta"} {
			if _, err := client.Database(db).Collection("c").InsertOne(t.Context(), bson.D{{Key: "_id", Value: i}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, "5 events of each", func() bool {
		return len(storedInserts(t, client, "alpha")) == 5 && len(storedInserts(t, client, "beta")) == 5
	})

	body := auth.get(t, d.url+"/metrics")
	for _, want := range []string{
		`oplog_capture_state{source_cluster="alpha",state="running"} 1`,
		`oplog_capture_events_total{op_type="insert",source_cluster="beta"} 5`,
		`oplog_capture_build_info{`,
		`oplog_capture_config_last_reload_successful 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	testsupport.CheckMetrics(t, body)

	cli := []string{"--collector.url", d.url, "--http.config.file", auth.client}
	code, out := runCLI(t, append([]string{"status"}, cli...)...)
	if code != 0 || !regexp.MustCompile(`(?m)^alpha\s+running\s`).MatchString(out) || !regexp.MustCompile(`(?m)^beta\s+running\s`).MatchString(out) {
		t.Fatalf("status: %d\n%s", code, out)
	}

	wipeThroughTheAPI(t, d, client, cli)

	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, d.log())
	}
	raw, err := client.Database("oplog_manager_orchestrator_db").Collection("source_clusters_info").FindOne(t.Context(), bson.D{{Key: "name", Value: "alpha"}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if s := raw.Lookup("collector_status", "status").StringValue(); s != "stopped" {
		t.Errorf("after SIGTERM the heartbeat says %q, want stopped", s)
	}
	if pid := raw.Lookup("collector_status", "pid"); pid.Type != bson.TypeNull {
		t.Errorf("a stopped collector keeps its pid: %s", pid)
	}

	resetOffline(t, client, cfg, cli)
}

// wipeThroughTheAPI resets alpha and deregisters beta through the admin API of d, each
// logged with who asked and how much went; a reset of an unknown source is a 404.
func wipeThroughTheAPI(t *testing.T, d *daemon, client *mongo.Client, cli []string) {
	t.Helper()
	stored := storedCount(t, client, "alpha") // the inserts and the collection's create event
	if code, out := runCLIWithInput(t, "alpha\n", append([]string{"reset", "--source", "alpha"}, cli...)...); code != 0 ||
		!strings.Contains(out, fmt.Sprintf("about %d stored events", stored)) ||
		!strings.Contains(out, fmt.Sprintf("reset alpha: done by the collector at %s; %d events deleted", d.url, stored)) {
		t.Fatalf("reset: %d %s", code, out)
	}
	if n := len(storedInserts(t, client, "alpha")); n != 0 {
		t.Fatalf("reset kept %d events", n)
	}
	if n := len(storedInserts(t, client, "beta")); n != 5 {
		t.Fatalf("resetting alpha changed beta (%d events)", n)
	}
	if !regexp.MustCompile(`msg="Source's captured history wiped" action=reset source_cluster=alpha user=admin remote_addr=127\.0\.0\.1:\d+ via=api events_deleted=` + fmt.Sprint(stored)).MatchString(d.log()) {
		t.Errorf("the wipe is not logged with who, from where and how much:\n%s", d.log())
	}
	if code, out := runCLI(t, append([]string{"reset", "--yes", "--source", "nope"}, cli...)...); code != 1 || !strings.Contains(out, "404") {
		t.Fatalf("reset of an unknown source: %d %s", code, out)
	}
	if code, out := runCLI(t, append([]string{"deregister", "--yes", "--source", "beta"}, cli...)...); code != 0 || !strings.Contains(out, "Remove beta from") {
		t.Fatalf("deregister: %d %s", code, out)
	}
	if n := len(storedInserts(t, client, "beta")); n != 0 {
		t.Fatalf("deregister kept %d events", n)
	}
	if !regexp.MustCompile(`msg="Source's captured history wiped" action=deregister source_cluster=beta user=admin .*events_deleted=\d+`).MatchString(d.log()) {
		t.Errorf("the de-registration's wipe is not logged:\n%s", d.log())
	}
}

// resetOffline resets alpha in the store directly, with no collector running: refused
// without --offline, and unless confirmed.
func resetOffline(t *testing.T, client *mongo.Client, cfg string, cli []string) {
	t.Helper()
	if code, out := runCLI(t, append([]string{"reset", "--yes", "--source", "alpha", "--config.file", cfg}, cli...)...); code != 1 || !strings.Contains(out, "--offline") {
		t.Fatalf("reset with no daemon and no --offline: %d %s", code, out)
	}
	if !tokenSaved(t, client, "alpha") {
		t.Fatal("a reset that no collector answered wiped the store")
	}
	if code, out := runCLIWithInput(t, "no\n", "reset", "--offline", "--source", "alpha", "--config.file", cfg); code != 1 || !strings.Contains(out, "not confirmed") || !tokenSaved(t, client, "alpha") {
		t.Fatalf("offline reset not confirmed: %d %s", code, out)
	}
	if code, out := runCLI(t, "reset", "--offline", "--yes", "--source", "alpha", "--config.file", cfg); code != 0 || !strings.Contains(out, "done in the store directly") {
		t.Fatalf("offline reset: %d %s", code, out)
	}
	if tokenSaved(t, client, "alpha") {
		t.Fatal("offline reset kept the token")
	}
}

// SIGKILL at random moments while a writer produces a known sequence: after every
// restart the collector resumes from its saved token; in the end the store holds every
// event exactly once, in source order.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a full run (-short was given): it builds the collector and mongotestd and SIGKILLs the collector 20 times, too slow for -short; run go test without -short")
	}
	uri := startMongotestd(t)
	client := testsupport.Connect(t, uri)
	cfg := writeCollectorConfig(t, uri, "crash")
	d := startDaemon(t, cfg)
	eventually(t, "the first token", func() bool { return tokenSaved(t, client, "crash") })

	const total = 3000
	written := make(chan error, 1)
	go func() {
		coll := client.Database("crash").Collection("c")
		for i := range total {
			if _, err := coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: i}}); err != nil {
				written <- err
				return
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // a steady stream rather than one burst
			}
		}
		written <- nil
	}()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("kill schedule seed %d", seed)
	kills := 0
	for writing := true; writing || kills < 20; kills++ {
		time.Sleep(time.Duration(20+rng.IntN(200)) * time.Millisecond)
		d.stop(t, syscall.SIGKILL)
		d = startDaemon(t, cfg)
		select {
		case err := <-written:
			if err != nil {
				t.Fatal(err)
			}
			writing = false
		default:
		}
	}
	deadline := time.Now().Add(2 * time.Minute) // against hanging only
	for len(storedInserts(t, client, "crash")) < total {
		if time.Now().After(deadline) {
			status := ""
			if resp, err := http.Get(d.url + "/api/v1/sources"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				status = string(b)
			}
			t.Fatalf("after %d kills the store holds %d of %d events; collector status %s\n%s", kills, len(storedInserts(t, client, "crash")), total, status, lastLines(d.log(), 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := make([]int32, total)
	for i := range want {
		want[i] = int32(i)
	}
	if got := storedInserts(t, client, "crash"); !slices.Equal(got, want) {
		t.Fatalf("after %d kills the store holds %d inserts, not 0..%d once each in order", kills, len(got), total-1)
	}
	t.Logf("%d events stored exactly once across %d SIGKILLs", total, kills)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// auth is a web config with a basic-auth user and the HTTP client config that logs in
// as that user.
type auth struct {
	web, client string
}

func writeAuth(t *testing.T) auth {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a := auth{web: filepath.Join(dir, "web.yml"), client: filepath.Join(dir, "http.yml")}
	if err := os.WriteFile(a.web, []byte("basic_auth_users:\n  admin: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.client, []byte("basic_auth:\n  username: admin\n  password: s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

// get reads url as the authenticated user.
func (a auth) get(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
	return string(body)
}

// SIGTERM while the store hangs: the collector exits 0 within its grace period instead
// of waiting on the store, says what it left unwritten, and loses nothing: the next
// start reads those events again from the source.
func TestSIGTERMWithAHungStore(t *testing.T) {
	uri := startMongotestd(t)
	client := testsupport.Connect(t, uri)
	cfg := writeCollectorConfig(t, uri, "frozen")
	d := startDaemon(t, cfg, "--shutdown.grace-period=2s")
	eventually(t, "the first token", func() bool { return tokenSaved(t, client, "frozen") })
	insert := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := client.Database("frozen").Collection("c").InsertOne(t.Context(), bson.D{{Key: "_id", Value: i}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(0, 5)
	eventually(t, "5 events", func() bool { return len(storedInserts(t, client, "frozen")) == 5 })
	if err := client.Database("admin").RunCommand(t.Context(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "blockConnection", Value: true},
			{Key: "blockTimeMS", Value: 120000}, {Key: "appName", Value: "oplog_collector store"}}},
	}).Err(); err != nil {
		t.Fatal(err)
	}
	insert(5, 10)
	eventually(t, "the store write to hang", func() bool {
		return strings.Contains(d.log(), "state=store_unavailable")
	})
	start := time.Now()
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM with a hung store: exit %d\n%s", code, d.log())
	}
	t.Logf("SIGTERM to exit with the store hung and a 2s grace period: %v", time.Since(start).Round(10*time.Millisecond))
	if !strings.Contains(d.log(), "Stopped before every event read was written") {
		t.Errorf("the collector does not say what it left unwritten:\n%s", lastLines(d.log(), 10))
	}
	if err := client.Database("admin").RunCommand(t.Context(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"},
	}).Err(); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, cfg)
	eventually(t, "the 10 events after a restart", func() bool { return len(storedInserts(t, client, "frozen")) >= 10 })
	if got := storedInserts(t, client, "frozen"); !slices.Equal(got, []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("after the restart the store holds %v", got)
	}
}
