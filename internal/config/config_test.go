package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadGood(t *testing.T) {
	t.Setenv("TEST_MONGOSYNC_PASSWORD", "pa$$word ${not-expanded-twice}")
	t.Setenv("TEST_VERIFIER_URI", "mongodb://verifier:s3cret@meta0:27017/?replicaSet=meta")
	cfg, err := bothSections.Load("testdata/good.yml")
	if err != nil {
		t.Fatal(err)
	}
	ms := cfg.Exporter.Mongosync
	if len(ms) != 3 {
		t.Fatalf("got %d mongosync entries, want 3", len(ms))
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"default port added", ms[0].URL, "http://mongosync-0:27182"},
		{"default timeout", ms[0].Timeout, DefaultMongosyncTimeout},
		{"explicit port and path kept", ms[1].URL, "https://mongosync-1.example.net:8443/proxy/shard1/"},
		{"explicit timeout", ms[1].Timeout, 90 * time.Second},
		{"password from the environment, once", string(ms[1].HTTPClientConfig.BasicAuth.Password), "pa$$word ${not-expanded-twice}"},
		{"relative ca_file joined to the config's directory", ms[1].HTTPClientConfig.TLSConfig.CAFile, filepath.Join("testdata", "secrets", "ca.pem")},
		{"credentials_file joined too", ms[2].HTTPClientConfig.Authorization.CredentialsFile, filepath.Join("testdata", "secrets", "token")},
		{"migration", ms[2].Migration, "other"},
	}
	vs, cm := cfg.Exporter.Verifiers, cfg.Exporter.HeartbeatDatabases
	if len(vs) != 2 || len(cm) != 1 {
		t.Fatalf("got %d verifiers and %d collector_metadata entries, want 2 and 1", len(vs), len(cm))
	}
	checks = append(checks, []struct {
		what      string
		got, want any
	}{
		{"verifier uri from the environment", string(vs[0].URI), "mongodb://verifier:s3cret@meta0:27017/?replicaSet=meta"},
		{"verifier migration", vs[0].Migration, "orders"},
		{"verifier migration optional", vs[1].Migration, ""},
		{"verifier api_url default port", vs[0].APIURL, "http://verifier-host:27020"},
		{"verifier default timeout", vs[0].Timeout, DefaultMongoTimeout},
		{"verifier default namespace limit", *vs[0].NamespaceLimit, DefaultNamespaceLimit},
		{"verifier default refresh", vs[0].NamespaceRefresh, DefaultNamespaceRefresh},
		{"verifier database detected when empty", vs[0].Database, ""},
		{"uri_file joined to the config's directory", vs[1].URIFile, filepath.Join("testdata", "secrets", "verifier_uri")},
		{"namespace_limit 0 kept", *vs[1].NamespaceLimit, 0},
		{"namespace_include", vs[1].NamespaceInclude, `^shop\.`},
		{"explicit refresh", vs[1].NamespaceRefresh, time.Minute},
		{"collector_metadata default database", cm[0].Database, DefaultCollectorMetadataDatabase},
		{"collector_metadata default collection", cm[0].Collection, DefaultCollectorMetadataCollection},
	}...)
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
}

// A slow source's batches wait for more events by default (batch.min_events,
// batch.max_wait); a max_wait of 0 written out means no wait, and min_events never
// exceeds a smaller max_events by default.
func TestBatchDefaults(t *testing.T) {
	for _, c := range []struct {
		batch     string
		minEvents int
		maxWait   time.Duration
	}{
		{"", DefaultBatchMinEvents, DefaultBatchMaxWait},
		{"  batch: {max_wait: 0s}\n", DefaultBatchMinEvents, 0},
		{"  batch: {max_events: 20, max_wait: 250ms}\n", 20, 250 * time.Millisecond},
		{"  batch: {min_events: 1}\n", 1, DefaultBatchMaxWait},
	} {
		cfg, err := bothSections.Parse([]byte("collector:\n  store: {uri: \"mongodb://store\"}\n"+c.batch+"  sources: [{name: a, uri: \"mongodb://a\"}]\n"), "batch.yml")
		if err != nil {
			t.Fatalf("%q: %v", c.batch, err)
		}
		if b := cfg.Collector.Batch; b.MinEvents != c.minEvents || b.MaxWait != c.maxWait {
			t.Errorf("%q: min_events %d, max_wait %v; want %d, %v", c.batch, b.MinEvents, b.MaxWait, c.minEvents, c.maxWait)
		}
	}
}

// Every file in testdata/bad must fail with exactly the text of its .err sibling: each
// problem on its own line, in file order, naming file, line and key.
func TestLoadBad(t *testing.T) {
	t.Setenv("TEST_CONFIG_SECRET_VALUE", "hunter2")
	files, err := filepath.Glob("testdata/bad/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(file, ".yml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			_, err = bothSections.Load(file)
			if err == nil {
				t.Fatal("loaded without error")
			}
			if got := err.Error(); got != strings.TrimSpace(string(want)) {
				t.Errorf("error text:\n%s\nwant:\n%s", got, want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a secret reached the error text: %s", err)
			}
		})
	}
}

func TestProjectConfigIsValid(t *testing.T) {
	if _, err := bothSections.Load("../../config.yml"); err != nil {
		t.Fatalf("the config.yml shipped with the project does not load:\n%v", err)
	}
}

func TestEmptyFileIsValid(t *testing.T) {
	for _, data := range []string{"", "# nothing configured yet\n", "exporter:\ncollector:\n"} {
		cfg, err := bothSections.Parse([]byte(data), "empty.yml")
		if err != nil {
			t.Errorf("%q: %v", data, err)
			continue
		}
		if len(cfg.Exporter.Mongosync) != 0 {
			t.Errorf("%q: got mongosync entries from nothing", data)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := bothSections.Load("testdata/does-not-exist.yml")
	if err == nil || !strings.Contains(err.Error(), "does-not-exist.yml") {
		t.Fatalf("error = %v, want one naming the file", err)
	}
}

func TestExpandEnv(t *testing.T) {
	t.Setenv("TEST_EXPAND_A", "alpha")
	t.Setenv("TEST_EXPAND_EMPTY", "")
	cases := []struct {
		in, want, err string
	}{
		{"plain", "plain", ""},
		{"${TEST_EXPAND_A}", "alpha", ""},
		{"x-${TEST_EXPAND_A}-${TEST_EXPAND_A}", "x-alpha-alpha", ""},
		{"[${TEST_EXPAND_EMPTY}]", "[]", ""},
		{"pa$sword$", "pa$sword$", ""}, // a lone $ is kept: passwords contain them
		{"$${TEST_EXPAND_A}", "${TEST_EXPAND_A}", ""},
		{"${TEST_EXPAND_UNSET_VAR}", "", "environment variable TEST_EXPAND_UNSET_VAR is not set"},
		{"${}", "", "${} is not a valid environment variable reference"},
		{"${A-B}", "", "${A-B} is not a valid environment variable reference"},
		{"${TEST_EXPAND_A", "", "unterminated ${ (write $${ for a literal ${)"},
	}
	for _, c := range cases {
		got, err := expandEnv(c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("expandEnv(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// A value from the environment keeps its YAML meaning: a string field gets the text
// even when it reads like a bool or null; other fields get the resolved type.
func TestExpandedValuesKeepTheirType(t *testing.T) {
	t.Setenv("TEST_TYPE_NAME", "null")
	t.Setenv("TEST_TYPE_TIMEOUT", "7s")
	t.Setenv("TEST_TYPE_BOOL", "false")
	cfg, err := bothSections.Parse([]byte(`exporter:
  mongosync:
    - migration: m
      name: ${TEST_TYPE_NAME}
      url: http://h
      timeout: ${TEST_TYPE_TIMEOUT}
      enable_http2: ${TEST_TYPE_BOOL}
`), "inline.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Exporter.Mongosync[0]
	if m.Name != "null" || m.Timeout != 7*time.Second || m.HTTPClientConfig.EnableHTTP2 {
		t.Fatalf("got name %q timeout %v enable_http2 %v", m.Name, m.Timeout, m.HTTPClientConfig.EnableHTTP2)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"timout", "timeout", 1}, {"url", "uri", 1}, {"abc", "", 3}, {"kitten", "sitting", 3}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}
