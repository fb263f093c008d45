package collector

import (
	"context"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// What a restore can reach, exported with every heartbeat beside the store's oldest
// event: the oldest event alone overstates the window of a store with a gap in it (a
// reset, a lost resume token); these series say what `oplog_collector range` says.

// recoverableWindow exports, for one source, what its record of gaps leaves a restore.
type recoverableWindow struct {
	name    string
	store   *mongo.Database
	metrics *metrics
	logger  log.Logger
}

// export reads the source's record of gaps and sets the gap gauges and
// oplog_capture_recoverable_since_timestamp_seconds, given the store's oldest event
// (hasOldest false: the store holds none) and the saved checkpoint. A series that
// cannot be worked out is deleted rather than left at an old value.
func (r recoverableWindow) export(ctx context.Context, oldest bson.Timestamp, hasOldest bool, checkpoint bson.Timestamp) {
	gaps, err := oplogstore.ReadGaps(ctx, r.store, r.name)
	if err != nil {
		r.forget()
		level.Debug(r.logger).Log("msg", "Gaps of the captured history not read; the recoverable window is not exported until they are", "err", describe(err))
		return
	}
	open := 0
	for _, g := range gaps {
		if g.Before.IsZero() {
			open++
		}
	}
	r.metrics.gaps.WithLabelValues(r.name).Set(float64(len(gaps)))
	r.metrics.openGaps.WithLabelValues(r.name).Set(float64(open))
	since, ok := recoverableSince(oldest, checkpoint, gaps)
	if !hasOldest || !ok {
		r.metrics.recoverableSince.DeleteLabelValues(r.name)
		return
	}
	r.metrics.recoverableSince.WithLabelValues(r.name).Set(seconds(since))
}

// forget deletes the series export sets: a standby's figures would be stale, the
// holder's are the ones that count.
func (r recoverableWindow) forget() {
	for _, g := range []interface{ DeleteLabelValues(...string) bool }{r.metrics.gaps, r.metrics.openGaps, r.metrics.recoverableSince} {
		g.DeleteLabelValues(r.name)
	}
}

// recoverableSince is the earliest cluster time from which the store holds every event
// up to checkpoint: the oldest stored event, or the end of the latest gap that begins
// before the checkpoint. A gap with events after After and before Before in doubt (a
// zero After: from the beginning; a zero Before: capture has not started again) cuts
// the stretch there; one that begins at or after the checkpoint does not touch it. ok
// is false when no complete stretch reaches the checkpoint: no checkpoint, or one
// inside a gap (a gap still open, or closed after it). `oplog_collector range` lists
// the same stretches; this is the last of them.
func recoverableSince(oldest, checkpoint bson.Timestamp, gaps []oplogstore.Gap) (bson.Timestamp, bool) {
	if checkpoint.IsZero() {
		return bson.Timestamp{}, false
	}
	since := oldest
	for _, g := range gaps {
		if !g.After.Before(checkpoint) {
			continue
		}
		if g.Before.IsZero() {
			return bson.Timestamp{}, false
		}
		if g.Before.After(since) {
			since = g.Before
		}
	}
	return since, !since.After(checkpoint)
}
