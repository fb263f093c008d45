package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const mongosyncTestdata = "../exporter/testdata/mongosync"

// mongosyncStandIn answers GET <prefix>/api/v1/progress for several mongosync instances
// (one httptest server, one path prefix per instance) with recorded replies of
// exporter/testdata/mongosync, moved along as time passes: the copied bytes and the
// applied events grow, as in a migration under way. The test raises an instance's lag
// with setLag.
type mongosyncStandIn struct {
	srv       *httptest.Server
	start     time.Time
	instances map[string]*mongosyncInstance

	mu       sync.Mutex
	requests []string // anything but GET .../api/v1/progress
}

type mongosyncInstance struct {
	recorded []byte       // the recorded reply
	baseLag  float64      // lag when not raised
	lag      atomic.Int64 // raised lag in seconds; 0: baseLag
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

func (s *mongosyncStandIn) setLag(name string, seconds int64) { s.instances[name].lag.Store(seconds) }

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
	var reply map[string]any
	if err := json.Unmarshal(inst.recorded, &reply); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	progress := reply["progress"].(map[string]any)
	elapsed := time.Since(s.start).Seconds()
	lag := inst.baseLag
	if raised := inst.lag.Load(); raised > 0 {
		lag = float64(raised)
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
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}

// verifierAPIStandIn serves a migration-verifier's GET /api/v1/progress: the reference's
// example (exporter/testdata/verifier/api-progress.json) with a longest mismatch, which
// the verifier reports while rechecking with mismatches outstanding. Any other request
// is recorded: the verifier shuts its web server down on a second concurrent POST, so
// the exporter must never send one.
type verifierAPIStandIn struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []string
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
	reply["progress"]["longestDocMismatch"] = map[string]any{
		"type": "content", "namespace": "shop.orders", "_id": 5, "field": "total", "detail": "Different", "durationSecs": 1800,
	}
	body, err := json.Marshal(reply)
	if err != nil {
		t.Fatal(err)
	}
	s := &verifierAPIStandIn{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/progress" {
			s.mu.Lock()
			s.requests = append(s.requests, r.Method+" "+r.URL.Path)
			s.mu.Unlock()
			http.Error(w, "only GET /api/v1/progress", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *verifierAPIStandIn) unexpectedRequests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}
