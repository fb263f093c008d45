package e2e

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const mongosyncTestdata = "../exporter/testdata/mongosync"

// mongosyncStandIn answers GET <prefix>/api/v1/progress for several mongosync instances
// (one httptest server, one path prefix per instance) with recorded replies of
// exporter/testdata/mongosync, moved along as time passes: the copied bytes and the
// applied events grow, as in a migration under way. The test raises an instance's lag
// with setLag, changes fields of its reply with patch, and makes it fail.
type mongosyncStandIn struct {
	srv       *httptest.Server
	start     time.Time
	instances map[string]*mongosyncInstance

	mu       sync.Mutex
	requests []string // anything but GET .../api/v1/progress
}

type mongosyncInstance struct {
	recorded []byte  // the recorded reply
	baseLag  float64 // lag when not raised

	mu        sync.Mutex
	lagSince  time.Time // when the lag was raised; zero: baseLag
	raisedLag float64   // the lag then; it grows with time from there
	patches   map[string]func(progress map[string]any)
	failing   bool // answer 500
}

func newMongosyncStandIn(t *testing.T, recordings map[string]string, baseLag float64) *mongosyncStandIn {
	t.Helper()
	s := &mongosyncStandIn{start: time.Now(), instances: map[string]*mongosyncInstance{}}
	for name, file := range recordings {
		data, err := os.ReadFile(filepath.Join(mongosyncTestdata, file))
		if err != nil {
			t.Fatal(err)
		}
		s.instances[name] = &mongosyncInstance{recorded: data, baseLag: baseLag}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// url is the base URL of instance name, as the exporter's config takes it.
func (s *mongosyncStandIn) url(name string) string { return s.srv.URL + "/" + name }

// setLag raises an instance's lag to seconds, from where it grows by a second each
// second (mongosync falling further behind); 0 brings it back to its base.
func (s *mongosyncStandIn) setLag(name string, seconds float64) {
	inst := s.instances[name]
	inst.mu.Lock()
	defer inst.mu.Unlock()
	inst.raisedLag, inst.lagSince = seconds, time.Time{}
	if seconds > 0 {
		inst.lagSince = time.Now()
	}
}

// patch changes an instance's replies with change (applied to the progress object last,
// patches in the order of their keys) until unpatch removes it.
func (s *mongosyncStandIn) patch(name, key string, change func(progress map[string]any)) {
	inst := s.instances[name]
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.patches == nil {
		inst.patches = map[string]func(map[string]any){}
	}
	inst.patches[key] = change
}

func (s *mongosyncStandIn) unpatch(name, key string) {
	inst := s.instances[name]
	inst.mu.Lock()
	defer inst.mu.Unlock()
	delete(inst.patches, key)
}

// fail makes an instance answer 500 (failing true) or answer again.
func (s *mongosyncStandIn) fail(name string, failing bool) {
	inst := s.instances[name]
	inst.mu.Lock()
	defer inst.mu.Unlock()
	inst.failing = failing
}

// reset removes every patch and failure and the raised lags.
func (s *mongosyncStandIn) reset() {
	for name, inst := range s.instances {
		s.setLag(name, 0)
		inst.mu.Lock()
		inst.patches, inst.failing = nil, false
		inst.mu.Unlock()
	}
}

func (s *mongosyncStandIn) unexpectedRequests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func (s *mongosyncStandIn) serve(w http.ResponseWriter, r *http.Request) {
	name, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	inst := s.instances[name]
	if r.Method != http.MethodGet || rest != "api/v1/progress" || inst == nil {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		http.Error(w, "the exporter must only GET /api/v1/progress", http.StatusTeapot)
		return
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.failing {
		http.Error(w, "the test made this instance fail", http.StatusInternalServerError)
		return
	}
	var reply map[string]any
	if err := json.Unmarshal(inst.recorded, &reply); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	progress := reply["progress"].(map[string]any)
	elapsed := time.Since(s.start).Seconds()
	lag := inst.baseLag
	if !inst.lagSince.IsZero() {
		lag = inst.raisedLag + time.Since(inst.lagSince).Seconds()
	}
	progress["lagTimeSeconds"] = lag
	if l, ok := progress["lag"].(map[string]any); ok {
		l["overallLagSeconds"] = lag
		l["crudLagSeconds"] = lag
	}
	if applied, ok := progress["totalEventsApplied"].(float64); ok {
		progress["totalEventsApplied"] = applied + 40*elapsed
	}
	if cc, ok := progress["collectionCopy"].(map[string]any); ok {
		// The recordings' copies are done or well under way: start each instance's share
		// at 20% of the (global) total and grow it by 100 MiB/s, so the copy progress
		// rises (the copy ETA panel needs a positive rate).
		if total, ok := cc["estimatedTotalBytes"].(float64); ok {
			cc["estimatedCopiedBytes"] = min(total, 0.2*total+100*(1<<20)*elapsed)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(inst.patches)) {
		inst.patches[key](progress)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}

// verifierAPIStandIn serves a migration-verifier's GET /api/v1/progress: the reference's
// example (exporter/testdata/verifier/api-progress.json) in the rechecking verifier's
// generation, with a longest mismatch, which
// the verifier reports while rechecking with mismatches outstanding; setPhase changes
// its phase. Any other request is recorded: the verifier shuts its web server down on a
// second concurrent POST, so the exporter must never send one.
type verifierAPIStandIn struct {
	srv   *httptest.Server
	reply map[string]map[string]any

	mu       sync.Mutex
	requests []string
}

// setPhase makes the API report phase ("recheck", "idle"...).
func (s *verifierAPIStandIn) setPhase(phase string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply["progress"]["phase"] = phase
}

func newVerifierAPIStandIn(t *testing.T) *verifierAPIStandIn {
	t.Helper()
	data, err := os.ReadFile("../exporter/testdata/verifier/api-progress.json")
	if err != nil {
		t.Fatal(err)
	}
	var reply map[string]map[string]any
	if err := json.Unmarshal(data, &reply); err != nil {
		t.Fatal(err)
	}
	reply["progress"]["generation"] = recheckGeneration // as the verifier's metadata says
	reply["progress"]["longestDocMismatch"] = map[string]any{
		"type": "content", "namespace": "shop.orders", "_id": 5, "field": "total", "detail": "Different", "durationSecs": 1800,
	}
	s := &verifierAPIStandIn{reply: reply}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/progress" {
			s.requests = append(s.requests, r.Method+" "+r.URL.Path)
			http.Error(w, "only GET /api/v1/progress", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.reply)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *verifierAPIStandIn) unexpectedRequests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}
