package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// /-/ready answers 503, naming the source and its state, while a configured source can
// neither capture nor stand by (its cluster is unreachable), and 200 once every source
// runs: here after a reload without the unreachable one.
func TestReadyOnceEverySourceRuns(t *testing.T) {
	uri := startMongotestd(t)
	cfg := filepath.Join(t.TempDir(), "config.yml")
	write := func(sources ...string) {
		text := fmt.Sprintf("collector:\n  store: {uri: %q}\n  max_backoff: 200ms\n  sources:\n", uri)
		for _, s := range sources {
			text += s
		}
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	up := fmt.Sprintf("    - {name: up, uri: %q, database: up}\n", uri)
	write(up, "    - {name: down, uri: 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200'}\n")
	d := startDaemon(t, cfg)

	ready := func() (int, string) {
		resp, err := http.Get(d.url + "/-/ready")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	eventually(t, "/-/ready to answer 503 for the unreachable source only, once the other runs", func() bool {
		code, body := ready()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "1 of 2 sources") && !strings.Contains(body, "up:")
	})
	if code, body := ready(); !strings.Contains(body, "down: ") {
		t.Errorf("/-/ready does not name the unreachable source: %d %s", code, body)
	}

	write(up)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "/-/ready to answer 200 once every source runs", func() bool {
		code, body := ready()
		return code == http.StatusOK && strings.TrimSpace(body) == "Ready"
	})
}
