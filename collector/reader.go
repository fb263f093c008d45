package collector

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/go-kit/log/level"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// errInvalidated ends a stream after its invalidate event: it is reopened at once with
// startAfter, the only option that can pass an invalidate.
var errInvalidated = errors.New("change stream invalidated")

// readLoop keeps a change stream open, reopening it after failures with capped
// exponential backoff and jitter, for ever. It returns the error when the resume token
// is lost: the source cannot go on without a reset.
func (s *source) readLoop(ctx context.Context, pos position, buf *buffer) (lost error) {
	attempt := 0
	for {
		opened, err := s.readStream(ctx, &pos, buf)
		if ctx.Err() != nil {
			return nil
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
			return err
		}
		s.metrics.errors.WithLabelValues(s.cfg.Name, errSourceRead).Inc()
		s.metrics.retries.WithLabelValues(s.cfg.Name, retrySource).Inc()
		s.setHealth(&s.sourceOK, false, err)
		if !sleep(ctx, backoff(attempt, s.common.MaxBackoff)) {
			return nil
		}
		attempt++
	}
}

// readStream opens the change stream at pos and reads it into buf until it fails; pos
// follows what was read, so a reopen continues where reading stopped. It only ever
// moves to the end of a whole event: a stream opened inside a split event would lose
// the first fragment's fields for the others.
func (s *source) readStream(ctx context.Context, pos *position, buf *buffer) (opened bool, err error) {
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
	s.mu.Lock()
	s.streaming = true
	s.mu.Unlock()
	s.setHealth(&s.sourceOK, true, nil)
	if pos.Token == nil {
		// First start: save where "now" is at once, so that a restart resumes here.
		if tok := cs.ResumeToken(); tok != nil {
			if err := s.pushPosition(ctx, pos, buf, tok, time.Now(), false); err != nil {
				return true, err
			}
		}
	} else if err := buf.push(ctx, item{pos: *pos, restart: true}); err != nil {
		return true, err
	}
	defer buf.publish() // what was read goes to the writer, however reading ends
	buf.publish()
	var split splitState
	midEvent := false
	// saved is the newest token the writer saves or has saved: an event's is saved with
	// its batch, a post-batch token every checkpoint_interval.
	saved, lastCheckpoint := pos.Token, time.Now()
	read, lastRead := 0, time.Now() // the events of the read in progress; when the last one ended
	for {
		if cs.TryNext(ctx) {
			it, err := toItem(s.cfg.Name, cs.Current, time.Now(), &split)
			if orphan, ok := errors.AsType[*orphanFragment](err); ok {
				split = s.recoverSplit(ctx, orphan)
				it, err = toItem(s.cfg.Name, cs.Current, time.Now(), &split)
			}
			if err != nil {
				return true, err
			}
			if err := buf.push(ctx, it); err != nil {
				return true, err
			}
			midEvent = !it.checkpoint()
			if !midEvent {
				*pos = it.pos
				saved = it.pos.Token
			}
			if it.pos.StartAfter {
				return true, errInvalidated
			}
			if read++; cs.RemainingBatchLength() == 0 {
				// The end of a read: its events go to the writer together.
				buf.publish()
				now := time.Now()
				wait := pause(read, now.Sub(lastRead), s.common.Batch)
				read, lastRead = 0, now
				if wait > 0 && !sleep(ctx, wait) {
					return true, ctx.Err()
				}
			}
			continue
		}
		lastRead = time.Now()
		if err := cs.Err(); err != nil {
			return true, err
		}
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		if cs.ID() == 0 {
			return true, errors.New("the server closed the change stream")
		}
		// An empty batch: the source had nothing more when it answered. Its token is
		// saved every checkpoint_interval; in between, it only moves the checkpoint
		// once what was read before it is written.
		if tok := cs.ResumeToken(); tok != nil && !midEvent {
			answered := time.Now()
			save := !bytes.Equal(tok, saved) && answered.Sub(lastCheckpoint) >= s.common.CheckpointInterval
			if err := s.pushPosition(ctx, pos, buf, tok, answered, !save); err != nil {
				return true, err
			}
			if save {
				saved, lastCheckpoint = pos.Token, answered
			}
		}
	}
}

// recoverSplit finds what the first fragment of a split event carried (its type), when
// the stream was opened inside the event: that fragment is in the store, written before
// the position that led here was saved. Unknown, the type stays empty; the time is in
// the fragment's token either way.
func (s *source) recoverSplit(ctx context.Context, orphan *orphanFragment) splitState {
	opType, err := s.store.firstFragmentType(ctx, orphan.clusterTime, orphan.data)
	if err != nil {
		level.Warn(s.logger).Log("msg", "The first fragment of a split event read from the middle was not found in the store; its later fragments are stored without the event's type",
			"cluster_time", tsTime(orphan.clusterTime), "err", describe(err))
	}
	return splitState{opType: opType, clusterTime: orphan.clusterTime}
}

// pushPosition hands a post-batch token, which the source answered at answered, to the
// writer, for once everything before it is written: to save, or (progressOnly) to show
// how far the store holds every event. The answer's own times ($clusterTime,
// operationTime) tell only the second: this host's clock says it to the millisecond.
func (s *source) pushPosition(ctx context.Context, pos *position, buf *buffer, token bson.Raw, answered time.Time, progressOnly bool) error {
	p := *pos
	if !bytes.Equal(token, pos.Token) {
		ts, _ := oplogstore.TokenTime(token)
		p = position{Token: bytes.Clone(token), ClusterTime: ts}
	}
	p.Wall = answered
	if err := buf.push(ctx, item{pos: p, progressOnly: progressOnly}); err != nil {
		return err
	}
	buf.publish()
	*pos = p
	return nil
}

// pause is how long to wait before reading again after a read that brought n events,
// gathered over the time given. Each read that brings events is one store write, a
// transaction of four round trips, and each read a round trip of its own: read at every
// write of a source that writes slowly, they would cost more than its events. So reading
// waits about as long as batch.min_events take to come at the pace the read saw, at most
// batch.max_wait, and then brings them in one read. A full read (a backlog) and an empty
// one (the read waited on the source already) do not wait; and an event after a quiet
// spell is read, and written, at once: the read waiting on the source returns with it.
func pause(n int, over time.Duration, b config.Batch) time.Duration {
	if n == 0 || n >= b.MaxEvents {
		return 0
	}
	if d := float64(over) * float64(b.MinEvents) / float64(n); d < float64(b.MaxWait) {
		return time.Duration(d)
	}
	return b.MaxWait
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
	case pos.Token != nil && pos.StartAfter:
		opts.SetStartAfter(pos.Token)
	case pos.Token != nil:
		opts.SetResumeAfter(pos.Token)
	case !pos.ClusterTime.IsZero():
		opts.SetStartAtOperationTime(&pos.ClusterTime) // a position carried as a time only
	}
	if s.cfg.Database == "" {
		return s.client.Watch(ctx, pipeline, opts)
	}
	return s.client.Database(s.cfg.Database).Watch(ctx, pipeline, opts)
}

// Error codes that mean the saved position is gone from the source's oplog
// (docs/oplog-store.md): ChangeStreamHistoryLost, ChangeStreamFatalError, and the
// resume-token-not-found code of MongoDB 4.0.
var resumeTokenLostCodes = []int{286, 280, 40576}

// isResumeTokenLost tells a stream that can never be resumed from the saved token from
// one that only needs reopening.
func isResumeTokenLost(err error) bool {
	var se mongo.ServerError
	if !errors.As(err, &se) {
		return false
	}
	if se.HasErrorLabel("NonResumableChangeStreamError") {
		return true
	}
	for _, code := range resumeTokenLostCodes {
		if se.HasErrorCode(code) {
			return true
		}
	}
	return false
}
