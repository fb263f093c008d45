package config

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	oneInstance  = "exporter:\n  mongosync:\n    - {migration: m, name: a, url: 'http://h'}\n"
	twoInstances = "exporter:\n  mongosync:\n    - {migration: m, name: a, url: 'http://h'}\n    - {migration: m, name: b, url: 'http://h'}\n"
	badConfig    = "exporter:\n  mongosync:\n    - {migration: m, name: a, url: 'http://h', timout: 1s}\n"
)

// applied records the configs a Reloader applies.
type applied struct {
	mu      sync.Mutex
	configs []*Config
	signal  chan struct{}
}

func (a *applied) apply(c *Config) error {
	a.mu.Lock()
	a.configs = append(a.configs, c)
	a.mu.Unlock()
	select {
	case a.signal <- struct{}{}:
	default:
	}
	return nil
}

func (a *applied) last() *Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.configs[len(a.configs)-1]
}

func newReloaderForTest(t *testing.T, content string) (*Reloader, *applied, *prometheus.Registry, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, path, content)
	a := &applied{signal: make(chan struct{}, 1)}
	reg := prometheus.NewRegistry()
	return bothSections.NewReloader("test_exporter", path, a.apply, reg, log.NewNopLogger()), a, reg, path
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestReloadKeepsOldConfigOnError(t *testing.T) {
	r, a, reg, path := newReloaderForTest(t, oneInstance)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := gauge(t, reg, "test_exporter_config_last_reload_successful"); got != 1 {
		t.Fatalf("reload_successful = %v after a good load", got)
	}
	okTime := gauge(t, reg, "test_exporter_config_last_reload_success_timestamp_seconds")
	if okTime <= 0 {
		t.Fatalf("success timestamp = %v", okTime)
	}

	writeFile(t, path, badConfig)
	err := r.Reload()
	if err == nil || !strings.Contains(err.Error(), "timout: unknown key") {
		t.Fatalf("reload of a bad file: %v", err)
	}
	if got := gauge(t, reg, "test_exporter_config_last_reload_successful"); got != 0 {
		t.Fatalf("reload_successful = %v after a bad reload", got)
	}
	if got := gauge(t, reg, "test_exporter_config_last_reload_success_timestamp_seconds"); got != okTime {
		t.Fatalf("success timestamp moved on a failed reload: %v -> %v", okTime, got)
	}
	if len(a.configs) != 1 {
		t.Fatalf("a bad config was applied (%d applies)", len(a.configs))
	}

	writeFile(t, path, twoInstances)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(a.last().Exporter.Mongosync); n != 2 {
		t.Fatalf("the fixed file applied %d instances, want 2", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP test_exporter_config_last_reload_successful Whether the last configuration reload attempt was successful (1) or not (0).
# TYPE test_exporter_config_last_reload_successful gauge
test_exporter_config_last_reload_successful 1
`), "test_exporter_config_last_reload_successful"); err != nil {
		t.Fatal(err)
	}
}

func TestReloadEndpoint(t *testing.T) {
	r, a, _, path := newReloaderForTest(t, oneInstance)
	do := func(method string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(method, "/-/reload", nil))
		return rec
	}
	if rec := do(http.MethodGet); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /-/reload: %d, want 405", rec.Code)
	}
	if len(a.configs) != 0 {
		t.Fatal("GET reloaded the config")
	}
	if rec := do(http.MethodPost); rec.Code != http.StatusOK {
		t.Fatalf("POST /-/reload: %d %s", rec.Code, rec.Body)
	}
	writeFile(t, path, badConfig)
	rec := do(http.MethodPost)
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "did you mean \"timeout\"") {
		t.Fatalf("POST /-/reload of a bad file: %d %s", rec.Code, rec.Body)
	}
}

func TestReloadOnSIGHUP(t *testing.T) {
	// Our own subscription keeps a SIGHUP sent before the reloader subscribes from
	// ending the test process.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	r, a, _, _ := newReloaderForTest(t, twoInstances)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.ReloadOnSIGHUP(ctx)

	deadline := time.After(time.Minute) // against hanging only
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		select {
		case <-a.signal:
			if n := len(a.last().Exporter.Mongosync); n != 2 {
				t.Fatalf("SIGHUP applied %d instances, want 2", n)
			}
			return
		case <-tick.C:
		case <-deadline:
			t.Fatal("SIGHUP never reloaded the config")
		}
	}
}

// A file that does not load at start-up is not said to leave "the previous one" in
// force: there is none. Once one was applied, a bad file leaves it in force, and the
// log says so.
func TestReloadLogSaysWhetherAConfigIsInForce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, path, badConfig)
	var logs strings.Builder
	a := &applied{signal: make(chan struct{}, 1)}
	r := bothSections.NewReloader("test_exporter", path, a.apply, prometheus.NewRegistry(), log.NewLogfmtLogger(&logs))
	if err := r.Reload(); err == nil {
		t.Fatal("a bad file loaded")
	}
	if r.Loaded() {
		t.Error("Loaded() after a failed first load")
	}
	if got := logs.String(); strings.Contains(got, "previous") || !strings.Contains(got, "none is in force") {
		t.Errorf("start-up with a bad file logged:\n%s", got)
	}

	writeFile(t, path, oneInstance)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if !r.Loaded() {
		t.Error("not Loaded() after a good load")
	}
	logs.Reset()
	writeFile(t, path, badConfig)
	if err := r.Reload(); err == nil {
		t.Fatal("a bad file loaded")
	}
	if got := logs.String(); !strings.Contains(got, "the previous one stays in force") || !r.Loaded() {
		t.Errorf("a bad reload logged (Loaded %v):\n%s", r.Loaded(), got)
	}
}
