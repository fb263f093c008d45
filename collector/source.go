package collector

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/redact"
)

// Time limits of the capture loop.
const (
	storeAttemptTimeout = time.Minute      // one insert or token write
	shutdownFlush       = 20 * time.Second // writing what was read, once asked to stop
	minBackoff          = time.Second
	maxAwait            = time.Second // how long an empty getMore waits for events
)

// errInvalidated ends a stream after its invalidate event: it is reopened at once with
// startAfter, the only option that can pass an invalidate.
var errInvalidated = errors.New("change stream invalidated")

// source captures one cluster's change stream into the store. A reader goroutine reads
// events into a bounded buffer while a writer goroutine writes them in batches, so
// reading and writing overlap. The writer saves the resume token only after the batch it
// covers is acknowledged by a majority: a crash can repeat a batch (a no-op, _id is the
// token) but never skip one.
type source struct {
	cfg      config.Source
	common   *config.Collector
	client   *mongo.Client
	store    *sourceStore
	beats    *heartbeats
	metrics  *metrics
	logger   log.Logger
	features serverFeatures
	buf      *buffer
	// ownDatabases are the store's and the metadata's databases, never captured.
	ownDatabases []string

	mu          sync.Mutex
	state       string
	errText     string
	sourceOK    bool
	storeOK     bool
	lastEvent   bson.Timestamp
	checkpoint  bson.Timestamp
	storeOldest bson.Timestamp
	wake        chan struct{} // a state change: heartbeat now
}

func newSource(cfg config.Source, common *config.Collector, client *mongo.Client, store *sourceStore, beats *heartbeats, m *metrics, logger log.Logger) *source {
	return &source{
		cfg: cfg, common: common, client: client, store: store, beats: beats, metrics: m,
		logger:       log.With(logger, "source_cluster", cfg.Name),
		buf:          newBuffer(common.Buffer.MaxEvents, common.Buffer.MaxBytes, common.Batch),
		ownDatabases: ownDatabases(common),
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

// run captures until ctx ends (stop, reload, reset) or the resume token is lost, then
// writes what it has read and reports its final state, which it returns.
func (s *source) run(ctx context.Context) string {
	s.metrics.zero(s.cfg.Name)
	s.metrics.bufferCapacity.WithLabelValues(s.cfg.Name).Set(float64(s.common.Buffer.MaxEvents))
	if s.common.Retention > 0 {
		s.metrics.retention.WithLabelValues(s.cfg.Name).Set(s.common.Retention.Seconds())
	}
	s.setState(stateStarting, "")
	beatCtx, stopBeats := context.WithCancel(context.Background())
	beatsDone := make(chan struct{})
	go func() { s.heartbeatLoop(beatCtx); close(beatsDone) }()

	final := stateStopped
	if pos, ok := s.prepare(ctx); ok {
		flushCtx, stopFlush := context.WithCancel(context.Background())
		writerDone := make(chan struct{})
		go func() { s.write(flushCtx); close(writerDone) }()
		if s.readLoop(ctx, pos) {
			final = stateResumeTokenLost
			// Keep writing what was read before the loss, until it is in or we are stopped.
			select {
			case <-writerDone:
			case <-ctx.Done():
			}
		} else {
			s.setState(stateStopping, "")
		}
		s.buf.close()
		select {
		case <-writerDone:
		case <-time.After(shutdownFlush):
			level.Warn(s.logger).Log("msg", "Stopped before every event read was written; they will be read again at the next start", "unwritten", s.buf.length())
		}
		stopFlush()
		<-writerDone
	}
	if final == stateResumeTokenLost {
		s.setState(final, s.currentError())
	} else {
		s.setState(final, "")
	}
	stopBeats()
	<-beatsDone
	finalCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.sendHeartbeat(finalCtx)
	return final
}

// prepare reads the saved position and makes the store's indexes, retrying while the
// store is unreachable; ok is false when ctx ended first.
func (s *source) prepare(ctx context.Context) (pos position, ok bool) {
	ok = s.retry(ctx, errStoreWrite, func(ctx context.Context) error {
		if err := s.store.ensureIndexes(ctx, s.common.Retention); err != nil {
			return err
		}
		var err error
		pos, err = s.store.loadToken(ctx)
		return err
	})
	if ok && pos.token != nil {
		if ts, known := tokenTime(pos.token); known {
			s.mu.Lock()
			s.checkpoint = ts
			s.mu.Unlock()
			s.metrics.checkpoint.WithLabelValues(s.cfg.Name).Set(seconds(ts))
		}
	}
	return pos, ok
}

// readLoop keeps a change stream open, reopening it after failures with capped
// exponential backoff and jitter, for ever. It returns true when the resume token is
// lost: the source cannot go on without a reset.
func (s *source) readLoop(ctx context.Context, pos position) (lost bool) {
	attempt := 0
	for {
		opened, err := s.readStream(ctx, &pos)
		if ctx.Err() != nil {
			return false
		}
		if opened {
			attempt = 0
		}
		switch {
		case errors.Is(err, errInvalidated):
			level.Info(s.logger).Log("msg", "Change stream invalidated; reopening after it with startAfter")
			continue
		case isResumeTokenLost(err):
			s.metrics.errors.WithLabelValues(s.cfg.Name, errResumeTokenLost).Inc()
			s.setState(stateResumeTokenLost, describe(err)+"; the oplog no longer holds the saved position: reset this source (oplog_collector reset --source "+s.cfg.Name+")")
			return true
		}
		s.metrics.errors.WithLabelValues(s.cfg.Name, errSourceRead).Inc()
		s.metrics.retries.WithLabelValues(s.cfg.Name, retrySource).Inc()
		s.setHealth(&s.sourceOK, false, err)
		if !sleep(ctx, backoff(attempt, s.common.MaxBackoff)) {
			return false
		}
		attempt++
	}
}

// readStream opens the change stream at pos and reads it into the buffer until it
// fails; pos follows what was read, so a reopen continues where reading stopped.
func (s *source) readStream(ctx context.Context, pos *position) (opened bool, err error) {
	if !s.features.known {
		if s.features, err = detectFeatures(ctx, s.client); err != nil {
			return false, err
		}
	}
	cs, err := s.open(ctx, *pos)
	if err != nil {
		return false, err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = cs.Close(closeCtx)
	}()
	s.setHealth(&s.sourceOK, true, nil)
	if pos.token == nil {
		// First start: save where "now" is at once, so that a restart resumes here.
		if tok := cs.ResumeToken(); tok != nil {
			if err := s.pushPosition(ctx, pos, tok); err != nil {
				return true, err
			}
		}
	}
	var split splitState
	lastCheckpoint := time.Now()
	for {
		if cs.TryNext(ctx) {
			it, err := toItem(s.cfg.Name, cs.Current, time.Now(), &split)
			if err != nil {
				return true, err
			}
			if err := s.buf.push(ctx, it); err != nil {
				return true, err
			}
			*pos = position{token: it.token, startAfter: it.startAfter}
			if it.startAfter {
				return true, errInvalidated
			}
			continue
		}
		if err := cs.Err(); err != nil {
			return true, err
		}
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		if cs.ID() == 0 {
			return true, errors.New("the server closed the change stream")
		}
		// An empty batch: the stream has read everything up to its post-batch token.
		if tok := cs.ResumeToken(); tok != nil && !bytes.Equal(tok, pos.token) {
			if time.Since(lastCheckpoint) >= s.common.CheckpointInterval {
				if err := s.pushPosition(ctx, pos, tok); err != nil {
					return true, err
				}
				lastCheckpoint = time.Now()
			} else {
				*pos = position{token: tok}
			}
		}
	}
}

// pushPosition queues a token with no event, for the writer to save once everything
// before it is written.
func (s *source) pushPosition(ctx context.Context, pos *position, token bson.Raw) error {
	ts, _ := tokenTime(token)
	token = bytes.Clone(token)
	if err := s.buf.push(ctx, item{token: token, tokenTime: ts}); err != nil {
		return err
	}
	*pos = position{token: token}
	return nil
}

// open starts the change stream on the cluster, or on the configured database.
func (s *source) open(ctx context.Context, pos position) (*mongo.ChangeStream, error) {
	pipeline := mongo.Pipeline{{{Key: "$match", Value: bson.D{
		{Key: "operationType", Value: bson.D{{Key: "$in", Value: capturedOperations}}},
		// The collector's own writes, when the store or the metadata database is on a
		// captured cluster: capturing them would feed back for ever.
		{Key: "ns.db", Value: bson.D{{Key: "$nin", Value: s.ownDatabases}}},
	}}}}
	if s.features.splitLargeEvents {
		pipeline = append(pipeline, bson.D{{Key: "$changeStreamSplitLargeEvent", Value: bson.D{}}}) // must be last
	}
	opts := options.ChangeStream().
		SetFullDocument(options.FullDocument(s.cfg.FullDocument)).
		SetMaxAwaitTime(maxAwait).
		SetBatchSize(int32(s.common.Batch.MaxEvents)) // a getMore fills about one store batch

	if s.features.showExpandedEvents {
		opts.SetShowExpandedEvents(true)
	}
	switch {
	case pos.token != nil && pos.startAfter:
		opts.SetStartAfter(pos.token)
	case pos.token != nil:
		opts.SetResumeAfter(pos.token)
	}
	if s.cfg.Database == "" {
		return s.client.Watch(ctx, pipeline, opts)
	}
	return s.client.Database(s.cfg.Database).Watch(ctx, pipeline, opts)
}

// write takes batches from the buffer and stores them until the buffer is closed and
// drained, or ctx ends.
func (s *source) write(ctx context.Context) {
	name := s.cfg.Name
	var command []byte
	for {
		batch, err := s.buf.take(ctx)
		if err != nil {
			return
		}
		var docs []bson.Raw
		size := 0
		for _, it := range batch {
			if it.doc != nil {
				docs = append(docs, it.doc)
				size += it.size
			}
		}
		if len(docs) > 0 {
			start := time.Now()
			if !s.retry(ctx, errStoreWrite, func(ctx context.Context) error { return s.store.insert(ctx, docs, &command) }) {
				return
			}
			s.metrics.batchWrite.WithLabelValues(name).Observe(time.Since(start).Seconds())
			s.metrics.batches.WithLabelValues(name).Inc()
			s.metrics.bytes.WithLabelValues(name).Add(float64(size))
			var newest bson.Timestamp
			perType := map[string]int{} // one counter update per type and batch, not per event
			for _, it := range batch {
				if it.doc != nil {
					perType[it.opType]++
					newest = it.tokenTime
				}
			}
			for opType, n := range perType {
				s.metrics.events.WithLabelValues(name, opType).Add(float64(n))
			}
			s.mu.Lock()
			s.lastEvent = newest
			s.mu.Unlock()
			s.metrics.lastEvent.WithLabelValues(name).Set(seconds(newest))
		}
		last := batch[len(batch)-1]
		if !s.retry(ctx, errTokenSave, func(ctx context.Context) error { return s.store.saveToken(ctx, last) }) {
			return
		}
		if !last.tokenTime.IsZero() {
			s.mu.Lock()
			s.checkpoint = last.tokenTime
			s.mu.Unlock()
			s.metrics.checkpoint.WithLabelValues(name).Set(seconds(last.tokenTime))
		}
		s.metrics.bufferEvents.WithLabelValues(name).Set(float64(s.buf.length()))
	}
}

// retry runs op until it succeeds or ctx ends (false), counting and logging failures.
// A batch is never dropped: the store being away only makes the buffer fill and the
// reading wait.
func (s *source) retry(ctx context.Context, kind string, op func(context.Context) error) bool {
	for attempt := 0; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, storeAttemptTimeout)
		err := op(attemptCtx)
		cancel()
		if err == nil {
			s.setHealth(&s.storeOK, true, nil)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.metrics.errors.WithLabelValues(s.cfg.Name, kind).Inc()
		s.metrics.retries.WithLabelValues(s.cfg.Name, retryStore).Inc()
		s.metrics.bufferEvents.WithLabelValues(s.cfg.Name).Set(float64(s.buf.length()))
		s.setHealth(&s.storeOK, false, err)
		if !sleep(ctx, backoff(attempt, s.common.MaxBackoff)) {
			return false
		}
	}
}

// setHealth records whether the source or the store (flag) works, and derives the state.
func (s *source) setHealth(flag *bool, ok bool, err error) {
	s.mu.Lock()
	*flag = ok
	state := s.state
	live := state == stateStarting || state == stateRunning || state == stateRetryingConnection
	healthy := s.sourceOK && s.storeOK
	s.mu.Unlock()
	if !live {
		return
	}
	switch {
	case err != nil:
		s.setState(stateRetryingConnection, describe(err))
	case healthy:
		s.setState(stateRunning, "")
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

func (s *source) currentError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errText
}

// Status is a source's state, as GET /api/v1/sources lists it and the status command
// shows it.
type Status struct {
	Name           string    `json:"name"`
	State          string    `json:"state"`
	Error          string    `json:"error,omitempty"`
	Checkpoint     time.Time `json:"checkpoint,omitzero"`
	LastEvent      time.Time `json:"last_event,omitzero"`
	StoreOldest    time.Time `json:"store_oldest,omitzero"`
	BufferedEvents int       `json:"buffered_events"`
}

func (s *source) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{
		Name: s.cfg.Name, State: s.state, Error: s.errText,
		Checkpoint: tsTime(s.checkpoint), LastEvent: tsTime(s.lastEvent), StoreOldest: tsTime(s.storeOldest),
		BufferedEvents: s.buf.length(),
	}
}

func tsTime(ts bson.Timestamp) time.Time {
	if ts.IsZero() {
		return time.Time{}
	}
	return time.Unix(int64(ts.T), 0).UTC()
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

func (s *source) sendHeartbeat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, storeAttemptTimeout)
	defer cancel()
	if oldest, ok, err := s.store.oldest(ctx); err == nil && ok {
		s.mu.Lock()
		s.storeOldest = oldest
		s.mu.Unlock()
		s.metrics.storeOldest.WithLabelValues(s.cfg.Name).Set(seconds(oldest))
	}
	st := s.status()
	err := s.beats.report(ctx, s.cfg.Name, heartbeat{
		status: st.State, scope: s.cfg.Database, checkpoint: st.Checkpoint, lastEvent: st.LastEvent,
		firstOplog: st.StoreOldest, errText: st.Error,
		running: st.State != stateStopped && st.State != stateResumeTokenLost,
	})
	if err != nil && ctx.Err() == nil {
		s.metrics.errors.WithLabelValues(s.cfg.Name, errHeartbeat).Inc()
		level.Debug(s.logger).Log("msg", "Heartbeat not written; counted in oplog_capture_errors_total{kind=\"heartbeat\"}", "err", describe(err))
	}
}

// backoff is a capped exponential delay with full jitter: retries of many sources do not
// hit a recovering server at once.
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
