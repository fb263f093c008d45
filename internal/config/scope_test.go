package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A file with both sections, each using variables only its own program's host has.
const bothPrograms = `exporter:
  verifiers:
    - name: v
      uri: ${TEST_EXPORTER_ONLY_URI}
collector:
  store: {uri: "${TEST_COLLECTOR_ONLY_URI}"}
  retention: ${TEST_COLLECTOR_ONLY_RETENTION}
  sources:
    - name: prod
      uri: ${TEST_COLLECTOR_ONLY_URI}
`

// Each program validates its own section fully and the other's key names only: the
// exporter's host need not hold the collector's secrets, and the other way round.
func TestEachProgramNeedsOnlyItsOwnVariables(t *testing.T) {
	t.Setenv("TEST_EXPORTER_ONLY_URI", "mongodb://meta:27017")
	cfg, err := ForExporter.Parse([]byte(bothPrograms), "both.yml")
	if err != nil {
		t.Fatalf("the exporter refused the file over the collector's variables:\n%v", err)
	}
	if string(cfg.Exporter.Verifiers[0].URI) != "mongodb://meta:27017" || len(cfg.Collector.Sources) != 0 {
		t.Errorf("exporter scope: %+v %+v", cfg.Exporter.Verifiers, cfg.Collector)
	}
	if _, err := ForCollector.Parse([]byte(bothPrograms), "both.yml"); err == nil || !strings.Contains(err.Error(), "TEST_COLLECTOR_ONLY_URI is not set") {
		t.Errorf("the collector accepted its own unset variable: %v", err)
	}

	os.Unsetenv("TEST_EXPORTER_ONLY_URI")
	t.Setenv("TEST_COLLECTOR_ONLY_URI", "mongodb://store:27017")
	t.Setenv("TEST_COLLECTOR_ONLY_RETENTION", "30d")
	cfg, err = ForCollector.Parse([]byte(bothPrograms), "both.yml")
	if err != nil {
		t.Fatalf("the collector refused the file over the exporter's variables:\n%v", err)
	}
	if cfg.Collector.Retention != 30*24*time.Hour || len(cfg.Exporter.Verifiers) != 0 {
		t.Errorf("collector scope: retention %v, exporter %+v", cfg.Collector.Retention, cfg.Exporter)
	}
}

// A typo in the other program's section is still an error: the file is one file.
func TestOtherSectionKeysAreChecked(t *testing.T) {
	data := "exporter:\n  mongosync: []\ncollector:\n  sourcs: []\n  retention: not-a-duration\n"
	_, err := ForExporter.Parse([]byte(data), "typo.yml")
	want := `typo.yml:4: collector.sourcs: unknown key; did you mean "sources"?`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

// oplog_collector's requirements are part of loading, so start-up, --config.check and
// reload refuse the same files.
func TestCollectorNeedsSourcesAndStore(t *testing.T) {
	cases := map[string]string{
		"exporter: {}\n": `empty.yml: collector: no sources to capture: list them under collector.sources, with the store they are written to under collector.store (README.md, "Running the collector")`,
		"collector:\n  store: {uri: 'mongodb://store'}\n  sources: []\n": `empty.yml:3: collector.sources: empty: list at least one source to capture (README.md, "Running the collector")`,
		"collector:\n  sources: [{name: a, uri: 'mongodb://a'}]\n":       `empty.yml:1: collector.store: missing required key "uri" (or "uri_file")`,
	}
	for data, want := range cases {
		_, err := ForCollector.Parse([]byte(data), "empty.yml")
		if err == nil || err.Error() != want {
			t.Errorf("%q:\n%v\nwant:\n%s", data, err, want)
		}
		if _, err := ForExporter.Parse([]byte(data), "empty.yml"); err != nil {
			t.Errorf("the exporter refused %q: %v", data, err)
		}
	}
}

// Durations are written as in Go or as in Prometheus.
func TestDurations(t *testing.T) {
	for text, want := range map[string]time.Duration{
		"30d": 30 * 24 * time.Hour, "1w": 7 * 24 * time.Hour, "1y": 365 * 24 * time.Hour, "1d12h": 36 * time.Hour,
		"1m30s": 90 * time.Second, "1.5h": 90 * time.Minute, "250ms": 250 * time.Millisecond, "720h": 720 * time.Hour,
	} {
		cfg, err := ForCollector.Parse([]byte("collector:\n  store: {uri: 'mongodb://s'}\n  retention: "+text+"\n  sources: [{name: a, uri: 'mongodb://a'}]\n"), "d.yml")
		if err != nil || cfg.Collector.Retention != want {
			t.Errorf("retention %s: %v, %v; want %v", text, cfg, err, want)
		}
	}
	for _, text := range []string{"5", "fast", "1x", "-"} {
		_, err := ForCollector.Parse([]byte("collector:\n  store: {uri: 'mongodb://s'}\n  retention: '"+text+"'\n  sources: [{name: a, uri: 'mongodb://a'}]\n"), "d.yml")
		if err == nil || !strings.Contains(err.Error(), "is not a duration such as 5s, 1m30s, 12h or 30d") {
			t.Errorf("retention %q: %v", text, err)
		}
	}
}

// malformedURIs each hold "hunter2" where a secret goes.
var malformedURIs = []string{
	"mongodb://",
	"mongodb://h:99999",
	"mongodb://monitor:hunter2-host:27017",
	"mongodb://monitor:hunter2-host",
	"mongodb://monitor:hunter2%zz@h",
	"mongodb://monitor:hun@ter2@h",
	"mongodb://h/?tlsCertificateKeyFilePassword=hunter2%zz",
	"mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:hunter2%zz",
	"mongodb://h/?ssl=maybe",
	"mongodb://h/?authMechanism=FOO",
	"mongodb+srv://h:27017",
	"mongodb+srv://a,b",
	"mongodb://h/?maxPoolSize=-1",
	"mongodb://h,h2/?directConnection=true",
	"mongodb://u@h/?authMechanism=GSSAPI&authSource=admin",
	"mongodb://h/?tls=true&tlsCAFile=/no/such/ca.pem",
	"mongodb://h/?heartbeatFrequencyMS=100",
	"mongodb://h/?minPoolSize=10&maxPoolSize=5",
	"mongodb://monitor:hunter2@h/?authMechanism=MONGODB-X509",
	"mongodb://h/?authMechanism=MONGODB-OIDC",
}

// The configuration accepts a connection string exactly when the driver makes a client
// of it (what the daemons do), and its errors quote no secret.
func TestMongoURIsAsTheDriverReadsThem(t *testing.T) {
	valid := []string{
		"mongodb://monitor:hunter2@h1:27017,h2:27017/?replicaSet=rs0&authSource=admin",
		"mongodb://h/?tls=true&tlsInsecure=true",
		"mongodb://h/?w=majority&readPreference=secondaryPreferred&maxStalenessSeconds=120",
		"mongodb://monitor:p%40ss%3Aword@h",
	}
	for _, uri := range append(valid, malformedURIs...) {
		err := ValidateMongoURI(uri)
		client, driverErr := mongo.Connect(options.Client().ApplyURI(uri))
		if driverErr == nil {
			_ = client.Disconnect(context.Background())
		}
		if (err == nil) != (driverErr == nil) {
			t.Errorf("%s: the configuration says %v, the driver %v", uri, err, driverErr)
		}
		if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "%zz") || strings.Contains(err.Error(), "ter2")) {
			t.Errorf("%s: the error quotes a secret: %v", uri, err)
		}
	}
}

// In the file, the error names the key and line, and never the value.
func TestMongoURIErrorsInTheFile(t *testing.T) {
	t.Setenv("TEST_SOURCE_URI", "mongodb://backup:hunter2-prod-rs0:27017")
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yml")
	if err := os.WriteFile(filepath.Join(dir, "store.uri"), []byte("mongodb://h/?tlsCertificateKeyFilePassword=hunter2%zz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := "collector:\n  store: {uri_file: store.uri}\n  sources:\n    - name: prod\n      uri: ${TEST_SOURCE_URI}\n"
	_, err := ForCollector.Parse([]byte(data), path)
	want := path + `:2: collector.store.uri_file: error parsing uri: invalid option value "xxxxx": invalid %-escape (write % as %25)` + "\n" +
		path + `:5: collector.sources[0].uri: error parsing uri: invalid host "": address xxxxx: too many colons in address (user:password needs an @ before the host, and a : @ / or % in them must be written %3A %40 %2F %25)`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

// A mongosync URL from the environment is quoted as written, in errors and logs.
func TestURLFromTheEnvironmentIsShownAsWritten(t *testing.T) {
	t.Setenv("TEST_MONGOSYNC_URL", "http://mongosync.internal:27182/token-abc123")
	t.Setenv("TEST_BAD_MONGOSYNC_URL", "ftp://token-abc123@h")
	cfg, err := ForExporter.Parse([]byte("exporter:\n  mongosync:\n    - {migration: m, name: a, url: '${TEST_MONGOSYNC_URL}'}\n"), "u.yml")
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Exporter.Mongosync[0]; m.URL != "http://mongosync.internal:27182/token-abc123" || m.URLShown != "${TEST_MONGOSYNC_URL}" {
		t.Errorf("URL %q shown as %q", m.URL, m.URLShown)
	}
	_, err = ForExporter.Parse([]byte("exporter:\n  mongosync:\n    - {migration: m, name: a, url: '${TEST_BAD_MONGOSYNC_URL}'}\n"), "u.yml")
	if err == nil || strings.Contains(err.Error(), "abc123") || !strings.Contains(err.Error(), "${TEST_BAD_MONGOSYNC_URL}") {
		t.Errorf("error %v: want the URL as written", err)
	}
}
