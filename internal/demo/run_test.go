package demo

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mongomigrate/observability/internal/testsupport"
)

// run is one Run of the demo in a test, on a machine without Prometheus (PATH holds
// neither it nor Alertmanager).
type run struct {
	out                      *testsupport.LogBuffer
	cancel                   context.CancelFunc
	done                     chan error
	exporter, collector, dir string
}

// startRun runs the demo with the daemons in bin until it says it is live.
func startRun(t *testing.T, bin string) *run {
	t.Helper()
	r := &run{out: &testsupport.LogBuffer{}, done: make(chan error, 1)}
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	t.Cleanup(r.cancel)
	go func() {
		r.done <- Run(ctx, Options{RepoDir: filepath.Join("..", ".."), BinDir: bin, Out: r.out,
			ExporterAddress: "127.0.0.1:0", CollectorAddress: "127.0.0.1:0", PrometheusAddress: "127.0.0.1:0", AlertmanagerAddress: "127.0.0.1:0"})
	}()
	deadline := time.Now().Add(2 * time.Minute) // against hanging only
	for !strings.Contains(r.out.String(), "The demo is live") {
		select {
		case err := <-r.done:
			t.Fatalf("Run returned before the demo was live: %v\n%s", err, r.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not live within two minutes:\n%s", r.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	text := r.out.String()
	exporter := regexp.MustCompile(`mongosync_exporter +(http://\S+)/metrics`).FindStringSubmatch(text)
	collector := regexp.MustCompile(`oplog_collector +(http://\S+)/metrics`).FindStringSubmatch(text)
	dir := regexp.MustCompile(`are in (\S+) until it stops`).FindStringSubmatch(text)
	if exporter == nil || collector == nil || dir == nil {
		t.Fatalf("the demo does not say where the daemons listen and where its files are:\n%s", text)
	}
	r.exporter, r.collector, r.dir = exporter[1], collector[1], dir[1]
	return r
}

// wait waits for Run to return, and checks that it stopped everything.
func (r *run) wait(t *testing.T) error {
	t.Helper()
	var err error
	select {
	case err = <-r.done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute")
	}
	if _, err := os.Stat(r.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there: %v", r.dir, err)
	}
	for _, url := range []string{r.exporter, r.collector} {
		if status, _ := get(context.Background(), url+"/-/healthy"); status != 0 {
			t.Errorf("%s still answers (%d) once the demo stopped", url, status)
		}
	}
	if !strings.Contains(r.out.String(), "Stopped everything the demo started") {
		t.Errorf("the demo did not say it stopped:\n%s", r.out)
	}
	return err
}

// Run starts the daemons on the simulated migration without Prometheus (and says it is
// missing), until it is stopped (what SIGINT does) or one of the daemons dies; either
// way it stops everything and removes its directory.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both binaries and runs the demo for seconds: run without -short")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/mongosync_exporter", "./cmd/oplog_collector")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Setenv("PATH", t.TempDir()) // no prometheus, no alertmanager

	t.Run("until stopped", func(t *testing.T) {
		r := startRun(t, bin)
		if !strings.Contains(r.out.String(), "Prometheus: not installed") {
			t.Errorf("the demo does not say Prometheus is missing:\n%s", r.out)
		}
		if status, body := get(t.Context(), r.exporter+"/metrics"); status != 200 || !strings.Contains(body, `mongosync_up{migration="orders",mongosync="shard1"} 1`) ||
			!strings.Contains(body, `migration_verifier_up{migration="orders",verifier="shard0"} 1`) || !strings.Contains(body, `oplog_collector_metadata_up{metadata="central"} 1`) {
			t.Errorf("the exporter does not read the simulated migration: %d\n%.2000s", status, body)
		}
		if status, body := get(t.Context(), r.collector+"/-/ready"); status != 200 {
			t.Errorf("the collector is not ready: %d %s", status, body)
		}
		r.cancel()
		if err := r.wait(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	t.Run("a daemon dies", func(t *testing.T) {
		if _, err := os.Stat("/proc/self/cmdline"); err != nil {
			t.Skipf("finds the collector's process in /proc, which this system lacks: %v", err)
		}
		r := startRun(t, bin)
		pid := pidOf(t, "oplog_collector", filepath.Join(r.dir, "config.yml"))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := r.wait(t)
		if err == nil || !strings.Contains(err.Error(), "oplog_collector exited (signal: killed)") {
			t.Errorf("Run after the collector was killed: %v", err)
		}
	})
}

// pidOf finds the process started with program and an argument holding config.
func pidOf(t *testing.T, program, config string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if filepath.Base(args[0]) == program && strings.Contains(string(cmdline), config) {
			return pid
		}
	}
	t.Fatalf("no %s process with %s", program, config)
	return 0
}
