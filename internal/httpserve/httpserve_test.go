package httpserve

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// Every link of the landing page answers: none leads to a 404.
func TestLandingPageLinksAnswer(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "up 1\n") })
	if err := Routes(mux, "test_exporter", "A test.", "/metrics", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(mux)
	defer server.Close()
	page := get(t, server.URL+"/", http.StatusOK)
	links := regexp.MustCompile(`href="([^"]+)"`).FindAllStringSubmatch(page, -1)
	checked := 0
	for _, link := range links {
		href := link[1]
		if strings.HasPrefix(href, "http") { // off-site (pprof.me, the docs)
			continue
		}
		href = strings.Replace(href, "seconds=60", "seconds=1", 1) // the same handler, sooner
		get(t, server.URL+"/"+strings.TrimPrefix(href, "/"), http.StatusOK)
		checked++
	}
	if checked < 5 { // metrics, health, readiness, heap, profile
		t.Fatalf("the page has %d local links, want at least 5:\n%s", checked, page)
	}
}

// /-/ready answers 200 while the daemon's check passes, and 503 with the check's reason
// while it does not, for GET and HEAD (what load balancers and orchestrators send).
func TestReadyFollowsTheCheck(t *testing.T) {
	var ready atomic.Bool
	check := func() error {
		if ready.Load() {
			return nil
		}
		return errors.New("source prod: starting")
	}
	mux := http.NewServeMux()
	if err := Routes(mux, "test_exporter", "A test.", "/metrics", check); err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(mux)
	defer server.Close()
	if body := get(t, server.URL+"/-/ready", http.StatusServiceUnavailable); !strings.Contains(body, "Not ready: source prod: starting") {
		t.Errorf("503 body does not give the reason: %q", body)
	}
	head(t, server.URL+"/-/ready", http.StatusServiceUnavailable)
	ready.Store(true)
	if body := get(t, server.URL+"/-/ready", http.StatusOK); strings.TrimSpace(body) != "Ready" {
		t.Errorf("200 body %q", body)
	}
	head(t, server.URL+"/-/ready", http.StatusOK)
}

func head(t *testing.T, url string, want int) {
	t.Helper()
	resp, err := http.Head(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("HEAD %s: %d, want %d", url, resp.StatusCode, want)
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Errorf("GET %s: %d, want %d", url, resp.StatusCode, want)
	}
	return string(body)
}
