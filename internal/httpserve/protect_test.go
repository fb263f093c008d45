package httpserve

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
)

// What a browser sends from another site is refused before the handler runs, and
// logged; the same request from a program (no Origin, no Sec-Fetch-Site) or from the
// same site passes, and reads pass whatever their origin.
func TestRefuseCrossOrigin(t *testing.T) {
	var logs bytes.Buffer
	calls := 0
	h := newRefusalLog(log.NewLogfmtLogger(&logs), time.Minute).wrap(refuseCrossOrigin(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls++ })))
	for _, c := range []struct {
		name   string
		method string
		header map[string]string
		want   int
	}{
		{"curl", http.MethodPost, nil, http.StatusOK},
		{"a form on another site", http.MethodPost, map[string]string{"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"}, http.StatusForbidden},
		{"a fetch from another site", http.MethodPost, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"an opaque origin", http.MethodPut, map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"the same site", http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"the same host", http.MethodPost, map[string]string{"Origin": "http://collector.example:9783"}, http.StatusOK},
		{"a read from another site", http.MethodGet, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusOK},
	} {
		req := httptest.NewRequest(c.method, "http://collector.example:9783/-/reload", nil)
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		before := calls
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: %d, want %d", c.name, rec.Code, c.want)
		}
		if reached := calls > before; reached != (c.want == http.StatusOK) {
			t.Errorf("%s: handler reached %v", c.name, reached)
		}
	}
	if !strings.Contains(logs.String(), `msg="Request refused" method=POST path=/-/reload status=403 remote_addr=192.0.2.1 reason="cross-origin request refused: this endpoint changes state, and a browser sent it from another site" origin=http://evil.example`) {
		t.Errorf("refusals are not logged:\n%s", logs.String())
	}
}

// WebAuth names the basic-auth user only when the web config has users (the toolkit
// checked the password), never a name a client merely sent.
func TestWebAuth(t *testing.T) {
	dir := t.TempDir()
	withUsers := filepath.Join(dir, "users.yml")
	if err := os.WriteFile(withUsers, []byte("basic_auth_users:\n  admin: $2y$10$abcdefghijklmnopqrstuu\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsOnly := filepath.Join(dir, "tls.yml")
	if err := os.WriteFile(tlsOnly, []byte("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.SetBasicAuth("admin", "whatever")
	for _, c := range []struct {
		file       string
		configured bool
		user       string
	}{
		{withUsers, true, "admin"},
		{tlsOnly, false, ""},
		{"", false, ""},
	} {
		a := WebAuth{File: c.file}
		if got, err := a.Configured(); got != c.configured || err != nil {
			t.Errorf("%q: Configured() = %v, %v", c.file, got, err)
		}
		if user, ok := a.User(req); user != c.user || ok != (c.user != "") {
			t.Errorf("%q: User() = %q, %v", c.file, user, ok)
		}
	}
	stranger := httptest.NewRequest(http.MethodPost, "/", nil)
	stranger.SetBasicAuth("mallory", "x")
	if user, ok := (WebAuth{File: withUsers}).User(stranger); ok {
		t.Errorf("a user the config does not list was named: %q", user)
	}
}
