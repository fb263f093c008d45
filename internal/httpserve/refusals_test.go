package httpserve

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
)

// Refused requests are logged at most once per window for each address and status,
// the next line counting those left out; answered requests are not logged, nor is
// anything of the credentials a request carried.
func TestRefusalsAreLoggedRateLimited(t *testing.T) {
	var logs bytes.Buffer
	rl := newRefusalLog(log.NewLogfmtLogger(&logs), time.Minute)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	rl.now = func() time.Time { return now }
	h := rl.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); !ok {
			w.Header().Set("WWW-Authenticate", "Basic")
			http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "send JSON\nsecond line", http.StatusUnsupportedMediaType)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	send := func(addr, password, contentType string) {
		req := httptest.NewRequest(http.MethodPost, "http://collector:9783/api/v1/sources/a/reset", strings.NewReader("{}"))
		req.RemoteAddr = addr
		if password != "" {
			req.SetBasicAuth("admin", password)
		}
		req.Header.Set("Content-Type", contentType)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	for port := range 5 {
		send("198.51.100.7:"+string(rune('1'+port))+"000", "", "application/json") // one client, new connections
	}
	send("198.51.100.8:1000", "", "application/json")
	send("198.51.100.7:1000", "hunter2", "text/plain")
	send("198.51.100.7:1000", "hunter2", "application/json")
	now = now.Add(time.Minute)
	send("198.51.100.7:1000", "", "application/json")

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^level=warn msg="Request refused" method=POST path=/api/v1/sources/a/reset status=401 remote_addr=198\.51\.100\.7 reason=Unauthorized$`),
		regexp.MustCompile(`^level=warn msg="Request refused" .* status=401 remote_addr=198\.51\.100\.8 reason=Unauthorized$`),
		regexp.MustCompile(`^level=warn msg="Request refused" .* status=415 remote_addr=198\.51\.100\.7 reason="send JSON"$`),
		regexp.MustCompile(`^level=warn msg="Request refused" .* status=401 remote_addr=198\.51\.100\.7 reason=Unauthorized suppressed_since_last=4$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines logged, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d: %s\nwant %s", i+1, lines[i], re)
		}
	}
	if strings.Contains(logs.String(), "hunter2") || strings.Contains(logs.String(), "admin") {
		t.Errorf("credentials reached the log:\n%s", logs.String())
	}
}
