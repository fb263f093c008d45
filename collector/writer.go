package collector

import (
	"bytes"
	"context"
	"time"

	"github.com/go-kit/log/level"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// writer takes batches from the buffer and stores them, each in one transaction
// fenced by the holder's lease epoch (fence.go): the events and the position that
// covers them commit together, acknowledged by a majority, or not at all. A position is
// so never saved before its events, and never by a collector that lost the lease.
type writer struct {
	source  *source
	buf     *buffer
	epoch   int64
	command []byte     // the insert command, reused from batch to batch
	docs    []bson.Raw // the batch's store documents, reused likewise
	// last is the token the store holds, as this holder last read or saved it.
	last bson.Raw
	// eventsExist is false until the events collection is known to exist: the first
	// write creates it, with its indexes.
	eventsExist bool
	// openGap is a capture that started from now: the first saved position closes the
	// gaps recorded before it.
	openGap bool
}

// run writes until the buffer is closed and drained (true), or ctx ends first, or the
// store refuses the holder's writes (false).
func (w *writer) run(ctx context.Context) bool {
	s := w.source
	var batch []item // reused: one batch's array is enough
	for {
		var err error
		batch, err = w.buf.take(ctx, batch)
		if err != nil {
			return err == errBufferClosed
		}
		s.progress.writing(time.Now())
		ok := false
		if batch[0].restart {
			ok = w.dropAfter(ctx, batch[0].pos)
		} else {
			ok = w.write(ctx, batch)
		}
		if !ok {
			return false
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
		dropped, err = s.store.dropAfter(ctx, w.epoch, pos.Token)
		return err
	}) {
		return false
	}
	if dropped > 0 {
		level.Info(s.logger).Log("msg", "Dropped what was stored after the position the stream starts again from; it is written again as read now", "documents", dropped)
	}
	return true
}

// write stores the batch's events and its position, retrying until they are
// acknowledged.
func (w *writer) write(ctx context.Context, batch []item) bool {
	s := w.source
	docs := w.docs[:0]
	size := 0
	for _, it := range batch {
		if it.doc != nil {
			docs = append(append(docs, it.doc), it.parts...)
			size += it.size
		}
	}
	w.docs = docs
	defer clear(docs)
	pos := checkpointOf(batch)
	switch {
	case len(docs) == 0 && pos == nil:
		return true
	case len(docs) == 0 && !toSave(batch):
		// Post-batch tokens read while everything before them was being written: the
		// store now holds every event up to the last one's answer. Saving them would
		// cost a transaction a second on a quiet source; one is saved every
		// checkpoint_interval.
		s.progress.reached(pos.wall())
		return true
	}
	kind := errStoreWrite
	if len(docs) == 0 {
		kind = errTokenSave
	}
	start := time.Now()
	var foreign, again bool
	if !s.retry(ctx, kind, &s.storeOK, func(ctx context.Context) (err error) {
		if len(docs) > 0 && !w.eventsExist {
			if w.eventsExist, err = s.store.prepareEvents(ctx, s.common.Retention); err != nil {
				return err
			}
		}
		foreign, err = s.store.write(ctx, w.epoch, batchWrite{
			docs: docs, pos: pos, identity: s.identity, last: w.last,
			createEvents: !w.eventsExist, retention: s.common.Retention,
			closeGaps: w.openGap, skipStored: again,
		}, &w.command)
		// A batch an earlier attempt wrote after all (its commit's answer was lost): the
		// next attempt writes what is missing, and the position.
		again = again || onlyDuplicates(err)
		return err
	}) {
		return false
	}
	if len(docs) > 0 {
		w.eventsExist = true
		w.stored(batch, size, time.Since(start))
	}
	if pos != nil {
		w.last = bytes.Clone(pos.Token)
		w.openGap = w.openGap && pos.ClusterTime.IsZero()
		s.progress.savedAt(*pos)
	}
	if foreign {
		s.foreignWrites(foreignPosition, 1)
	}
	return true
}

// stored counts a batch of events the store acknowledged.
func (w *writer) stored(batch []item, size int, took time.Duration) {
	s, name := w.source, w.source.cfg.Name
	s.metrics.batchWrite.WithLabelValues(name).Observe(took.Seconds())
	s.metrics.batches.WithLabelValues(name).Inc()
	s.metrics.bytes.WithLabelValues(name).Add(float64(size))
	var newest time.Time
	perType := map[string]int{} // one counter update per type and batch, not per event
	for _, it := range batch {
		if it.doc != nil {
			perType[it.opType]++
			newest = it.pos.wall()
		}
	}
	for opType, n := range perType {
		s.metrics.events.WithLabelValues(name, opType).Add(float64(n))
	}
	s.progress.stored(newest)
}

// toSave tells whether a batch without events holds a position the reader asked to
// save.
func toSave(batch []item) bool {
	for _, it := range batch {
		if it.doc == nil && !it.restart && !it.progressOnly {
			return true
		}
	}
	return false
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
