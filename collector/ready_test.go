package collector

import (
	"strings"
	"testing"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// A collector is ready once every configured source runs or stands by: not before its
// config is applied, not while a source cannot reach its cluster (the reason names it
// and its state), and again not once it stops.
func TestReadyOnceEverySourceRunsOrStandsBy(t *testing.T) {
	uri := mongotest.URI(t)
	m := NewManager(prometheus.NewRegistry(), log.NewNopLogger(), testOptions())
	if err := m.Ready(); err == nil || !strings.Contains(err.Error(), "no configuration in force") {
		t.Errorf("Ready before any config: %v", err)
	}

	unreachable := "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
	h := startManager(t, collectorConfig(t, uri, uri, shortLease,
		testSource{name: "ok", uri: uri, database: "ready"}, testSource{name: "down", uri: unreachable}))
	h.waitState("ok", stateRunning)
	err := h.manager.Ready()
	if err == nil || !strings.Contains(err.Error(), "1 of 2 sources") || !strings.Contains(err.Error(), "down: "+h.state("down")) || strings.Contains(err.Error(), "ok:") {
		t.Errorf("Ready with one source unreachable: %v", err)
	}

	// The same source on a second collector: standing by is ready too.
	standby := startManager(t, collectorConfig(t, uri, uri, shortLease, testSource{name: "ok", uri: uri, database: "ready"}))
	standby.waitState("ok", stateStandby)
	if err := standby.manager.Ready(); err != nil {
		t.Errorf("Ready on the standby: %v", err)
	}
	first := startManager(t, collectorConfig(t, uri, uri, shortLease, testSource{name: "solo", uri: uri, database: "ready"}))
	first.waitState("solo", stateRunning)
	if err := first.manager.Ready(); err != nil {
		t.Errorf("Ready with its one source running: %v", err)
	}
	first.stop()
	if err := first.manager.Ready(); err == nil || !strings.Contains(err.Error(), "no configuration in force") {
		t.Errorf("Ready once stopped: %v", err)
	}
}
