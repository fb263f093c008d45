package collector

import (
	"context"
	"time"

	"github.com/go-kit/log/level"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// writer takes batches from the buffer and stores them: the events first, acknowledged
// by a majority, then the position that covers them. A batch's position is saved while
// the next batch's events are written: the store is not left idle for the round trip of
// every save (about 5% of the writer's time at saturation), and a position is still
// saved only once its events are stored, and only after the position before it.
type writer struct {
	source  *source
	buf     *buffer
	command []byte     // the insert command, reused from batch to batch
	docs    []bson.Raw // the batch's store documents, reused likewise
	// saving is the result of the position save in flight, nil when none is.
	saving chan bool
	// openGap is a capture that started from now: the first saved position closes the
	// gaps recorded before it. Only the save in flight uses it.
	openGap bool
}

// run writes until the buffer is closed and drained (true), or ctx ends first (false).
func (w *writer) run(ctx context.Context) (complete bool) {
	s := w.source
	// No save outlives the writer: the next capture of the source must not meet it.
	defer func() { complete = w.saved() && complete }()
	var batch []item // reused: one batch's array is enough
	for {
		var err error
		batch, err = w.buf.take(ctx, batch)
		if err != nil {
			return err == errBufferClosed
		}
		s.progress.writing(time.Now())
		if batch[0].restart {
			if !w.saved() || !w.dropAfter(ctx, batch[0].pos) {
				return false
			}
		} else if !w.storeEvents(ctx, batch) || !w.saved() {
			return false
		} else if pos := checkpointOf(batch); pos != nil {
			w.saving = make(chan bool, 1)
			s.progress.saving(time.Now())
			go func(pos position) {
				ok := w.savePosition(ctx, pos)
				s.progress.saving(time.Time{})
				w.saving <- ok
			}(*pos)
		}
		clear(batch) // the written documents are garbage now
		s.progress.writing(time.Time{})
		s.metrics.bufferEvents.WithLabelValues(s.cfg.Name).Set(float64(w.buf.length()))
	}
}

// dropAfter deletes what the store holds after pos, where the stream starts again.
func (w *writer) dropAfter(ctx context.Context, pos position) bool {
	s := w.source
	var dropped int64
	if !s.retry(ctx, errStoreWrite, &s.storeOK, func(ctx context.Context) (err error) {
		dropped, err = s.store.dropAfter(ctx, pos.Token)
		return err
	}) {
		return false
	}
	if dropped > 0 {
		level.Info(s.logger).Log("msg", "Dropped what was stored after the position the stream starts again from; it is written again as read now", "documents", dropped)
	}
	return true
}

// storeEvents writes the batch's events, retrying until they are acknowledged.
func (w *writer) storeEvents(ctx context.Context, batch []item) bool {
	s, name := w.source, w.source.cfg.Name
	docs := w.docs[:0]
	size := 0
	for _, it := range batch {
		if it.doc != nil {
			docs = append(append(docs, it.doc), it.parts...)
			size += it.size
		}
	}
	if len(docs) == 0 {
		return true
	}
	w.docs = docs
	defer clear(docs)
	start := time.Now()
	if !s.retry(ctx, errStoreWrite, &s.storeOK, func(ctx context.Context) error { return s.store.insert(ctx, docs, &w.command) }) {
		return false
	}
	s.metrics.batchWrite.WithLabelValues(name).Observe(time.Since(start).Seconds())
	s.metrics.batches.WithLabelValues(name).Inc()
	s.metrics.bytes.WithLabelValues(name).Add(float64(size))
	var newest bson.Timestamp
	perType := map[string]int{} // one counter update per type and batch, not per event
	for _, it := range batch {
		if it.doc != nil {
			perType[it.opType]++
			newest = it.pos.ClusterTime
		}
	}
	for opType, n := range perType {
		s.metrics.events.WithLabelValues(name, opType).Add(float64(n))
	}
	s.progress.stored(newest)
	return true
}

// saved waits for the position save in flight, if any, and tells whether it succeeded:
// it fails only when the writer is stopped.
func (w *writer) saved() bool {
	if w.saving == nil {
		return true
	}
	ok := <-w.saving
	w.saving = nil
	return ok
}

// checkpointOf returns the batch's last position a stream may resume from: never a
// fragment's inside a split event. Nil when the batch has none.
func checkpointOf(batch []item) *position {
	for i := len(batch) - 1; i >= 0; i-- {
		if batch[i].checkpoint() {
			return &batch[i].pos
		}
	}
	return nil
}

// savePosition saves pos, whose events are stored, retrying until it is acknowledged.
func (w *writer) savePosition(ctx context.Context, pos position) bool {
	s := w.source
	if !s.retry(ctx, errTokenSave, &s.storeOK, func(ctx context.Context) error { return s.store.saveToken(ctx, pos, s.identity) }) {
		return false
	}
	s.progress.savedAt(pos)
	if w.openGap && !pos.ClusterTime.IsZero() {
		if err := s.store.closeGaps(ctx, pos.ClusterTime); err != nil {
			level.Warn(s.logger).Log("msg", "The record of a gap not closed; retried at the next batch", "err", describe(err))
		} else {
			w.openGap = false
		}
	}
	return true
}
