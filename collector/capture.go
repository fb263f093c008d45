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

// capture reads and writes the source's events while the lease is this source's at
// epoch, until ctx ends or the resume token is lost, then writes what it has read
// (until done, or kill ends). It returns the final state and its error text.
func (s *source) capture(ctx, kill context.Context, epoch int64) (final, errText string) {
	w := &writer{
		store: s.store, epoch: epoch, retention: s.common.Retention,
		report: newWriterReports(s.cfg.Name, s.metrics, s.health.store, s.progress, s.foreignWrites, s.logger),
	}
	pos, err := s.prepare(ctx, w)
	switch {
	case errors.Is(err, errWrongCluster):
		return stateError, err.Error()
	case err != nil:
		return stateStopped, ""
	}
	buf := newBuffer(s.common.Buffer.MaxEvents, s.common.Buffer.MaxBytes, s.common.Batch)
	s.buf.Store(buf)
	w.buf = buf
	writerDone := make(chan bool, 1)
	go func() { writerDone <- w.run(kill) }()

	lost := s.reader.loop(ctx, pos, buf)
	if lost == nil {
		s.state.set(stateStopping, "")
	}
	buf.close()
	if complete := <-writerDone; !complete && context.Cause(ctx) != errLeaseLost {
		level.Warn(s.logger).Log("msg", "Stopped before every event read was written; they are read again at the next start", "unwritten", buf.length())
	}
	if lost == nil {
		return stateStopped, ""
	}
	// A holder that was paused reads on from where it stopped, which the collector
	// that took over may have passed long ago: the gap is recorded, fenced, only if the
	// lease is still this one's.
	err = s.store.recordGap(kill, epoch, oplogstore.Gap{Reason: oplogstore.GapResumeTokenLost, After: s.checkpointTime(), Detail: describe(lost)})
	switch {
	case errors.Is(err, errFenced):
		s.leaseLost()
		return stateStopped, ""
	case err != nil:
		level.Error(s.logger).Log("msg", "Gap in the captured history not recorded", "reason", oplogstore.GapResumeTokenLost, "err", describe(err))
	}
	return stateResumeTokenLost, describe(lost) + "; the oplog no longer holds the saved position: capture again from the oldest event it holds (oplog_collector resume --source " + s.cfg.Name + " --from earliest), or reset this source"
}

// prepare reads, from the store, where to resume and what the writer w must know
// (never from memory: a lease lost and taken again may have been held by another
// meanwhile), retrying while the store or the source cannot be reached. It refuses a
// source that is not the cluster the store's history comes from. w.openGap is set when
// capture starts from now: the gaps recorded before are closed at the first saved
// position.
func (s *source) prepare(ctx context.Context, w *writer) (pos position, err error) {
	var saved tokenDocument
	if !s.health.store.retry(ctx, func(ctx context.Context) (err error) {
		if w.eventsExist, err = s.store.prepareEvents(ctx, s.common.Retention); err != nil {
			return err
		}
		saved, err = s.store.loadToken(ctx)
		return err
	}) {
		return position{}, ctx.Err()
	}
	var id clusterIdentity
	if !s.health.source.retry(ctx, func(ctx context.Context) (err error) {
		id, err = identify(ctx, s.client)
		return err
	}) {
		return position{}, ctx.Err()
	}
	if saved.Identity != nil && !saved.Identity.sameCluster(id) {
		s.metrics.errors.WithLabelValues(s.cfg.Name, errIdentity).Inc()
		return position{}, fmt.Errorf("%w: the store's history of %q was captured from %s, but its uri reaches %s; "+
			"point the source at the original cluster, give it another name, or reset it to start a new history",
			errWrongCluster, s.cfg.Name, saved.Identity, id)
	}
	w.identity = &id // recorded with every saved position
	w.last = saved.Token
	pos = saved.position()
	if start, ok := saved.resumePoint(); ok {
		s.start.carry = nil
		s.progress.savedAt(pos) // the moment before the start: the store claims no later event yet
		return start, nil
	}
	if pos.Token == nil {
		var empty bool
		if !s.health.store.retry(ctx, func(ctx context.Context) (err error) {
			empty, err = s.store.holdsNothing(ctx)
			return err
		}) {
			return position{}, ctx.Err()
		}
		if empty {
			pos = s.carriedPosition(ctx, w)
		} else {
			s.noteMissingPosition(ctx, w.epoch)
		}
	}
	s.start.carry = nil // used once: memory is not trusted across a lost lease
	if pos.Token != nil || !pos.ClusterTime.IsZero() {
		s.progress.savedAt(pos)
		return pos, nil
	}
	w.openGap = true
	return pos, ctx.Err()
}

// carriedPosition is where the source got to before this store, which holds nothing of
// it: from the config reload that changed the store, else from the heartbeat's
// checkpoint, written by the previous holder (to the second: the events of that second
// are captured again). A token is saved in this store at once, so a restart goes on
// from it too.
func (s *source) carriedPosition(ctx context.Context, w *writer) position {
	carry := s.start.carry
	from := "the previous store, before the reload"
	if carry == nil {
		checkpoint, err := s.beats.checkpoint(ctx, s.cfg.Name)
		if err != nil || checkpoint.IsZero() {
			return position{}
		}
		carry = &position{ClusterTime: bson.Timestamp{T: uint32(checkpoint.Unix())}}
		from = "the heartbeat's checkpoint, which the previous holder reported"
	}
	if carry.Token != nil && !w.report.tokens.retry(ctx, func(ctx context.Context) error {
		_, err := s.store.write(ctx, w.epoch, batchWrite{pos: carry, identity: w.identity}, &w.command)
		return err
	}) {
		return position{}
	}
	if carry.Token != nil {
		w.last = carry.Token
	}
	level.Info(s.logger).Log("msg", "The store holds nothing of this source: going on from the position of "+from+
		"; events captured before it are in the previous store, so the two together hold every event", "cluster_time", tsTime(carry.ClusterTime))
	return *carry
}

// noteMissingPosition records a gap when the store holds events but no position to go
// on from: capture starts from now, and what happened in between is not captured.
func (s *source) noteMissingPosition(ctx context.Context, epoch int64) {
	newest, ok, err := s.store.newest(ctx)
	if err != nil || !ok {
		return
	}
	level.Warn(s.logger).Log("msg", "The store holds events of this source but no saved position: capturing from now; the events since the newest stored one are not captured (recorded as a gap)", "newest_stored", tsTime(newest))
	err = s.store.recordGap(ctx, epoch, oplogstore.Gap{Reason: oplogstore.GapPositionMissing, After: newest,
		Detail: "the store held events but no saved resume position; capture started again from then"})
	if errors.Is(err, errFenced) {
		s.leaseLost()
	} else if err != nil {
		level.Error(s.logger).Log("msg", "Gap in the captured history not recorded", "reason", oplogstore.GapPositionMissing, "err", describe(err))
	}
}

// checkpointTime is the cluster time of the last saved position.
func (s *source) checkpointTime() (ts bson.Timestamp) {
	if p := s.progress.position(); p != nil {
		ts = p.ClusterTime
	}
	return ts
}
