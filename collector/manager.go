// Package collector captures the change streams of MongoDB source clusters into an oplog
// store for point-in-time recovery, in the layout of the old Python oplog collector, and
// without losing or duplicating an event (DESIGN.md, "Collector rules").
package collector

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/redact"
)

// Manager runs every configured source, each on its own: one failing, slow or reset
// source never stalls the others.
type Manager struct {
	logger  log.Logger
	metrics *metrics

	mu           sync.Mutex
	cfg          *config.Collector
	shared       *shared
	sources      map[string]*running
	deregistered map[string]bool // removed while running; not restarted until the config drops them
}

type running struct {
	src    *source
	client *mongo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// NewManager registers the collector's metrics with reg.
func NewManager(reg prometheus.Registerer, logger log.Logger) *Manager {
	return &Manager{
		logger:       logger,
		metrics:      newMetrics(reg),
		sources:      map[string]*running{},
		deregistered: map[string]bool{},
	}
}

// Apply puts cfg in force: sources added or changed start, sources removed or changed
// stop; the others go on untouched. A change of the store, the metadata database or the
// shared settings restarts every source.
func (m *Manager) Apply(cfg *config.Config) error {
	c := &cfg.Collector
	if c.Store.URI == "" && c.Store.URIFile == "" {
		return errors.New("collector.store: no store configured; oplog_collector needs a collector section with a store and sources")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg == nil || !sameShared(m.cfg, c) {
		// New clients first: if they cannot be made, nothing changes. The old ones are
		// closed only once the sources using them have written what they read.
		next, err := connectShared(c)
		if err != nil {
			return err
		}
		m.stopLocked(slices.Collect(maps.Keys(m.sources)))
		m.shared.close()
		m.shared = next
	}
	wanted := map[string]config.Source{}
	for _, s := range c.Sources {
		wanted[s.Name] = s
	}
	var stop []string
	for name, r := range m.sources {
		if w, ok := wanted[name]; !ok || !reflect.DeepEqual(w, r.src.cfg) {
			stop = append(stop, name)
		}
	}
	m.stopLocked(stop)
	for name := range m.deregistered {
		if _, ok := wanted[name]; !ok {
			delete(m.deregistered, name) // gone from the config: a later return is a new registration
		}
	}
	var errs []error
	for _, s := range c.Sources {
		if _, ok := m.sources[s.Name]; ok {
			continue
		}
		if m.deregistered[s.Name] {
			level.Warn(m.logger).Log("msg", "Source was de-registered; remove it from the config file, or it is captured again at the next start", "source_cluster", s.Name)
			continue
		}
		if err := m.startLocked(s, c); err != nil {
			errs = append(errs, err)
		}
	}
	m.cfg = c
	return errors.Join(errs...)
}

// sameShared tells whether two collector sections differ only in their sources.
func sameShared(a, b *config.Collector) bool {
	x, y := *a, *b
	x.Sources, y.Sources = nil, nil
	return reflect.DeepEqual(x, y)
}

// shared is what every source of a config uses: the store and the heartbeats.
type shared struct {
	storeClient, metaClient *mongo.Client
	storeDB                 *mongo.Database
	beats                   *heartbeats
}

func connectShared(c *config.Collector) (*shared, error) {
	storeClient, err := connect(c.Store.MongoURI, "oplog_collector store")
	if err != nil {
		return nil, fmt.Errorf("collector.store: %w", err)
	}
	sh := &shared{storeClient: storeClient, storeDB: storeClient.Database(c.Store.Database), beats: &heartbeats{}}
	if c.Metadata != nil {
		if sh.metaClient, err = connect(c.Metadata.MongoURI, "oplog_collector metadata"); err != nil {
			sh.close()
			return nil, fmt.Errorf("collector.metadata: %w", err)
		}
		sh.beats.coll = sh.metaClient.Database(c.Metadata.Database).Collection(c.Metadata.Collection,
			options.Collection().SetWriteConcern(writeconcern.Majority()))
	}
	return sh, nil
}

func (sh *shared) close() {
	if sh == nil {
		return
	}
	for _, client := range []*mongo.Client{sh.storeClient, sh.metaClient} {
		if client != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = client.Disconnect(ctx)
			cancel()
		}
	}
}

// connect makes a client without contacting the server: an unreachable cluster is a
// state to report and retry, not a reason to refuse the config.
func connect(uri config.MongoURI, appName string) (*mongo.Client, error) {
	s, err := uri.Resolve()
	if err != nil {
		return nil, err
	}
	client, err := mongo.Connect(options.Client().ApplyURI(s).SetAppName(appName).
		SetWriteConcern(writeconcern.Majority()).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return nil, errors.New(redact.Credentials(err.Error()))
	}
	return client, nil
}

func (m *Manager) startLocked(s config.Source, c *config.Collector) error {
	client, err := connect(s.MongoURI, "oplog_collector")
	if err != nil {
		return fmt.Errorf("collector source %q: %w", s.Name, err)
	}
	src := newSource(s, c, client, newSourceStore(m.shared.storeDB, s.Name), m.shared.beats, m.metrics, m.logger)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{src: src, client: client, cancel: cancel, done: make(chan struct{})}
	m.sources[s.Name] = r
	go func() {
		defer close(r.done)
		src.run(ctx)
		_ = client.Disconnect(context.Background())
	}()
	return nil
}

// stopLocked stops the named sources at once and waits for them to write what they read.
func (m *Manager) stopLocked(names []string) {
	for _, name := range names {
		m.sources[name].cancel()
	}
	for _, name := range names {
		<-m.sources[name].done
		delete(m.sources, name)
	}
}

// Stop stops every source: each writes what it has read, saves its token and reports
// stopped. The manager can be given a config again afterwards.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopLocked(slices.Collect(maps.Keys(m.sources)))
	m.shared.close()
	m.shared, m.cfg = nil, nil
}

// ErrUnknownSource is returned for a name the running config does not capture.
var ErrUnknownSource = errors.New("no such source in the running configuration")

// Reset is the old tool's "Reset Oplog Store": stop the source, wipe its events and
// token, and capture again from now. The other sources are not touched.
func (m *Manager) Reset(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.sources[name]
	if !ok {
		return fmt.Errorf("%q: %w", name, ErrUnknownSource)
	}
	cfg := r.src.cfg
	m.stopLocked([]string{name})
	m.metrics.setState(name, stateResettingOplogStore)
	_ = m.shared.beats.report(ctx, name, heartbeat{status: stateResettingOplogStore, scope: cfg.Database, running: true})
	if err := newSourceStore(m.shared.storeDB, name).wipe(ctx); err != nil {
		_ = m.startLocked(cfg, m.cfg) // capture goes on from the saved token
		return err
	}
	level.Info(m.logger).Log("msg", "Oplog store reset; capturing from now", "source_cluster", name)
	return m.startLocked(cfg, m.cfg)
}

// Deregister stops the source, wipes its events and token, and deletes its metadata
// document. It stays stopped until the config file no longer lists it.
func (m *Manager) Deregister(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sources[name]; !ok {
		return fmt.Errorf("%q: %w", name, ErrUnknownSource)
	}
	m.stopLocked([]string{name})
	m.deregistered[name] = true
	m.metrics.forget(name)
	if err := newSourceStore(m.shared.storeDB, name).wipe(ctx); err != nil {
		return err
	}
	return m.shared.beats.remove(ctx, name)
}

// Status returns every source's state, by name.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Status
	for _, name := range slices.Sorted(maps.Keys(m.sources)) {
		out = append(out, m.sources[name].src.status())
	}
	return out
}
