package collector

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongoerr"
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

// source supervises the capture of one cluster: it takes the source's lease, or stands
// by while another collector holds it (holding.go); holding it, it runs a capture, in
// which a reader reads events into a bounded buffer while a writer writes them in
// batches, so that reading and writing overlap (capture.go, reader.go, writer.go); and
// it keeps the source's state (state.go), heartbeat and status (status.go). The writer
// saves the resume token only after the batch it covers is acknowledged by a majority:
// a crash can repeat a batch (a no-op, _id is the token) but never skip one.
type source struct {
	cfg      config.Source
	common   *config.Collector
	client   *mongo.Client
	logger   log.Logger
	metrics  *metrics
	store    *sourceStore
	beats    *heartbeats
	leases   *leases
	tenure   tenure // the lease, while this source holds it
	state    *sourceState
	health   sides // of the source and the store, from which the state is derived
	progress *progress
	reader   *reader
	buf      atomic.Pointer[buffer] // the last capture's buffer; nil before the first
	headroom *headroom
	// recoverable is what the store's record of gaps leaves a restore.
	recoverable recoverableWindow
	start       startPoint
}

// startPoint says where capture begins when the store holds nothing of the source.
type startPoint struct {
	// carry is the position the source reached in the previous store (a reload that
	// changed the store): going on from it, the two stores together hold every event.
	carry *position
}

func newSource(cfg config.Source, common *config.Collector, client *mongo.Client, sh *shared, m *metrics, logger log.Logger, start startPoint) *source {
	logger = log.With(logger, "source_cluster", cfg.Name)
	s := &source{
		cfg: cfg, common: common, client: client, logger: logger, metrics: m, start: start,
		store:    newSourceStore(sh.storeDB, cfg.Name),
		beats:    sh.beats,
		leases:   sh.leases,
		progress: newProgress(cfg.Name, m),
		headroom: newHeadroom(cfg.Name, newOplogReader(client, cfg.MongoURI), m, logger),
		health: sides{
			source: newHealth(m, cfg.Name, retrySource, errSourceRead, common.MaxBackoff),
			store:  newHealth(m, cfg.Name, retryStore, errStoreWrite, common.MaxBackoff),
		},
	}
	s.recoverable = recoverableWindow{name: cfg.Name, store: sh.storeDB, metrics: m, logger: logger}
	s.state = newSourceState(cfg.Name, m, logger, s.health)
	for _, h := range []*health{s.health.source, s.health.store} {
		h.changed, h.fenced = s.state.derive, s.leaseLost
	}
	s.reader = &reader{
		client: client,
		settings: readSettings{
			name: cfg.Name, database: cfg.Database, fullDocument: cfg.FullDocument, ownDatabases: ownDatabases(common),
			batch: common.Batch, checkpointInterval: common.CheckpointInterval, maxBackoff: common.MaxBackoff,
		},
		fragments: s.store,
		report: readerReports{
			opened: s.state.streamOpened, source: s.health.source,
			tokenLost: m.errors.WithLabelValues(cfg.Name, errResumeTokenLost), logger: logger,
		},
	}
	return s
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
	s.state.set(stateStarting, "")
	watchCtx, stopWatching := context.WithCancel(context.Background())
	var watchers sync.WaitGroup
	watchers.Go(func() { s.heartbeatLoop(watchCtx) })
	watchers.Go(func() { s.watchStore(watchCtx) })
	watchers.Go(func() { s.headroom.watch(watchCtx, s.common.HeartbeatInterval, s.tenure.holds) })

	final, errText, held := s.serve(ctx, kill)
	s.state.set(final, errText)
	stopWatching()
	watchers.Wait()
	s.headroom.forget()
	s.headroom.oplog.close()
	finalCtx, cancel := context.WithTimeout(kill, finalReportTimeout)
	defer cancel()
	defer s.store.close(finalCtx)
	if held && context.Cause(ctx) != errKeepLease {
		epoch, _ := s.tenure.current()
		if err := s.leases.release(finalCtx, s.cfg.Name, epoch); err != nil {
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

// watchStore reports a store write that waits for its acknowledgement longer than
// store_stall_after, within a second, even while the attempt has not failed yet; and
// how full the buffer is, which grows while the writer waits.
func (s *source) watchStore(ctx context.Context) {
	every(ctx, time.Second, func() {
		pending := s.progress.pending(time.Now())
		s.metrics.writePending.WithLabelValues(s.cfg.Name).Set(pending.Seconds())
		if buf := s.buf.Load(); buf != nil {
			s.metrics.bufferEvents.WithLabelValues(s.cfg.Name).Set(float64(buf.length()))
		}
		stalled := pending > s.common.StoreStallAfter
		changed := s.state.stall(stalled)
		switch {
		case changed && stalled:
			s.state.derive(errors.New("a store write has waited " + pending.Round(time.Second).String() + " for its majority acknowledgement"))
		case changed || s.state.foreignHoldEnded(time.Now()):
			s.state.derive(nil)
		}
	})
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
// was doing, then the cause, in the words of mongoerr.DescribeWrapped, cut short.
func describe(err error) string {
	text := mongoerr.DescribeWrapped(err)
	if len(text) > maxErrorText {
		text = text[:maxErrorText] + "..."
	}
	return text
}
