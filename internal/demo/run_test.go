package demo

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mongomigrate/observability/internal/testsupport"
)

// Run, on a machine without Prometheus (PATH holds neither it nor Alertmanager), starts
// the daemons on the simulated migration, says so and where they listen, serves live
// data, and on cancellation (what SIGINT does) stops both daemons and removes its
// directory.
func TestRunWithoutPrometheus(t *testing.T) {
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

	out := &testsupport.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{RepoDir: filepath.Join("..", ".."), BinDir: bin, Out: out,
			ExporterAddress: "127.0.0.1:0", CollectorAddress: "127.0.0.1:0", PrometheusAddress: "127.0.0.1:0", AlertmanagerAddress: "127.0.0.1:0"})
	}()
	deadline := time.Now().Add(2 * time.Minute) // against hanging only
	for !strings.Contains(out.String(), "The demo is live") {
		select {
		case err := <-done:
			t.Fatalf("Run returned before the demo was live: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not live within two minutes:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	text := out.String()
	if !strings.Contains(text, "Prometheus: not installed") {
		t.Errorf("the demo does not say Prometheus is missing:\n%s", text)
	}
	exporter := regexp.MustCompile(`mongosync_exporter +(http://\S+)/metrics`).FindStringSubmatch(text)
	collector := regexp.MustCompile(`oplog_collector +(http://\S+)/metrics`).FindStringSubmatch(text)
	dir := regexp.MustCompile(`are in (\S+) until it stops`).FindStringSubmatch(text)
	if exporter == nil || collector == nil || dir == nil {
		t.Fatalf("the demo does not say where the daemons listen and where its files are:\n%s", text)
	}
	if status, body := get(ctx, exporter[1]+"/metrics"); status != 200 || !strings.Contains(body, `mongosync_up{migration="orders",mongosync="shard1"} 1`) ||
		!strings.Contains(body, `migration_verifier_up{verifier="shard0"} 1`) || !strings.Contains(body, `oplog_collector_metadata_up{metadata="central"} 1`) {
		t.Errorf("the exporter does not read the simulated migration: %d\n%.2000s", status, body)
	}
	if status, body := get(ctx, collector[1]+"/-/ready"); status != 200 {
		t.Errorf("the collector is not ready: %d %s", status, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of the cancellation")
	}
	if _, err := os.Stat(dir[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there: %v", dir[1], err)
	}
	for _, url := range []string{exporter[1], collector[1]} {
		if status, _ := get(context.Background(), url+"/-/healthy"); status != 0 {
			t.Errorf("%s still answers (%d) once the demo stopped", url, status)
		}
	}
	if !strings.Contains(out.String(), "Stopped everything the demo started") {
		t.Errorf("the demo did not say it stopped:\n%s", out)
	}
}
