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
)

// Options are the manager's settings that do not come from the config file.
type Options struct {
	// Instance names this process in leases and heartbeats.
	Instance Instance
	// StopGrace bounds how long a stopping source may take to write what it has read
	// (a reload or a reset); what is not written then is read again from the source.
	StopGrace time.Duration
}

// Manager runs every configured source, each on its own: one failing, slow or reset
// source never stalls the others.
type Manager struct {
	logger  log.Logger
	metrics *metrics
	opts    Options

	ops sync.Mutex // one change at a time: Apply, Reset, Deregister, Stop

	mu      sync.Mutex // guards what follows; never held during network I/O
	cfg     *config.Collector
	shared  *shared
	sources map[string]*running
}

type running struct {
	src    *source
	client *mongo.Client
	cancel context.CancelCauseFunc // stop reading
	kill   context.CancelFunc      // stop writing too
	done   chan struct{}
}

// NewManager registers the collector's metrics with reg.
func NewManager(reg prometheus.Registerer, logger log.Logger, opts Options) *Manager {
	return &Manager{logger: logger, metrics: newMetrics(reg), opts: opts, sources: map[string]*running{}}
}

// Apply puts cfg in force: sources added or changed start, sources removed or changed
// stop; the others go on untouched. A change of the store, the metadata database or the
// shared settings restarts every source; a new store with no position saved goes on
// from where the old one stopped.
func (m *Manager) Apply(cfg *config.Config) error {
	c := &cfg.Collector
	if c.Store.URI == "" && c.Store.URIFile == "" {
		return errors.New("collector.store: no store configured; oplog_collector needs a collector section with a store and sources")
	}
	m.ops.Lock()
	defer m.ops.Unlock()
	carry := map[string]*position{}
	if m.cfg == nil || !sameShared(m.cfg, c) {
		// New clients first: if they cannot be made, nothing changes. The old ones are
		// closed only once the sources using them have written what they read.
		next, err := connectShared(c, m.opts.Instance, m.logger)
		if err != nil {
			return err
		}
		for name, r := range m.snapshot() {
			m.stop(r, errKeepLease)
			m.remove(name)
			carry[name] = r.src.progress.position()
		}
		m.shared.close()
		m.mu.Lock()
		m.shared = next
		m.mu.Unlock()
	}
	wanted := map[string]config.Source{}
	for _, s := range c.Sources {
		wanted[s.Name] = s
	}
	for name, r := range m.snapshot() {
		w, listed := wanted[name]
		if listed && reflect.DeepEqual(w, r.src.cfg) {
			continue
		}
		m.stop(r, errKeepLease)
		if !listed {
			m.remove(name)
			m.metrics.forget(name)
		}
	}
	m.mu.Lock()
	m.cfg = c
	m.mu.Unlock()
	var errs []error
	for _, s := range c.Sources {
		if _, ok := m.snapshot()[s.Name]; ok {
			continue
		}
		if err := m.start(s, startPoint{carry: carry[s.Name]}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sameShared tells whether two collector sections differ only in their sources.
func sameShared(a, b *config.Collector) bool {
	x, y := *a, *b
	x.Sources, y.Sources = nil, nil
	return reflect.DeepEqual(x, y)
}

// shared is what every source of a config uses: the store, the heartbeats, the leases.
type shared struct {
	storeClient, metaClient *mongo.Client
	storeDB                 *mongo.Database
	beats                   *heartbeats
	leases                  *leases
}

func connectShared(c *config.Collector, me Instance, logger log.Logger) (*shared, error) {
	storeClient, err := connect(c.Store.MongoURI, "oplog_collector store")
	if err != nil {
		return nil, fmt.Errorf("collector.store: %w", err)
	}
	majority := options.Collection().SetWriteConcern(writeconcern.Majority())
	sh := &shared{storeClient: storeClient, storeDB: storeClient.Database(c.Store.Database), beats: &heartbeats{}}
	// The lease lives beside the store, whatever else the config says: every command
	// that knows the store finds it, and the store can check it in each write.
	sh.leases = &leases{coll: sh.storeDB.Collection(LeaseCollection, majority), beats: sh.beats, me: me, proc: thisProcess(), timing: leaseTiming{ttl: c.LeaseTTL}, logger: logger}
	if c.Metadata != nil {
		if sh.metaClient, err = connect(c.Metadata.MongoURI, "oplog_collector metadata"); err != nil {
			sh.close()
			return nil, fmt.Errorf("collector.metadata: %w", err)
		}
		metaDB := sh.metaClient.Database(c.Metadata.Database)
		sh.beats.coll = metaDB.Collection(c.Metadata.Collection, majority)
		sh.leases.legacy = metaDB.Collection(LeaseCollection, majority)
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
// state to report and retry, not a reason to refuse the config. The connection string
// is checked as the configuration check checks it, so errors never quote it.
func connect(uri config.MongoURI, appName string) (*mongo.Client, error) {
	s, err := uri.Resolve()
	if err != nil {
		return nil, err
	}
	if err := config.ValidateMongoURI(s); err != nil {
		return nil, err
	}
	client, err := mongo.Connect(options.Client().ApplyURI(s).SetAppName(appName).
		SetWriteConcern(writeconcern.Majority()).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return nil, errors.New(describe(err))
	}
	return client, nil
}

// snapshot is the running sources at this moment.
func (m *Manager) snapshot() map[string]*running {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.sources)
}

// start runs the source s of the current config. The caller holds ops.
func (m *Manager) start(s config.Source, at startPoint) error {
	client, err := connect(s.MongoURI, "oplog_collector")
	if err != nil {
		return fmt.Errorf("collector source %q: %w", s.Name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	src := newSource(s, m.cfg, client, m.shared, m.metrics, m.logger, at)
	ctx, cancel := context.WithCancelCause(context.Background())
	kill, killCancel := context.WithCancel(context.Background())
	r := &running{src: src, client: client, cancel: cancel, kill: killCancel, done: make(chan struct{})}
	m.sources[s.Name] = r
	go func() {
		defer close(r.done)
		src.run(ctx, kill)
		_ = client.Disconnect(context.Background())
	}()
	return nil
}

// stop stops a source and waits until it has written what it read, or StopGrace has
// passed. It stays listed, with its last state, until started again or removed. The
// caller holds ops.
func (m *Manager) stop(r *running, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.StopGrace)
	defer cancel()
	stopAll(ctx, []*running{r}, cause)
}

// remove stops listing a stopped source. The caller holds ops.
func (m *Manager) remove(name string) {
	m.mu.Lock()
	delete(m.sources, name)
	m.mu.Unlock()
}

// stopAll stops sources at once, lets them write what they read until ctx ends, then
// makes them stop writing, and waits for them.
func stopAll(ctx context.Context, rs []*running, cause error) {
	for _, r := range rs {
		r.cancel(cause)
	}
	for _, r := range rs {
		select {
		case <-r.done:
		case <-ctx.Done():
		}
	}
	for _, r := range rs {
		r.kill()
		<-r.done
	}
}

// Stop stops every source within ctx's deadline: each writes what it has read, saves
// its token, releases its lease and reports stopped; what is still unwritten when ctx
// ends stays in the source's oplog, behind the saved token, for the next start. The
// manager can be given a config again afterwards.
func (m *Manager) Stop(ctx context.Context) {
	m.ops.Lock()
	defer m.ops.Unlock()
	stopAll(ctx, slices.Collect(maps.Values(m.snapshot())), context.Canceled)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources = map[string]*running{}
	m.shared.close()
	m.shared, m.cfg = nil, nil
}

// Reset is the old tool's "Reset Oplog Store": stop the source, wipe its events and
// token, and capture again from now. The other sources are not touched. The gap it
// makes is recorded in the store (oplogstore.GapsCollection), with who asked.
func (m *Manager) Reset(ctx context.Context, name string, by Requester) (Wiped, error) {
	return m.wipe(ctx, name, by, false)
}

// Deregister stops the source, wipes its events, token and gap record, and deletes its
// metadata document. No collector captures it again until it is reset.
func (m *Manager) Deregister(ctx context.Context, name string, by Requester) (Wiped, error) {
	return m.wipe(ctx, name, by, true)
}

func (m *Manager) wipe(ctx context.Context, name string, by Requester, deregister bool) (wiped Wiped, err error) {
	err = m.actOn(name, nil, func(cfg config.Source) (bool, error) {
		wiped, err = wipeSource(ctx, m.shared, name, cfg.Database, by, deregister)
		if err != nil {
			level.Error(m.logger).Log("msg", "Wiping the source's store failed", "action", wiped.Action, "source_cluster", name,
				"user", by.User, "remote_addr", by.RemoteAddr, "via", by.Via, "err", describe(err))
			return false, err
		}
		level.Warn(m.logger).Log("msg", "Source's captured history wiped", "action", wiped.Action, "source_cluster", name,
			"user", by.User, "remote_addr", by.RemoteAddr, "via", by.Via, "events_deleted", wiped.EventsDeleted)
		return deregister, nil
	})
	return wiped, err
}

// Resume captures the source again from where its oplog still reaches (from: earliest,
// an RFC 3339 time or seconds,increment), keeping its stored history: the way out of
// error_resume_token_lost that loses only what the source no longer holds. The
// stretch it skips is recorded as a gap, with who asked.
func (m *Manager) Resume(ctx context.Context, name, from string, by Requester) (resumed Resumed, err error) {
	point, err := parseResumeFrom(from)
	if err != nil {
		return Resumed{}, err
	}
	var plan resumePlan
	err = m.actOn(name, func(src *source) (err error) {
		plan, err = planResume(ctx, src.client, src.headroom.oplog, point)
		return err
	}, func(cfg config.Source) (bool, error) {
		resumed, err = resumeSource(ctx, m.shared, name, cfg.Database, plan, by)
		if err != nil {
			level.Error(m.logger).Log("msg", "Resuming the source failed", "source_cluster", name,
				"user", by.User, "remote_addr", by.RemoteAddr, "via", by.Via, "err", describe(err))
			return false, err
		}
		level.Warn(m.logger).Log("msg", "Source's capture resumed: the events between the saved position and the start are not captured (recorded as a gap)",
			"action", resumed.Action, "source_cluster", name, "user", by.User, "remote_addr", by.RemoteAddr, "via", by.Via,
			"from", resumed.From, "start_at", resumed.StartAt, "skipped_after", resumed.SkippedAfter, "skipped_seconds", resumed.SkippedSeconds,
			"events_kept", resumed.EventsKept)
		return false, nil
	})
	return resumed, err
}

// actOn runs a destructive act on a source this collector captures: check (when
// given) while it still runs, then, with it stopped and its lease kept, do; then the
// source starts again, from what the store says, unless do says it is gone
// (de-registered). An act that fails leaves the source capturing as before, from its
// saved position if any.
func (m *Manager) actOn(name string, check func(*source) error, do func(config.Source) (gone bool, err error)) error {
	m.ops.Lock()
	defer m.ops.Unlock()
	r, ok := m.snapshot()[name]
	if !ok {
		return fmt.Errorf("%q: %w", name, ErrUnknownSource)
	}
	if st := r.src.status(); st.State == stateStandby {
		return fmt.Errorf("%q: %w: %s; send the command to that collector", name, ErrNotHolder, st.Holder)
	}
	if check != nil {
		if err := check(r.src); err != nil {
			return err
		}
	}
	cfg := r.src.cfg
	m.stop(r, errKeepLease)
	r.src.state.set(stateResettingOplogStore, "")
	gone, err := do(cfg)
	switch {
	case err != nil:
		return errors.Join(err, m.start(cfg, startPoint{}))
	case gone:
		m.remove(name)
		m.metrics.forget(name)
		return nil
	}
	return m.start(cfg, startPoint{})
}

// Status returns every source's state, by name. It never waits on a command or the
// network.
func (m *Manager) Status() []Status {
	sources := m.snapshot()
	var out []Status
	for _, name := range slices.Sorted(maps.Keys(sources)) {
		out = append(out, sources[name].src.status())
	}
	return out
}

// SourceStatus returns one source's state with about how many events its store holds.
func (m *Manager) SourceStatus(ctx context.Context, name string) (Status, error) {
	r, ok := m.snapshot()[name]
	if !ok {
		return Status{}, fmt.Errorf("%q: %w", name, ErrUnknownSource)
	}
	st := r.src.status()
	if n, err := r.src.store.count(ctx); err == nil {
		st.StoredEvents = &n
	}
	return st, nil
}
