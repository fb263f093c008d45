package collector

import (
	"bytes"
	"context"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/mongoerr"
)

// writer takes batches from the buffer and stores them, each in one transaction
// fenced by the holder's lease epoch (fence.go): the events and the position that
// covers them commit together, acknowledged by a majority, or not at all. A position is
// so never saved before its events, and never by a collector that lost the lease.
type writer struct {
	buf       *buffer    // what it reads
	store     batchStore // what it writes to
	epoch     int64
	retention time.Duration
	report    writerReports
	command   []byte     // the insert command, reused from batch to batch
	docs      []bson.Raw // the batch's store documents, reused likewise
	// What the store holds, as this holder last read or wrote it.
	identity *clusterIdentity // the source cluster's, recorded with every position
	// last is the token the store holds, as this holder last read or saved it.
	last bson.Raw
	// eventsExist is false until the events collection is known to exist: the first
	// write creates it, with its indexes.
	eventsExist bool
	// openGap is a capture that started from now: the first saved position closes the
	// gaps recorded before it.
	openGap bool
}

// batchStore is the store as a writer sees it (sourceStore): one source's events and
// position, written under the holder's lease.
type batchStore interface {
	prepareEvents(ctx context.Context, retention time.Duration) (exists bool, err error)
	write(ctx context.Context, epoch int64, b batchWrite, command *[]byte) (foreign bool, err error)
	dropAfter(ctx context.Context, epoch int64, token bson.Raw) (int64, error)
}

// writerReports are where a writer tells how writing goes.
type writerReports struct {
	store    *health // the store's side of the capture: writes with events
	tokens   *health // the same side: writes of a position alone (token_save)
	progress *progress
	// foreign records writes found in the store that no holder made.
	foreign func(kind string, n int64)
	logger  log.Logger
	// Of the source's capture metrics.
	batchWrite   prometheus.Observer
	batches      prometheus.Counter
	bytes        prometheus.Counter
	events       *prometheus.CounterVec // by op_type
	bufferEvents prometheus.Gauge
}

// newWriterReports resolves the source's series a writer updates at every batch.
func newWriterReports(name string, m *metrics, store *health, p *progress, foreign func(string, int64), logger log.Logger) writerReports {
	return writerReports{
		store: store, tokens: store.countedAs(errTokenSave), progress: p, foreign: foreign, logger: logger,
		batchWrite:   m.batchWrite.WithLabelValues(name),
		batches:      m.batches.WithLabelValues(name),
		bytes:        m.bytes.WithLabelValues(name),
		events:       m.events.MustCurryWith(prometheus.Labels{"source_cluster": name}),
		bufferEvents: m.bufferEvents.WithLabelValues(name),
	}
}

// run writes until the buffer is closed and drained (true), or ctx ends first, or the
// store refuses the holder's writes (false).
func (w *writer) run(ctx context.Context) bool {
	var batch []item // reused: one batch's array is enough
	for {
		var err error
		batch, err = w.buf.take(ctx, batch)
		if err != nil {
			return err == errBufferClosed
		}
		w.report.progress.writing(time.Now())
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
		w.report.progress.writing(time.Time{})
		w.report.bufferEvents.Set(float64(w.buf.length()))
	}
}

// dropAfter deletes what the store holds after pos, where the stream starts again.
func (w *writer) dropAfter(ctx context.Context, pos position) bool {
	var dropped int64
	if !w.report.store.retry(ctx, func(ctx context.Context) (err error) {
		dropped, err = w.store.dropAfter(ctx, w.epoch, pos.Token)
		return err
	}) {
		return false
	}
	if dropped > 0 {
		level.Info(w.report.logger).Log("msg", "Dropped what was stored after the position the stream starts again from; it is written again as read now", "documents", dropped)
	}
	return true
}

// write stores the batch's events and its position, retrying until they are
// acknowledged.
func (w *writer) write(ctx context.Context, batch []item) bool {
	docs, size := w.documents(batch)
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
		w.report.progress.reached(pos.wall())
		return true
	}
	side := w.report.store
	if len(docs) == 0 {
		side = w.report.tokens
	}
	start := time.Now()
	var foreign, again bool
	if !side.retry(ctx, func(ctx context.Context) (err error) {
		foreign, err = w.attempt(ctx, docs, pos, again)
		// A batch an earlier attempt wrote after all (its commit's answer was lost): the
		// next attempt writes what is missing, and the position.
		again = again || mongoerr.OnlyDuplicateKeys(err)
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
		w.report.progress.savedAt(*pos)
	}
	if foreign {
		w.report.foreign(foreignPosition, 1)
	}
	return true
}

// documents gathers the store documents of a batch's events, in w.docs's array, and
// their size.
func (w *writer) documents(batch []item) (docs []bson.Raw, size int) {
	docs = w.docs[:0]
	for _, it := range batch {
		if it.doc != nil {
			docs = append(append(docs, it.doc), it.parts...)
			size += it.size
		}
	}
	w.docs = docs
	return docs, size
}

// attempt writes docs and pos once; again says an earlier attempt may have written
// some of the documents.
func (w *writer) attempt(ctx context.Context, docs []bson.Raw, pos *position, again bool) (foreign bool, err error) {
	if len(docs) > 0 && !w.eventsExist {
		if w.eventsExist, err = w.store.prepareEvents(ctx, w.retention); err != nil {
			return false, err
		}
	}
	return w.store.write(ctx, w.epoch, batchWrite{
		docs: docs, pos: pos, identity: w.identity, last: w.last,
		createEvents: !w.eventsExist, retention: w.retention,
		closeGaps: w.openGap, skipStored: again,
	}, &w.command)
}

// stored counts a batch of events the store acknowledged.
func (w *writer) stored(batch []item, size int, took time.Duration) {
	w.report.batchWrite.Observe(took.Seconds())
	w.report.batches.Inc()
	w.report.bytes.Add(float64(size))
	var newest time.Time
	perType := map[string]int{} // one counter update per type and batch, not per event
	for _, it := range batch {
		if it.doc != nil {
			perType[it.opType]++
			newest = it.pos.wall()
		}
	}
	for opType, n := range perType {
		w.report.events.WithLabelValues(opType).Add(float64(n))
	}
	w.report.progress.stored(newest)
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
