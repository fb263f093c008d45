package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
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
	Mongosync          []Mongosync         `yaml:"mongosync"`
	Verifiers          []Verifier          `yaml:"verifiers"`
	HeartbeatDatabases []HeartbeatDatabase `yaml:"collector_metadata"`
}

// Collector is the `collector:` section, read by oplog_collector: where to store the
// captured events, where to report heartbeats, and which sources to capture.
type Collector struct {
	// Store is the oplog data store: one collection of events and one token document
	// per source, in the old collector's layout (package oplogstore).
	Store Store `yaml:"store"`
	// Metadata is the central metadata collection the heartbeats go to (optional).
	Metadata *HeartbeatTarget `yaml:"metadata"`
	// HeartbeatInterval is how often each source's heartbeat is written (default 30s).
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// CheckpointInterval is how often a quiet source's post-batch resume token is saved,
	// so its checkpoint (and lag) advance without events (default 10s).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// Retention is how long events stay in the store (a TTL index on wall); 0 keeps
	// them for ever.
	Retention time.Duration `yaml:"retention"`
	// Batch bounds one write to the store.
	Batch Batch `yaml:"batch"`
	// Buffer bounds the events read from a source and not yet written.
	Buffer Buffer `yaml:"buffer"`
	// MaxBackoff caps the wait between two attempts to reach a source or the store.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// LeaseTTL is how long a source's lease outlives its holder's last renewal: a
	// standby collector takes the source over that long after the holder died.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// StoreStallAfter is how long a store write may go unacknowledged before the
	// source reports store_unavailable.
	StoreStallAfter time.Duration `yaml:"store_stall_after"`
	Sources         []Source      `yaml:"sources"`
}

// Store locates the oplog data store.
type Store struct {
	MongoURI `yaml:",inline"`
	Database string `yaml:"database"`
}

// HeartbeatTarget locates the central metadata collection (the old collector's
// CENTRAL_METADATA_DB_URI), where the heartbeats go.
type HeartbeatTarget struct {
	MongoURI   `yaml:",inline"`
	Database   string `yaml:"database"`
	Collection string `yaml:"collection"`
}

// Batch bounds one write to the store: one transaction.
type Batch struct {
	MaxEvents int `yaml:"max_events"`
	MaxBytes  int `yaml:"max_bytes"`
	// MinEvents and MaxWait make a source that writes slowly cost fewer, larger reads
	// and writes: after a read that was not full, reading waits about as long as
	// MinEvents events take to come, at most MaxWait (0: not at all).
	MinEvents int           `yaml:"min_events"`
	MaxWait   time.Duration `yaml:"max_wait"`
}

// Buffer bounds the events held between reading and writing, in count and in bytes.
type Buffer struct {
	MaxEvents int `yaml:"max_events"`
	MaxBytes  int `yaml:"max_bytes"`
}

// Source is one cluster whose change stream is captured.
type Source struct {
	// Name identifies the source: the oplogs_<name> collection, the heartbeat document's
	// name and the source_cluster label.
	Name     string `yaml:"name"`
	MongoURI `yaml:",inline"`
	// Database limits the capture to one database; empty captures the whole cluster.
	Database string `yaml:"database"`
	// FullDocument is the change stream's fullDocument mode (default updateLookup).
	FullDocument string `yaml:"full_document"`
}

// Defaults of the collector section.
const (
	DefaultStoreDatabase      = "oplog_backup_db"
	DefaultHeartbeatInterval  = 30 * time.Second
	DefaultCheckpointInterval = 10 * time.Second
	DefaultBatchMaxEvents     = 4000
	DefaultBatchMaxBytes      = 8 << 20
	DefaultBatchMinEvents     = 75
	DefaultBatchMaxWait       = 100 * time.Millisecond
	DefaultBufferMaxEvents    = 20000
	DefaultBufferMaxBytes     = 64 << 20
	DefaultMaxBackoff         = time.Minute
	DefaultFullDocument       = "updateLookup"
	DefaultLeaseTTL           = 30 * time.Second
	DefaultStoreStallAfter    = 5 * time.Second
	minLeaseTTL               = time.Second
	maxBatchBytes             = 15 << 20
)

// fullDocumentModes are the change stream's fullDocument options.
var fullDocumentModes = []string{"default", "updateLookup", "whenAvailable", "required"}

// Mongosync is one mongosync instance whose /api/v1/progress the exporter reads.
type Mongosync struct {
	// Migration groups the instances of one (sharded) migration: one mongosync per source shard.
	Migration string `yaml:"migration"`
	// Name identifies the instance; unique across the file. It becomes the `mongosync` label.
	Name string `yaml:"name"`
	// URL is the base URL of mongosync's HTTP API; the port defaults to 27182.
	URL string `yaml:"url"`
	// URLShown is the URL for messages: as written (${VAR}) when it came from the
	// environment, which may put in it what must not reach a log.
	URLShown string `yaml:"-"`
	// Timeout bounds one read of this instance (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// HTTPClientConfig carries TLS, basic auth, bearer tokens and proxy settings for users
	// who put mongosync behind a proxy, with the same keys as a Prometheus scrape config.
	HTTPClientConfig commoncfg.HTTPClientConfig `yaml:",inline"`
}

// Defaults of the verifier and collector-metadata entries.
const (
	DefaultVerifierAPIPort             = "27020"
	DefaultNamespaceLimit              = 200
	DefaultChangeEventTypeLimit        = 50
	DefaultSourceLimit                 = 500
	DefaultNamespaceRefresh            = 30 * time.Second
	DefaultMongoTimeout                = 5 * time.Second
	DefaultCollectorMetadataDatabase   = "oplog_manager_orchestrator_db"
	DefaultCollectorMetadataCollection = "source_clusters_info"
)

// Verifier is one migration-verifier: its metadata database and, optionally, its HTTP API.
type Verifier struct {
	// Name identifies the verifier; unique. It becomes the `verifier` label.
	Name string `yaml:"name"`
	// Migration names the migration the verifier checks, as the mongosync entries do; it
	// becomes the `migration` label of every series of this verifier (empty when unset).
	Migration string `yaml:"migration"`
	// MongoURI locates the metadata cluster (the verifier's --metaURI).
	MongoURI `yaml:",inline"`
	// Database is the metadata database (--metaDBName). Empty: detect the default of
	// current verifiers, then the one of verifiers before v0.2.0.
	Database string `yaml:"database"`
	// APIURL is the verifier's HTTP API (--serverPort); the port defaults to 27020.
	APIURL string `yaml:"api_url"`
	// Timeout bounds one scrape of this verifier, database and API alike (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// NamespaceLimit caps the per-namespace series (default 200; 0 turns them off).
	NamespaceLimit *int `yaml:"namespace_limit"`
	// NamespaceInclude keeps only the namespaces ("db.coll") it matches; empty keeps all.
	NamespaceInclude string `yaml:"namespace_include"`
	// NamespaceRefresh is how long the per-namespace figures are reused (default 30s):
	// they come from an aggregation that scans a whole generation of tasks.
	NamespaceRefresh time.Duration `yaml:"namespace_refresh_interval"`
	// ChangeEventTypeLimit caps the op_type series of each change reader (default 50).
	ChangeEventTypeLimit *int `yaml:"change_event_type_limit"`
}

// HeartbeatDatabase is a central metadata database where oplog collectors, this
// project's and the old one (package oplogstore), write their heartbeats.
type HeartbeatDatabase struct {
	// Name identifies the database; unique. It becomes the `metadata` label.
	Name       string `yaml:"name"`
	MongoURI   `yaml:",inline"`
	Database   string        `yaml:"database"`
	Collection string        `yaml:"collection"`
	Timeout    time.Duration `yaml:"timeout"`
	// SourceLimit caps the source clusters exported (default 500), in name order.
	SourceLimit *int `yaml:"source_limit"`
}

// finish applies defaults and checks what the YAML types alone cannot, for the
// sections of scope: required keys, unique names, well-formed URLs, connection strings
// as the driver reads them, HTTP client settings as the client is built from them.
// Problems are recorded in doc with their lines.
func (c *Config) finish(doc *document, dir string, scope Scope) {
	if scope != ForCollector {
		c.finishMongosync(doc, dir)
		c.finishVerifiers(doc, dir)
		c.finishCollectorMetadata(doc, dir)
	}
	if scope != ForExporter {
		c.Collector.finish(doc, dir, scope == ForCollector)
	}
}

func (c *Config) finishMongosync(doc *document, dir string) {
	names := uniqueNames{doc: doc, what: "mongosync"}
	for i := range c.Exporter.Mongosync {
		m := &c.Exporter.Mongosync[i]
		path := fmt.Sprintf("exporter.mongosync[%d]", i)
		doc.require(path, "migration", m.Migration)
		doc.require(path, "name", m.Name)
		doc.require(path, "url", m.URL)
		names.check(path, m.Name)
		if m.URL != "" {
			written := doc.written(path+".url", m.URL)
			normalized, err := normalizeBaseURL(m.URL, written, DefaultMongosyncPort, "/api/v1/progress")
			if err != nil {
				doc.addf(path+".url", "%v", err)
			}
			m.URL, m.URLShown = normalized, normalized
			if written != m.URL && doc.fromEnvironment(path+".url") {
				m.URLShown = written
			}
		}
		m.Timeout = positiveOrDefault(doc, path+".timeout", m.Timeout, DefaultMongosyncTimeout)
		m.HTTPClientConfig.SetDirectory(dir)
		if err := m.HTTPClientConfig.Validate(); err != nil {
			doc.addf(path, "%v", err)
		} else if _, err := commoncfg.NewClientFromConfig(m.HTTPClientConfig, "mongosync_exporter"); err != nil {
			doc.addf(path, "%v", err) // what the exporter would meet building the client: a CA file it cannot read, say
		}
	}
}

// finish checks the collector section. required is oplog_collector's view: it needs a
// store and sources to start, at every reload and in --config.check alike. Otherwise an
// absent section is valid.
func (c *Collector) finish(doc *document, dir string, required bool) {
	if len(c.Sources) == 0 && c.Store.URI == "" && c.Store.URIFile == "" && c.Metadata == nil {
		if required {
			doc.addf("collector", "no sources to capture: list them under collector.sources, with the store they are written to under collector.store (README.md, \"Running the collector\")")
		}
		return
	}
	if required && len(c.Sources) == 0 {
		doc.addf("collector.sources", "empty: list at least one source to capture (README.md, \"Running the collector\")")
	}
	c.Store.MongoURI.check(doc, "collector.store", dir)
	if c.Store.Database == "" {
		c.Store.Database = DefaultStoreDatabase
	}
	if c.Metadata != nil {
		c.Metadata.MongoURI.check(doc, "collector.metadata", dir)
		if c.Metadata.Database == "" {
			c.Metadata.Database = DefaultCollectorMetadataDatabase
		}
		if c.Metadata.Collection == "" {
			c.Metadata.Collection = DefaultCollectorMetadataCollection
		}
	}
	c.HeartbeatInterval = positiveOrDefault(doc, "collector.heartbeat_interval", c.HeartbeatInterval, DefaultHeartbeatInterval)
	c.CheckpointInterval = positiveOrDefault(doc, "collector.checkpoint_interval", c.CheckpointInterval, DefaultCheckpointInterval)
	c.MaxBackoff = positiveOrDefault(doc, "collector.max_backoff", c.MaxBackoff, DefaultMaxBackoff)
	if _, written := doc.lines["collector.batch.max_wait"]; !written {
		c.Batch.MaxWait = DefaultBatchMaxWait // written, 0 is no wait
	} else if c.Batch.MaxWait < 0 {
		doc.addf("collector.batch.max_wait", "must be positive, or 0 to read again at once after every read; got %s", c.Batch.MaxWait)
	}
	c.StoreStallAfter = positiveOrDefault(doc, "collector.store_stall_after", c.StoreStallAfter, DefaultStoreStallAfter)
	if c.LeaseTTL = positiveOrDefault(doc, "collector.lease_ttl", c.LeaseTTL, DefaultLeaseTTL); c.LeaseTTL < minLeaseTTL {
		doc.addf("collector.lease_ttl", "at least %s (the holder renews every third of it), got %s", minLeaseTTL, c.LeaseTTL)
	}
	if c.Retention < 0 {
		doc.addf("collector.retention", "must be positive, or 0 to keep events for ever; got %s", c.Retention)
	}
	c.Batch.MaxEvents = countOrDefault(doc, "collector.batch.max_events", c.Batch.MaxEvents, DefaultBatchMaxEvents)
	c.Batch.MaxBytes = countOrDefault(doc, "collector.batch.max_bytes", c.Batch.MaxBytes, DefaultBatchMaxBytes)
	if c.Batch.MinEvents = countOrDefault(doc, "collector.batch.min_events", c.Batch.MinEvents, min(DefaultBatchMinEvents, c.Batch.MaxEvents)); c.Batch.MinEvents > c.Batch.MaxEvents {
		doc.addf("collector.batch.min_events", "at most batch.max_events (%d), got %d", c.Batch.MaxEvents, c.Batch.MinEvents)
	}
	c.Buffer.MaxEvents = countOrDefault(doc, "collector.buffer.max_events", c.Buffer.MaxEvents, DefaultBufferMaxEvents)
	c.Buffer.MaxBytes = countOrDefault(doc, "collector.buffer.max_bytes", c.Buffer.MaxBytes, DefaultBufferMaxBytes)
	if c.Batch.MaxBytes > maxBatchBytes {
		doc.addf("collector.batch.max_bytes", "at most %d (15 MiB: one insert command must stay under 16 MiB), got %d", maxBatchBytes, c.Batch.MaxBytes)
	}
	if c.Buffer.MaxEvents < c.Batch.MaxEvents {
		doc.addf("collector.buffer.max_events", "must hold at least one batch (batch.max_events %d), got %d", c.Batch.MaxEvents, c.Buffer.MaxEvents)
	}
	names := uniqueNames{doc: doc, what: "source"}
	for i := range c.Sources {
		s := &c.Sources[i]
		path := fmt.Sprintf("collector.sources[%d]", i)
		doc.require(path, "name", s.Name)
		names.check(path, s.Name)
		if s.Name != "" && !sourceName.MatchString(s.Name) {
			doc.addf(path+".name", "%q cannot name the collections oplogs_<name> and resume_tokens_for_<name>: use letters, digits, _ and -", s.Name)
		}
		s.MongoURI.check(doc, path, dir)
		if s.FullDocument == "" {
			s.FullDocument = DefaultFullDocument
		} else if !slices.Contains(fullDocumentModes, s.FullDocument) {
			doc.addf(path+".full_document", "%q is not one of %s", s.FullDocument, strings.Join(fullDocumentModes, ", "))
		}
	}
}

var sourceName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// countOrDefault applies a count's default and refuses a negative one.
func countOrDefault(doc *document, path string, n, def int) int {
	switch {
	case n == 0:
		return def
	case n < 0:
		doc.addf(path, "must be positive, got %d", n)
	}
	return n
}

func (c *Config) finishVerifiers(doc *document, dir string) {
	names := uniqueNames{doc: doc, what: "verifier"}
	for i := range c.Exporter.Verifiers {
		v := &c.Exporter.Verifiers[i]
		path := fmt.Sprintf("exporter.verifiers[%d]", i)
		doc.require(path, "name", v.Name)
		names.check(path, v.Name)
		v.MongoURI.check(doc, path, dir)
		if v.APIURL != "" {
			normalized, err := normalizeBaseURL(v.APIURL, doc.written(path+".api_url", v.APIURL), DefaultVerifierAPIPort, "/api/v1/progress")
			if err != nil {
				doc.addf(path+".api_url", "%v", err)
			}
			v.APIURL = normalized
		}
		v.Timeout = positiveOrDefault(doc, path+".timeout", v.Timeout, DefaultMongoTimeout)
		v.NamespaceRefresh = positiveOrDefault(doc, path+".namespace_refresh_interval", v.NamespaceRefresh, DefaultNamespaceRefresh)
		v.NamespaceLimit = limitOrDefault(doc, path+".namespace_limit", v.NamespaceLimit, DefaultNamespaceLimit, "no per-namespace series")
		v.ChangeEventTypeLimit = limitOrDefault(doc, path+".change_event_type_limit", v.ChangeEventTypeLimit, DefaultChangeEventTypeLimit, "no change event series")
		if _, err := regexp.Compile(v.NamespaceInclude); err != nil {
			doc.addf(path+".namespace_include", "not a valid regular expression: %v", err)
		}
	}
}

func (c *Config) finishCollectorMetadata(doc *document, dir string) {
	names := uniqueNames{doc: doc, what: "collector_metadata entry"}
	for i := range c.Exporter.HeartbeatDatabases {
		m := &c.Exporter.HeartbeatDatabases[i]
		path := fmt.Sprintf("exporter.collector_metadata[%d]", i)
		doc.require(path, "name", m.Name)
		names.check(path, m.Name)
		m.MongoURI.check(doc, path, dir)
		m.Timeout = positiveOrDefault(doc, path+".timeout", m.Timeout, DefaultMongoTimeout)
		if m.Database == "" {
			m.Database = DefaultCollectorMetadataDatabase
		}
		if m.Collection == "" {
			m.Collection = DefaultCollectorMetadataCollection
		}
		m.SourceLimit = limitOrDefault(doc, path+".source_limit", m.SourceLimit, DefaultSourceLimit, "no per-source series")
	}
}

// limitOrDefault applies a series limit's default (when unset) and refuses a negative one.
func limitOrDefault(doc *document, path string, limit *int, def int, zeroMeans string) *int {
	if limit == nil {
		return &def
	}
	if *limit < 0 {
		doc.addf(path, "must be 0 (%s) or more, got %d", zeroMeans, *limit)
	}
	return limit
}

// uniqueNames reports a name used twice in one list.
type uniqueNames struct {
	doc   *document
	what  string
	first map[string]int
}

func (u *uniqueNames) check(path, name string) {
	if name == "" {
		return
	}
	if u.first == nil {
		u.first = map[string]int{}
	}
	if line, seen := u.first[name]; seen {
		u.doc.addf(path+".name", "duplicate name %q (first used at line %d); every %s needs its own name", name, line, u.what)
		return
	}
	u.first[name] = u.doc.line(path + ".name")
}

// positiveOrDefault applies a duration's default and refuses a negative one.
func positiveOrDefault(doc *document, path string, d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		doc.addf(path, "must be positive, got %s", d)
	}
	return d
}

// normalizeBaseURL checks the base URL of an HTTP API and adds its default port; shown
// is how messages quote it. Credentials in the URL are refused: they would end up in
// logs and error messages, and basic_auth (with password_file) does the same job safely.
func normalizeBaseURL(raw, shown, defaultPort, endpoint string) (string, error) {
	if shown == raw {
		shown = redactURL(raw)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return raw, fmt.Errorf("%q is not an http:// or https:// base URL such as http://127.0.0.1:%s", shown, defaultPort)
	}
	if u.User != nil {
		return raw, fmt.Errorf("credentials in the URL are not allowed; use basic_auth with password_file instead")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return raw, fmt.Errorf("%q must be a base URL without query or fragment; %s is appended to it", shown, endpoint)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), defaultPort)
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
