package collector

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/mongomigrate/observability/internal/redact"
)

// Time limits of the capture.
const (
	storeAttemptTimeout = 30 * time.Second // one insert or token write
	minBackoff          = time.Second
	maxAwait            = time.Second // how long an empty getMore waits for events
	finalReportTimeout  = 2 * time.Second
)

// errKeepLease stops a source that starts again at once (a reset, a changed config):
// its lease is kept, so no standby takes the source over meanwhile.
var errKeepLease = errors.New("restarting: lease kept")

// source captures one cluster's change stream into the store while this collector
// holds the source's lease, and stands by while another one does. Capturing, a reader
// reads events into a bounded buffer while a writer writes them in batches, so reading
// and writing overlap (reader.go, writer.go). The writer saves the resume token only
// after the batch it covers is acknowledged by a majority: a crash can repeat a batch
// (a no-op, _id is the token) but never skip one.
type source struct {
	cfg      config.Source
	common   *config.Collector
	client   *mongo.Client
	store    *sourceStore
	beats    *heartbeats
	leases   *leases
	metrics  *metrics
	logger   log.Logger
	progress *progress
	features serverFeatures
	identity *clusterIdentity // the source cluster's, once read
	start    startPoint
	// ownDatabases are the store's and the metadata's databases, never captured.
	ownDatabases []string

	mu      sync.Mutex
	state   string
	errText string
	holder  string // who holds the lease while this source stands by
	// deregistered is a source no collector may capture: it does not report either,
	// or its heartbeat would bring back the metadata document de-registering deleted.
	deregistered bool
	// epoch is that of the lease this source holds, or held last; loseLease, set while
	// it holds it, ends the capture when the store says the lease moved on.
	epoch     int64
	loseLease func()
	// foreignSeen is when a write of a process that holds no lease was last found in
	// the store; foreignAfter, the greatest ObjectId _id checked so far.
	foreignSeen  time.Time
	foreignAfter bson.ObjectID
	buf          *buffer // the current capture's buffer; nil when not capturing
	sourceOK     bool
	storeOK      bool
	// streaming is set once the change stream is open: only then is the source running.
	streaming bool
	stalled   bool          // a store write has waited longer than store_stall_after
	wake      chan struct{} // a state change: heartbeat now
	// oplog reads how far back the source's oplog reaches (headroom.go); oplogShards
	// are the shards exported (one "" for a replica set), oplogOldest the binding
	// oldest entry, oplogErr why the last read failed.
	oplog       *oplogReader
	oplogShards []string
	oplogOldest time.Time
	oplogErr    string
}

// startPoint says where capture begins when the store holds nothing of the source.
type startPoint struct {
	// carry is the position the source reached in the previous store (a reload that
	// changed the store): going on from it, the two stores together hold every event.
	carry *position
}

func newSource(cfg config.Source, common *config.Collector, client *mongo.Client, sh *shared, m *metrics, logger log.Logger, start startPoint) *source {
	return &source{
		cfg: cfg, common: common, client: client, metrics: m, start: start,
		store:        newSourceStore(sh.storeDB, cfg.Name),
		beats:        sh.beats,
		leases:       sh.leases,
		logger:       log.With(logger, "source_cluster", cfg.Name),
		progress:     newProgress(cfg.Name, m),
		ownDatabases: ownDatabases(common),
		oplog:        newOplogReader(client, cfg.MongoURI),
		sourceOK:     true,
		storeOK:      true,
		wake:         make(chan struct{}, 1),
	}
}

func ownDatabases(c *config.Collector) []string {
	dbs := []string{c.Store.Database}
	if c.Metadata != nil {
		dbs = append(dbs, c.Metadata.Database)
	}
	return dbs
}

// run serves the source until ctx ends (stop, reload, reset) and reports its final
// state, which it returns. Writing what was read goes on after ctx ends, until it is
// done or kill ends.
func (s *source) run(ctx, kill context.Context) string {
	s.metrics.zero(s.cfg.Name)
	s.metrics.bufferCapacity.WithLabelValues(s.cfg.Name).Set(float64(s.common.Buffer.MaxEvents))
	if s.common.Retention > 0 {
		s.metrics.retention.WithLabelValues(s.cfg.Name).Set(s.common.Retention.Seconds())
	}
	s.setState(stateStarting, "")
	watchCtx, stopWatching := context.WithCancel(context.Background())
	var watchers sync.WaitGroup
	watchers.Go(func() { s.heartbeatLoop(watchCtx) })
	watchers.Go(func() { s.watchStore(watchCtx) })
	watchers.Go(func() { s.watchOplog(watchCtx) })

	final, errText, held := s.serve(ctx, kill)
	s.setState(final, errText)
	stopWatching()
	watchers.Wait()
	s.forgetOplog()
	s.oplog.close()
	finalCtx, cancel := context.WithTimeout(kill, finalReportTimeout)
	defer cancel()
	if held && context.Cause(ctx) != errKeepLease {
		if err := s.leases.release(finalCtx, s.cfg.Name, s.currentEpoch()); err != nil {
			level.Debug(s.logger).Log("msg", "Lease not released; a standby takes over once it expires", "err", describe(err))
		}
	}
	if held {
		s.sendHeartbeat(finalCtx, true)
	}
	return final
}

// serve alternates between standing by and capturing: it captures while it holds the
// source's lease, and stands by again if another collector takes the lease over. held
// tells whether it held the lease when it ended.
func (s *source) serve(ctx, kill context.Context) (final, errText string, held bool) {
	for {
		epoch := s.awaitLease(ctx)
		if epoch == 0 {
			return stateStopped, "", false
		}
		final, errText, lost := s.hold(ctx, kill, epoch)
		if !lost {
			return final, errText, true
		}
		level.Warn(s.logger).Log("msg", "This source's lease has moved on (another collector took it over, or it was reset or de-registered): standing by; what was read and not written is left to the next holder", "epoch", epoch)
		s.progress.forget()
	}
}

// currentEpoch is the epoch of the lease the source holds, or held last.
func (s *source) currentEpoch() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// setHealth records whether the source or the store (flag) works, and derives the state.
func (s *source) setHealth(flag *bool, ok bool, err error) {
	s.mu.Lock()
	*flag = ok
	s.mu.Unlock()
	s.deriveState(err)
}

// deriveState sets the state of a capturing source from the health of its two ends:
// store_unavailable before retrying_connection, since a stuck store stops everything.
func (s *source) deriveState(err error) {
	s.mu.Lock()
	live := s.state == stateStarting || s.state == stateRunning || s.state == stateRetryingConnection || s.state == stateStoreUnavailable || s.state == stateForeignWriter
	storeDown, sourceDown, stalled, streaming := !s.storeOK, !s.sourceOK, s.stalled, s.streaming
	foreign := s.foreignWriting(time.Now())
	errText := s.errText
	s.mu.Unlock()
	if !live {
		return
	}
	if err != nil {
		errText = describe(err)
	}
	switch {
	case storeDown || stalled:
		s.setState(stateStoreUnavailable, errText)
	case sourceDown:
		s.setState(stateRetryingConnection, errText)
	case streaming && foreign:
		s.setState(stateForeignWriter, "a process that holds no lease writes into this source's store (another collector, or the old tool restarted by its manager): stop it")
	case streaming:
		s.setState(stateRunning, "")
	}
}

// watchStore reports a store write that waits for its acknowledgement longer than
// store_stall_after, within a second, even while the attempt has not failed yet; and
// how full the buffer is, which grows while the writer waits.
func (s *source) watchStore(ctx context.Context) {
	every(ctx, time.Second, func() {
		pending := s.progress.pending(time.Now())
		s.metrics.writePending.WithLabelValues(s.cfg.Name).Set(pending.Seconds())
		s.mu.Lock()
		if s.buf != nil {
			s.metrics.bufferEvents.WithLabelValues(s.cfg.Name).Set(float64(s.buf.length()))
		}
		changed := s.stalled != (pending > s.common.StoreStallAfter)
		s.stalled = pending > s.common.StoreStallAfter
		foreignEnded := s.state == stateForeignWriter && !s.foreignWriting(time.Now())
		s.mu.Unlock()
		if changed && s.stalled {
			s.deriveState(errors.New("a store write has waited " + pending.Round(time.Second).String() + " for its majority acknowledgement"))
		} else if changed || foreignEnded {
			s.deriveState(nil)
		}
	})
}

// setState changes the state and logs the change, once.
func (s *source) setState(state, errText string) {
	s.mu.Lock()
	changed := state != s.state || errText != s.errText
	s.state, s.errText = state, errText
	s.mu.Unlock()
	if !changed {
		return
	}
	s.metrics.setState(s.cfg.Name, state)
	if errText != "" {
		level.Warn(s.logger).Log("msg", "State changed", "state", state, "err", errText)
	} else {
		level.Info(s.logger).Log("msg", "State changed", "state", state)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *source) setHolder(holder string, deregistered bool) {
	s.mu.Lock()
	s.holder, s.deregistered = holder, deregistered
	s.mu.Unlock()
}

func (s *source) setBuffer(b *buffer) {
	s.mu.Lock()
	s.buf = b
	s.mu.Unlock()
}

// backoff is a capped exponential delay with equal jitter (half fixed, half random):
// retries of many sources do not hit a recovering server at once.
func backoff(attempt int, ceiling time.Duration) time.Duration {
	d := minBackoff << min(attempt, 16)
	if d > ceiling || d <= 0 {
		d = ceiling
	}
	return d/2 + rand.N(d/2+1)
}

// every runs fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	ticker := time.NewTicker(d)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		fn()
	}
}

// sleep waits d, or less if ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// maxErrorText bounds an error kept for logs and the heartbeat: a failed batch can
// report one error per document.
const maxErrorText = 1000

// describe makes an error fit for logs and the heartbeat document: what the collector
// was doing (its own wrapping, such as "saving the resume token"), then the cause in
// stable words (internal/mongoerr: no password, the same words at every attempt), cut
// short: a failed batch can report one error per document.
func describe(err error) string {
	if err == nil {
		return ""
	}
	var doing []string
	cause := err
	for {
		inner := errors.Unwrap(cause)
		if inner == nil || !strings.HasSuffix(cause.Error(), ": "+inner.Error()) {
			break
		}
		doing = append(doing, strings.TrimSuffix(cause.Error(), ": "+inner.Error()))
		cause = inner
	}
	text := redact.Credentials(strings.Join(append(doing, mongoerr.Describe(cause)), ": "))
	if len(text) > maxErrorText {
		text = text[:maxErrorText] + "..."
	}
	return text
}
