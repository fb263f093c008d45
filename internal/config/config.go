// Package config loads and validates config.yml, the one file that configures both
// mongosync_exporter (section `exporter:`) and oplog_collector (section `collector:`).
//
// Parsing is strict: unknown keys, wrong types, missing required keys and duplicate
// names are errors that name the file, line and key, so a typo never silently turns a
// setting off. `${VAR}` in any value is replaced by the environment variable VAR
// (`$$` is a literal `$`); secrets also have `*_file` variants.
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	commoncfg "github.com/prometheus/common/config"
)

// DefaultMongosyncPort is the port mongosync's HTTP API listens on unless started with --port.
const DefaultMongosyncPort = "27182"

// DefaultMongosyncTimeout bounds one read of a mongosync's progress endpoint.
const DefaultMongosyncTimeout = 5 * time.Second

// Config is the whole of config.yml.
type Config struct {
	Exporter  Exporter  `yaml:"exporter"`
	Collector Collector `yaml:"collector"`
}

// Exporter is the `exporter:` section: what mongosync_exporter reads at scrape time.
type Exporter struct {
	Mongosync []Mongosync `yaml:"mongosync"`
}

// Collector is the `collector:` section, read by oplog_collector. It has no keys yet;
// an empty or absent section is valid.
type Collector struct{}

// Mongosync is one mongosync instance whose /api/v1/progress the exporter reads.
type Mongosync struct {
	// Migration groups the instances of one (sharded) migration: one mongosync per source shard.
	Migration string `yaml:"migration"`
	// Name identifies the instance; unique across the file. It becomes the `mongosync` label.
	Name string `yaml:"name"`
	// URL is the base URL of mongosync's HTTP API; the port defaults to 27182.
	URL string `yaml:"url"`
	// Timeout bounds one read of this instance (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// HTTPClientConfig carries TLS, basic auth, bearer tokens and proxy settings for users
	// who put mongosync behind a proxy, with the same keys as a Prometheus scrape config.
	HTTPClientConfig commoncfg.HTTPClientConfig `yaml:",inline"`
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config file: %w", err)
	}
	return Parse(data, path)
}

// Parse validates data as the contents of the file named filename; relative file paths
// in the config (password_file, ca_file, ...) are taken relative to filename's directory.
func Parse(data []byte, filename string) (*Config, error) {
	cfg := &Config{}
	doc, err := decodeStrict(data, filename, cfg)
	if err != nil {
		return nil, err
	}
	cfg.finish(doc, filepath.Dir(filename))
	if err := doc.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// finish applies defaults and checks what the YAML types alone cannot: required keys,
// unique names and well-formed URLs. Problems are recorded in doc with their lines.
func (c *Config) finish(doc *document, dir string) {
	firstLine := map[string]int{}
	for i := range c.Exporter.Mongosync {
		m := &c.Exporter.Mongosync[i]
		path := fmt.Sprintf("exporter.mongosync[%d]", i)
		doc.require(path, "migration", m.Migration)
		doc.require(path, "name", m.Name)
		doc.require(path, "url", m.URL)
		if m.Name != "" {
			if line, seen := firstLine[m.Name]; seen {
				doc.addf(path+".name", "duplicate name %q (first used at line %d); every mongosync needs its own name", m.Name, line)
			} else {
				firstLine[m.Name] = doc.line(path + ".name")
			}
		}
		if m.URL != "" {
			normalized, err := normalizeMongosyncURL(m.URL)
			if err != nil {
				doc.addf(path+".url", "%v", err)
			}
			m.URL = normalized
		}
		switch {
		case m.Timeout == 0:
			m.Timeout = DefaultMongosyncTimeout
		case m.Timeout < 0:
			doc.addf(path+".timeout", "must be positive, got %s", m.Timeout)
		}
		m.HTTPClientConfig.SetDirectory(dir)
		if err := m.HTTPClientConfig.Validate(); err != nil {
			doc.addf(path, "%v", err)
		}
	}
}

// normalizeMongosyncURL checks a mongosync base URL and adds the default port.
// Credentials in the URL are refused: they would end up in logs and error messages,
// and basic_auth (with password_file) does the same job safely.
func normalizeMongosyncURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return raw, fmt.Errorf("%q is not an http:// or https:// base URL such as http://127.0.0.1:27182", redactURL(raw))
	}
	if u.User != nil {
		return raw, fmt.Errorf("credentials in the URL are not allowed; use basic_auth with password_file instead")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return raw, fmt.Errorf("%q must be a base URL without query or fragment; /api/v1/progress is appended to it", raw)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), DefaultMongosyncPort)
	}
	return u.String(), nil
}

// redactURL hides the password of a URL that may not even parse, for error messages.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "<unparsable URL>"
}
