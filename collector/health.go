package collector

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// health is how one side of a capture, the source or the store, is doing: whether its
// last attempt worked, and what its failures count as (oplog_capture_errors_total's
// kind and oplog_capture_retries_total's reason). A failure or a recovery is told to
// the source's state, which is derived from both sides (sourceState.derive). Every
// retried operation on a side goes through its health, so the flag, the kind and the
// counters cannot disagree.
type health struct {
	ok      *atomic.Bool           // shared by the views of one side (countedAs)
	kinds   *prometheus.CounterVec // oplog_capture_errors_total of the source, by kind
	kind    string
	retries prometheus.Counter // oplog_capture_retries_total of the side
	backoff time.Duration      // the longest wait between two attempts
	changed func(error)        // the failure (nil: the recovery) for the source's state
	fenced  func()             // a store write refused at the holder's epoch (fence.go)
}

// newHealth is a side's health, working until an attempt fails: reason names the side
// in oplog_capture_retries_total, kind its failures in oplog_capture_errors_total.
func newHealth(m *metrics, source, reason, kind string, backoff time.Duration) *health {
	ok := &atomic.Bool{}
	ok.Store(true)
	return &health{
		ok:      ok,
		kinds:   m.errors.MustCurryWith(prometheus.Labels{"source_cluster": source}),
		kind:    kind,
		retries: m.retries.WithLabelValues(source, reason),
		backoff: backoff,
		changed: func(error) {},
		fenced:  func() {},
	}
}

// countedAs is the same side with its failures counted as another kind: a store write
// that saves only a position is a token_save.
func (h *health) countedAs(kind string) *health {
	view := *h
	view.kind = kind
	return &view
}

// works tells whether the side's last attempt worked.
func (h *health) works() bool { return h.ok.Load() }

// recovered records an attempt that worked.
func (h *health) recovered() {
	h.ok.Store(true)
	h.changed(nil)
}

// failed records an attempt that failed, and counts it; it is retried.
func (h *health) failed(err error) {
	h.kinds.WithLabelValues(h.kind).Inc()
	h.retries.Inc()
	h.ok.Store(false)
	h.changed(err)
}

// retry runs op until it succeeds (true), or ctx ends or the store refuses the holder's
// writes (false). Nothing is dropped for a side being away: a write waiting here only
// makes the buffer fill and the reading wait.
func (h *health) retry(ctx context.Context, op func(context.Context) error) bool {
	for attempt := 0; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, storeAttemptTimeout)
		err := op(attemptCtx)
		cancel()
		switch {
		case err == nil:
			h.recovered()
			return true
		case errors.Is(err, errFenced):
			h.fenced()
			return false
		case ctx.Err() != nil:
			return false
		}
		h.failed(err)
		if !sleep(ctx, backoff(attempt, h.backoff)) {
			return false
		}
	}
}
