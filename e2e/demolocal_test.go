package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demoLocalCommand is the first command of README.md's quick start.
const demoLocalCommand = "make demo-local"

// The local demo's flags that move every part to a free port: the defaults (the
// daemons' usual ports, Prometheus' and Alertmanager's) may be taken on a shared machine.
const demoFreePorts = "DEMO_FLAGS=--exporter.listen-address=127.0.0.1:0 --collector.listen-address=127.0.0.1:0 " +
	"--prometheus.listen-address=127.0.0.1:0 --alertmanager.listen-address=127.0.0.1:0"

var (
	// quickStartFirst is the first command of the first sh block of README.md's quick start.
	quickStartFirst = regexp.MustCompile("(?s)\n## Quick start\n[^#]*?```sh\n([^\n]*)")
	demoLive        = regexp.MustCompile(`The demo is live \(([^)]*) after it started\)`)
	demoOpen        = regexp.MustCompile(`(?m)^  (mongosync_exporter|oplog_collector|Prometheus|Alertmanager) +(http://[^/\s]+)`)
	demoDirectory   = regexp.MustCompile(`its files .* are in (\S+) until it stops`)
)

// TestDemoLocal does what README.md's quick start starts with, on a clean clone of HEAD:
// `make demo-local` builds the binaries and runs the local demo. Once it says it is live,
// Prometheus scrapes both daemons, Alertmanager is connected, and every dashboard panel
// query and variable returns data from the demo's Prometheus (as in TestEndToEnd); then
// SIGINT to make's process group, as Ctrl-C sends it, stops everything: every process
// of the group has exited, nothing answers on the demo's addresses any more, and its
// directory is gone.
func TestDemoLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a full run (-short was given): it clones the repository, builds with make and runs the demo with Prometheus for a minute; run go test without -short")
	}
	requireTools(t) // the demo runs them when they are on PATH: without them there is no Prometheus to ask
	text, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	if m := quickStartFirst.FindSubmatch(text); m == nil || string(m[1]) != demoLocalCommand {
		t.Fatalf("README.md's quick start does not start with %s: its first command is %q", demoLocalCommand, m)
	}
	clone, _ := cloneHead(t)

	started := time.Now()
	demo := startGroup(t, clone, demoLocalCommand+" '"+demoFreePorts+"'")
	eventually(t, 5*time.Minute, "make demo-local to say the demo is live", func() (bool, string) {
		if demo.exited() {
			t.Fatalf("make demo-local exited before the demo was live: %v\n%s\n%s", demo.waitErr, tail(demo.stdout.String()), tail(demo.stderr.String()))
		}
		return demoLive.MatchString(demo.stdout.String()), "not live yet"
	})
	out := demo.stdout.String()
	t.Logf("live %s after make demo-local started (build included); the demo says %s", time.Since(started).Round(time.Second), demoLive.FindStringSubmatch(out)[1])
	open := map[string]string{}
	for _, m := range demoOpen.FindAllStringSubmatch(out, -1) {
		open[m[1]] = m[2]
	}
	dir := demoDirectory.FindStringSubmatch(out)
	if len(open) != 4 || dir == nil {
		t.Fatalf("the demo does not say where its four parts listen and where its files are (found %v, %v):\n%s", open, dir, out)
	}

	s := &stack{prom: promAPI{base: open["Prometheus"]}}
	t.Run("Alertmanager connected", func(t *testing.T) {
		var data struct {
			Active []struct {
				URL string `json:"url"`
			} `json:"activeAlertmanagers"`
		}
		eventually(t, waitTimeout, "Prometheus to send its alerts to the demo's Alertmanager", func() (bool, string) {
			err := s.prom.get(t.Context(), "/api/v1/alertmanagers", nil, &data)
			return err == nil && len(data.Active) == 1 && strings.Contains(data.Active[0].URL, strings.TrimPrefix(open["Alertmanager"], "http://")),
				fmt.Sprintf("%v %v", data.Active, err)
		})
	})
	t.Run("dashboards", s.testDashboards)

	stopped := time.Now()
	if err := syscall.Kill(-demo.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-demo.done:
	case <-time.After(time.Minute):
		t.Fatalf("make demo-local did not exit within a minute of SIGINT:\n%s", tail(demo.stdout.String()))
	}
	eventually(t, 30*time.Second, "every process of make demo-local's group to exit", func() (bool, string) {
		err := syscall.Kill(-demo.cmd.Process.Pid, 0)
		return errors.Is(err, syscall.ESRCH), fmt.Sprintf("kill(-%d, 0): %v", demo.cmd.Process.Pid, err)
	})
	t.Logf("stopped %s after SIGINT", time.Since(stopped).Round(100*time.Millisecond))
	if !strings.Contains(demo.stdout.String(), "Stopped everything the demo started") {
		t.Errorf("the demo did not say it stopped everything:\n%s\n%s", tail(demo.stdout.String()), tail(demo.stderr.String()))
	}
	if _, err := os.Stat(dir[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo's directory %s is still there: %v", dir[1], err)
	}
	for name, url := range open {
		if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still answers at %s after the demo stopped", name, url)
		}
	}
}
