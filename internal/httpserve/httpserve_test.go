package httpserve

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// Every link of the landing page answers: none leads to a 404.
func TestLandingPageLinksAnswer(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "up 1\n") })
	if err := Routes(mux, "test_exporter", "A test.", "/metrics"); err != nil {
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
	if checked < 4 { // metrics, health, heap, profile
		t.Fatalf("the page has %d local links, want at least 4:\n%s", checked, page)
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
