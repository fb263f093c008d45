package collector

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-kit/log/level"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// errWrongCluster is a source whose cluster is not the one the store's history comes
// from: continuing would mix two clusters' events under one name.
var errWrongCluster = errors.New("the source is not the cluster the store's history comes from")

// capture reads and writes the source's events until ctx ends or the resume token is
// lost, then writes what it has read (until done, or kill ends). It returns the final
// state and its error text.
func (s *source) capture(ctx, kill context.Context) (final, errText string) {
	pos, openGap, err := s.prepare(ctx)
	switch {
	case errors.Is(err, errWrongCluster):
		return stateError, err.Error()
	case err != nil:
		return stateStopped, ""
	}
	buf := newBuffer(s.common.Buffer.MaxEvents, s.common.Buffer.MaxBytes, s.common.Batch)
	s.setBuffer(buf)
	w := &writer{source: s, buf: buf, openGap: openGap}
	writerDone := make(chan bool, 1)
	go func() { writerDone <- w.run(kill) }()

	lost := s.readLoop(ctx, pos, buf)
	if lost == nil {
		s.setState(stateStopping, "")
	}
	buf.close()
	if complete := <-writerDone; !complete {
		level.Warn(s.logger).Log("msg", "Stopped before every event read was written; they are read again at the next start", "unwritten", buf.length())
	}
	if lost == nil {
		return stateStopped, ""
	}
	errText = describe(lost) + "; the oplog no longer holds the saved position: reset this source (oplog_collector reset --source " + s.cfg.Name + ")"
	s.recordGap(kill, oplogstore.Gap{Reason: oplogstore.GapResumeTokenLost, After: s.checkpointTime(), Detail: describe(lost)})
	return stateResumeTokenLost, errText
}

// prepare readies the store and finds where to resume, retrying while the store or the
// source cannot be reached. It refuses a source that is not the cluster the store's
// history comes from. openGap is true when capture starts from now: the gaps recorded
// before are closed at the first saved position.
func (s *source) prepare(ctx context.Context) (pos position, openGap bool, err error) {
	var saved tokenDocument
	if !s.retry(ctx, errStoreWrite, &s.storeOK, func(ctx context.Context) error {
		if err := s.store.ensureIndexes(ctx, s.common.Retention); err != nil {
			return err
		}
		saved, err = s.store.loadToken(ctx)
		return err
	}) {
		return position{}, false, ctx.Err()
	}
	var id clusterIdentity
	if !s.retry(ctx, errSourceRead, &s.sourceOK, func(ctx context.Context) (err error) {
		id, err = identify(ctx, s.client)
		return err
	}) {
		return position{}, false, ctx.Err()
	}
	if saved.Identity != nil && !saved.Identity.sameCluster(id) {
		s.metrics.errors.WithLabelValues(s.cfg.Name, errIdentity).Inc()
		return position{}, false, fmt.Errorf("%w: the store's history of %q was captured from %s, but its uri reaches %s; "+
			"point the source at the original cluster, give it another name, or reset it to start a new history",
			errWrongCluster, s.cfg.Name, saved.Identity, id)
	}
	s.identity = &id // recorded with every saved position
	pos = saved.position()
	if pos.Token == nil && !s.start.fresh {
		pos = s.carriedPosition(ctx)
	}
	if pos.Token != nil {
		s.progress.savedAt(pos)
		return pos, false, nil
	}
	if !s.start.fresh {
		s.noteMissingPosition(ctx)
	}
	return pos, true, ctx.Err()
}

// carriedPosition is where the source got to in the store used before this one: from
// the config reload that changed the store, else from the lease, where the holder keeps
// its last saved position. It is saved in this store at once, so a restart goes on
// from it too.
func (s *source) carriedPosition(ctx context.Context) position {
	carry := s.start.carry
	from := "the previous store, before the reload"
	if carry == nil {
		if l, _, err := s.leases.read(ctx, s.cfg.Name); err == nil && l != nil && l.Position != nil {
			carry, from = l.Position, "the lease, where the last holder kept its position"
		}
	}
	if carry == nil || carry.Token == nil {
		return position{}
	}
	if !s.retry(ctx, errTokenSave, &s.storeOK, func(ctx context.Context) error { return s.store.saveToken(ctx, *carry, s.identity) }) {
		return position{}
	}
	level.Info(s.logger).Log("msg", "No position saved in this store: going on from the position of "+from+
		"; events captured before it are in the previous store, so the two together hold every event", "cluster_time", tsTime(carry.ClusterTime))
	return *carry
}

// noteMissingPosition records a gap when the store holds events but no position to go
// on from: capture starts from now, and what happened in between is not captured.
func (s *source) noteMissingPosition(ctx context.Context) {
	newest, ok, err := s.store.newest(ctx)
	if err != nil || !ok {
		return
	}
	level.Warn(s.logger).Log("msg", "The store holds events of this source but no saved position: capturing from now; the events since the newest stored one are not captured (recorded as a gap)", "newest_stored", tsTime(newest))
	s.recordGap(ctx, oplogstore.Gap{Reason: oplogstore.GapPositionMissing, After: newest,
		Detail: "the store held events but no saved resume position; capture started again from then"})
}

// recordGap adds gap to the store's record, logging a failure: the record is for
// people, and capture must not wait on it.
func (s *source) recordGap(ctx context.Context, gap oplogstore.Gap) {
	if err := s.store.recordGap(ctx, gap); err != nil {
		level.Error(s.logger).Log("msg", "Gap in the captured history not recorded", "reason", gap.Reason, "err", describe(err))
	}
}

// checkpointTime is the cluster time of the last saved position.
func (s *source) checkpointTime() (ts bson.Timestamp) {
	if p := s.progress.position(); p != nil {
		ts = p.ClusterTime
	}
	return ts
}

// retry runs op until it succeeds or ctx ends (false), counting and logging failures
// against the side (source or store) whose health flag is given. A batch is never
// dropped: the store being away only makes the buffer fill and the reading wait.
func (s *source) retry(ctx context.Context, kind string, health *bool, op func(context.Context) error) bool {
	reason := retryStore
	if kind == errSourceRead {
		reason = retrySource
	}
	for attempt := 0; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, storeAttemptTimeout)
		err := op(attemptCtx)
		cancel()
		if err == nil {
			s.setHealth(health, true, nil)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.metrics.errors.WithLabelValues(s.cfg.Name, kind).Inc()
		s.metrics.retries.WithLabelValues(s.cfg.Name, reason).Inc()
		s.setHealth(health, false, err)
		if !sleep(ctx, backoff(attempt, s.common.MaxBackoff)) {
			return false
		}
	}
}
