package collector

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/config"
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
	buf          *buffer // the current capture's buffer; nil when not capturing
	sourceOK     bool
	storeOK      bool
	// streaming is set once the change stream is open: only then is the source running.
	streaming bool
	stalled   bool          // a store write has waited longer than store_stall_after
	wake      chan struct{} // a state change: heartbeat now
}

// startPoint says where capture begins when the store holds no saved position.
type startPoint struct {
	// carry is the position the source reached in the previous store (a reload that
	// changed the store): going on from it, the two stores together hold every event.
	carry *position
	// fresh starts from now whatever else is known (a reset).
	fresh bool
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

	final, errText := s.serve(ctx, kill)
	s.setState(final, errText)
	stopWatching()
	watchers.Wait()
	finalCtx, cancel := context.WithTimeout(kill, finalReportTimeout)
	defer cancel()
	if context.Cause(ctx) != errKeepLease {
		if err := s.leases.release(finalCtx, s.cfg.Name); err != nil {
			level.Debug(s.logger).Log("msg", "Lease not released; a standby takes over once it expires", "err", describe(err))
		}
	}
	s.sendHeartbeat(finalCtx)
	return final
}

// serve alternates between standing by and capturing: it captures while it holds the
// source's lease, and stands by again if another collector takes the lease over.
func (s *source) serve(ctx, kill context.Context) (final, errText string) {
	for {
		if !s.awaitLease(ctx) {
			return stateStopped, ""
		}
		final, errText, lost := s.hold(ctx, kill)
		if !lost {
			return final, errText
		}
		level.Warn(s.logger).Log("msg", "Another collector took over this source's lease; standing by")
	}
}

// awaitLease takes the source's lease, standing by while another live collector holds
// it. It returns false when ctx ends first.
func (s *source) awaitLease(ctx context.Context) bool {
	poll := s.common.LeaseTTL / 4
	for attempt := 0; ; attempt++ {
		acquired, held, err := s.leases.acquire(ctx, s.cfg.Name, false)
		switch {
		case acquired:
			s.setHolder("", false)
			s.setState(stateStarting, "")
			return true
		case err != nil:
			if ctx.Err() != nil {
				return false
			}
			s.metrics.errors.WithLabelValues(s.cfg.Name, errLease).Inc()
			s.setState(stateRetryingConnection, "cannot take the source's lease: "+describe(err))
			if !sleep(ctx, backoff(attempt, s.common.MaxBackoff)) {
				return false
			}
			continue
		case held != nil && held.Deregistered != nil:
			s.setHolder("", true)
			s.setState(stateStopped, "de-registered by "+held.Deregistered.By+" at "+held.Deregistered.At.Time().UTC().Format(time.RFC3339)+
				": it is not captured until it is reset (oplog_collector reset --source "+s.cfg.Name+"), or remove it from the config")
		case held != nil:
			s.setHolder(held.Holder.String(), false)
			s.setState(stateStandby, "")
		}
		attempt = 0
		if !sleep(ctx, poll) {
			return false
		}
	}
}

// hold captures while the lease is ours, renewing it. lost is true when another
// collector took the lease over: the capture stopped, and the source stands by again.
func (s *source) hold(ctx, kill context.Context) (final, errText string, lost bool) {
	holdCtx, cancel := context.WithCancelCause(ctx)
	var renewing sync.WaitGroup
	renewing.Go(func() { s.keepLease(holdCtx, cancel) })

	final, errText = s.capture(holdCtx, kill)
	if final == stateResumeTokenLost {
		// Keep the lease until a reset, so that no standby fails the same way.
		s.setState(final, errText)
		<-holdCtx.Done()
	}
	lost = context.Cause(holdCtx) == errLeaseLost && ctx.Err() == nil
	cancel(nil)
	renewing.Wait()
	if final == stateError {
		// A wrong cluster: let a standby configured for the right one take over.
		s.setState(final, errText)
		releaseCtx, stop := context.WithTimeout(kill, finalReportTimeout)
		_ = s.leases.release(releaseCtx, s.cfg.Name)
		stop()
		<-ctx.Done()
	}
	return final, errText, lost
}

// keepLease renews the lease every third of its TTL, with the position last saved.
// When another collector holds it now, it ends the capture (stop). A renewal that fails
// otherwise is retried: the metadata database being away must not stop a capture that
// no one else can take over, and every write is idempotent, so two writers for a while
// (a partition) store every event once all the same.
func (s *source) keepLease(ctx context.Context, stop context.CancelCauseFunc) {
	ticker := time.NewTicker(s.common.LeaseTTL / 3)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		renewCtx, cancel := context.WithTimeout(ctx, s.common.LeaseTTL/3)
		err := s.leases.renew(renewCtx, s.cfg.Name, s.progress.position())
		cancel()
		switch {
		case errors.Is(err, errLeaseLost):
			stop(errLeaseLost)
			return
		case err != nil && ctx.Err() == nil:
			s.metrics.errors.WithLabelValues(s.cfg.Name, errLease).Inc()
			level.Warn(s.logger).Log("msg", "Lease not renewed; capture goes on and the renewal is retried", "err", describe(err))
		}
	}
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
	live := s.state == stateStarting || s.state == stateRunning || s.state == stateRetryingConnection || s.state == stateStoreUnavailable
	storeDown, sourceDown, stalled, streaming := !s.storeOK, !s.sourceOK, s.stalled, s.streaming
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
	case streaming:
		s.setState(stateRunning, "")
	}
}

// watchStore reports a store write that waits for its acknowledgement longer than
// store_stall_after, within a second, even while the attempt has not failed yet; and
// how full the buffer is, which grows while the writer waits.
func (s *source) watchStore(ctx context.Context) {
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		pending := s.progress.pending(time.Now())
		s.metrics.writePending.WithLabelValues(s.cfg.Name).Set(pending.Seconds())
		s.mu.Lock()
		if s.buf != nil {
			s.metrics.bufferEvents.WithLabelValues(s.cfg.Name).Set(float64(s.buf.length()))
		}
		changed := s.stalled != (pending > s.common.StoreStallAfter)
		s.stalled = pending > s.common.StoreStallAfter
		s.mu.Unlock()
		if changed && s.stalled {
			s.deriveState(errors.New("a store write has waited " + pending.Round(time.Second).String() + " for its majority acknowledgement"))
		} else if changed {
			s.deriveState(nil)
		}
	}
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

// Status is a source's state, as GET /api/v1/sources lists it and the status command
// shows it.
type Status struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// Holder is the collector holding the source's lease while this one stands by.
	Holder         string    `json:"holder,omitempty"`
	Checkpoint     time.Time `json:"checkpoint,omitzero"`
	LastEvent      time.Time `json:"last_event,omitzero"`
	StoreOldest    time.Time `json:"store_oldest,omitzero"`
	BufferedEvents int       `json:"buffered_events"`
	// StoreWritePendingSeconds is how long the current store write has waited.
	StoreWritePendingSeconds float64 `json:"store_write_pending_seconds,omitempty"`
	// StoredEvents is about how many events the store holds (GET of one source only).
	StoredEvents *int64 `json:"stored_events,omitempty"`
}

// Window is the recoverable stretch of history: from the oldest stored event to the
// checkpoint, up to which every event is stored.
func (st Status) Window() time.Duration {
	if st.StoreOldest.IsZero() || st.Checkpoint.IsZero() {
		return 0
	}
	return st.Checkpoint.Sub(st.StoreOldest)
}

func (s *source) status() Status {
	snap := s.progress.snapshot()
	pending := s.progress.pending(time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		Name: s.cfg.Name, State: s.state, Error: s.errText, Holder: s.holder,
		Checkpoint: snap.checkpoint, LastEvent: snap.lastEvent, StoreOldest: snap.storeOldest,
		StoreWritePendingSeconds: pending.Seconds(),
	}
	if s.buf != nil {
		st.BufferedEvents = s.buf.length()
	}
	return st
}

// heartbeatLoop reports at every interval and at every state change.
func (s *source) heartbeatLoop(ctx context.Context) {
	ticker := time.NewTicker(s.common.HeartbeatInterval)
	defer ticker.Stop()
	for {
		s.sendHeartbeat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-s.wake:
		}
	}
}

// sendHeartbeat writes the source's heartbeat document; a standby writes only that it
// stands by, leaving the holder's report as it is.
func (s *source) sendHeartbeat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, storeAttemptTimeout)
	defer cancel()
	st := s.status()
	s.mu.Lock()
	deregistered := s.deregistered
	s.mu.Unlock()
	var err error
	switch {
	case deregistered:
		return
	case st.State == stateStandby:
		err = s.beats.reportStandby(ctx, s.cfg.Name, s.leases.me)
	default:
		if oldest, ok, oldestErr := s.store.oldest(ctx); oldestErr == nil && ok {
			s.progress.oldestStored(oldest)
			st.StoreOldest = tsTime(oldest)
		}
		err = s.beats.report(ctx, s.cfg.Name, heartbeat{
			status: st.State, scope: s.cfg.Database, checkpoint: st.Checkpoint, lastEvent: st.LastEvent,
			firstOplog: st.StoreOldest, errText: st.Error, holder: &s.leases.me,
			running: st.State != stateStopped && st.State != stateResumeTokenLost,
		})
	}
	if err != nil && ctx.Err() == nil {
		s.metrics.errors.WithLabelValues(s.cfg.Name, errHeartbeat).Inc()
		level.Debug(s.logger).Log("msg", "Heartbeat not written; counted in oplog_capture_errors_total{kind=\"heartbeat\"}", "err", describe(err))
	}
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

// describe makes an error fit for logs and the heartbeat document: no password, and
// not a thousand duplicate-key messages.
func describe(err error) string {
	if err == nil {
		return ""
	}
	text := redact.Credentials(err.Error())
	if len(text) > maxErrorText {
		text = text[:maxErrorText] + "..."
	}
	return text
}
