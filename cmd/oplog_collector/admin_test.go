package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/mongomigrate/observability/internal/testsupport"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// post sends a POST as a browser or a script would, and returns the status and body.
func post(t *testing.T, target, contentType, body string, header map[string]string, user string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if user != "" {
		req.SetBasicAuth(user, "s3cret")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text)
}

// The destructive commands are off unless --web.enable-admin-api turns them on, which
// itself needs authentication; on, they refuse what a browser can send from another
// site, unauthenticated requests, and requests without the JSON confirmation. Through
// all of it the store keeps every event.
func TestAdminAPIRefusesUnsafeRequests(t *testing.T) {
	uri := startMongotestd(t)
	client := testsupport.Connect(t, uri)
	cfg := writeCollectorConfig(t, uri, "kept")
	authFiles := writeAuth(t)

	if code, out := runCLI(t, "--config.file", cfg, "--web.listen-address=127.0.0.1:0", "--web.enable-admin-api"); code != 1 ||
		!strings.Contains(out, "--web.enable-admin-api needs authentication") {
		t.Fatalf("admin API without authentication: exit %d\n%s", code, out)
	}

	off := startDaemon(t, cfg)
	eventually(t, "the first token", func() bool { return tokenSaved(t, client, "kept") })
	for i := range 5 {
		if _, err := client.Database("kept").Collection("c").InsertOne(t.Context(), bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "5 events", func() bool { return len(storedInserts(t, client, "kept")) == 5 })
	stored := storedCount(t, client, "kept")
	confirm := `{"confirm": "kept"}`
	if code, body := post(t, off.url+"/api/v1/sources/kept/reset", "application/json", confirm, nil, ""); code != http.StatusForbidden ||
		!strings.Contains(body, "--web.enable-admin-api") {
		t.Errorf("reset with the admin API off: %d %s", code, body)
	}
	for _, command := range []string{"deregister", "resume"} {
		if code, body := post(t, off.url+"/api/v1/sources/kept/"+command, "application/json", confirm, nil, ""); code != http.StatusForbidden {
			t.Errorf("%s with the admin API off: %d %s", command, code, body)
		}
	}
	off.stop(t, syscall.SIGTERM)

	on := startDaemon(t, cfg, "--web.enable-admin-api", "--web.config.file", authFiles.web)
	eventually(t, "the daemon to hold the source", func() bool { return strings.Contains(authFiles.get(t, on.url+"/metrics"), `state="running"} 1`) })
	reset := on.url + "/api/v1/sources/kept/reset"
	form := url.Values{"confirm": {"kept"}}.Encode()
	crossSite := map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
	for _, c := range []struct {
		name              string
		contentType, body string
		header            map[string]string
		user              string
		want              int
	}{
		{"no credentials", "application/json", confirm, nil, "", http.StatusUnauthorized},
		{"a cross-site form", "application/x-www-form-urlencoded", form, crossSite, "admin", http.StatusForbidden},
		{"a cross-site JSON request", "application/json", confirm, crossSite, "admin", http.StatusForbidden},
		{"a same-site form", "application/x-www-form-urlencoded", form, nil, "admin", http.StatusUnsupportedMediaType},
		{"text/plain", "text/plain", confirm, nil, "admin", http.StatusUnsupportedMediaType},
		{"no confirmation", "application/json", `{}`, nil, "admin", http.StatusBadRequest},
		{"another source's name", "application/json", `{"confirm": "other"}`, nil, "admin", http.StatusBadRequest},
	} {
		for _, target := range []string{reset, on.url + "/api/v1/sources/kept/resume"} {
			if code, body := post(t, target, c.contentType, c.body, c.header, c.user); code != c.want {
				t.Errorf("%s to %s: %d %s, want %d", c.name, target, code, body, c.want)
			}
		}
	}
	if code, body := post(t, on.url+"/api/v1/sources/kept/resume", "application/json", confirm, nil, "admin"); code != http.StatusBadRequest || !strings.Contains(body, "earliest") {
		t.Errorf("a resume without from: %d %s, want 400 saying what to give", code, body)
	}
	if n := storedCount(t, client, "kept"); n < stored {
		t.Fatalf("refused requests deleted events: %d left of %d", n, stored)
	}
	for _, path := range []string{"/-/reload"} {
		if code, body := post(t, on.url+path, "application/x-www-form-urlencoded", "", crossSite, "admin"); code != http.StatusForbidden {
			t.Errorf("cross-site POST %s: %d %s", path, code, body)
		}
		if code, body := post(t, on.url+path, "", "", nil, "admin"); code != http.StatusOK {
			t.Errorf("POST %s as curl sends it: %d %s", path, code, body)
		}
	}
	if code, body := post(t, reset, "application/json", confirm, nil, "admin"); code != http.StatusOK || !strings.Contains(body, `"events_deleted"`) {
		t.Fatalf("an authenticated, confirmed reset: %d %s", code, body)
	}
}

// The CLI reaches a collector behind basic auth with an HTTP client config, refuses
// credentials in the URL without printing them, and says what to do on a 401.
func TestCLIAuthenticatesWithAnHTTPConfig(t *testing.T) {
	uri := startMongotestd(t)
	cfg := writeCollectorConfig(t, uri, "guarded")
	authFiles := writeAuth(t)
	d := startDaemon(t, cfg, "--web.enable-admin-api", "--web.config.file", authFiles.web)

	withSecret := strings.Replace(d.url, "http://", "http://admin:hunter2@", 1)
	code, out := runCLI(t, "status", "--collector.url", withSecret)
	if code != 1 || strings.Contains(out, "hunter2") || !strings.Contains(out, "--http.config.file") {
		t.Errorf("credentials in the URL: exit %d, %s", code, out)
	}
	if code, out := runCLI(t, "status", "--collector.url", d.url); code != 1 || !strings.Contains(out, "asks for credentials") {
		t.Errorf("no credentials: exit %d, %s", code, out)
	}
	if code, out := runCLI(t, "status", "--collector.url", d.url, "--http.config.file", authFiles.client); code != 0 || !strings.Contains(out, "guarded") {
		t.Errorf("with the HTTP client config: exit %d, %s", code, out)
	}
}

// Acting on the store directly is refused while a collector holds the source's lease,
// even with --yes.
func TestOfflineIsRefusedWhileACollectorHoldsTheSource(t *testing.T) {
	uri := startMongotestd(t)
	client := testsupport.Connect(t, uri)
	cfg := writeCollectorConfig(t, uri, "busy")
	startDaemon(t, cfg)
	eventually(t, "the first token", func() bool { return tokenSaved(t, client, "busy") })
	code, out := runCLI(t, "reset", "--offline", "--yes", "--source", "busy", "--config.file", cfg)
	if code != 1 || !strings.Contains(out, "another collector holds this source's lease") || !strings.Contains(out, "pid") {
		t.Fatalf("offline reset of a held source: exit %d, %s", code, out)
	}
	if !tokenSaved(t, client, "busy") {
		t.Fatal("a refused offline reset wiped the store")
	}
}
