package collector

import (
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// sourceState is a source's state as its heartbeat, its status and oplog_capture_state
// tell it: set by the supervisor as the lease comes and goes, and derived, while it
// captures, from the health of both sides, a stalled store write and foreign writes.
// Each change is logged once and wakes the heartbeat.
type sourceState struct {
	name    string
	metrics *metrics
	logger  log.Logger
	sides   sides
	wake    chan struct{} // a change: heartbeat now

	mu      sync.Mutex
	state   string
	errText string
	holder  string // who holds the lease while this source stands by
	// deregistered is a source no collector may capture: it does not report either,
	// or its heartbeat would bring back the metadata document de-registering deleted.
	deregistered bool
	// streaming is set once a change stream is open: only then is the source running.
	streaming bool
	stalled   bool // a store write has waited longer than store_stall_after
	// foreignSeen is when a write of a process that holds no lease was last found in
	// the store (foreign.go).
	foreignSeen time.Time
}

// sides are the two ends of a capture whose health the state is derived from.
type sides struct{ source, store *health }

func newSourceState(name string, m *metrics, logger log.Logger, s sides) *sourceState {
	return &sourceState{name: name, metrics: m, logger: logger, sides: s, wake: make(chan struct{}, 1)}
}

// set changes the state and logs the change, once.
func (st *sourceState) set(state, errText string) {
	st.mu.Lock()
	changed := state != st.state || errText != st.errText
	st.state, st.errText = state, errText
	st.mu.Unlock()
	if !changed {
		return
	}
	st.metrics.setState(st.name, state)
	if errText != "" {
		level.Warn(st.logger).Log("msg", "State changed", "state", state, "err", errText)
	} else {
		level.Info(st.logger).Log("msg", "State changed", "state", state)
	}
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// derive sets the state of a capturing source from the health of its two ends, err
// being the failure that changed it (nil when none): store_unavailable before
// retrying_connection, since a stuck store stops everything.
func (st *sourceState) derive(err error) {
	st.mu.Lock()
	live := st.state == stateStarting || st.state == stateRunning || st.state == stateRetryingConnection || st.state == stateStoreUnavailable || st.state == stateForeignWriter
	stalled, streaming := st.stalled, st.streaming
	foreign := st.foreignWritingLocked(time.Now())
	errText := st.errText
	st.mu.Unlock()
	if !live {
		return
	}
	if err != nil {
		errText = describe(err)
	}
	switch {
	case !st.sides.store.works() || stalled:
		st.set(stateStoreUnavailable, errText)
	case !st.sides.source.works():
		st.set(stateRetryingConnection, errText)
	case streaming && foreign:
		st.set(stateForeignWriter, "a process that holds no lease writes into this source's store (another collector, or the old tool restarted by its manager): stop it")
	case streaming:
		st.set(stateRunning, "")
	}
}

// standingBy records who holds the lease while this source stands by (empty: none),
// and whether the source is de-registered.
func (st *sourceState) standingBy(holder string, deregistered bool) {
	st.mu.Lock()
	st.holder, st.deregistered = holder, deregistered
	st.mu.Unlock()
}

// streamOpened records that a change stream is open, and that the source answers.
func (st *sourceState) streamOpened() {
	st.mu.Lock()
	st.streaming = true
	st.mu.Unlock()
	st.sides.source.recovered()
}

// stall records whether a store write has waited longer than store_stall_after, and
// tells whether that changed.
func (st *sourceState) stall(stalled bool) (changed bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	changed = st.stalled != stalled
	st.stalled = stalled
	return changed
}

// foreignFound records a foreign write found at now, and tells whether it is the first
// since foreignWriterHold.
func (st *sourceState) foreignFound(now time.Time) (first bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	first = !st.foreignWritingLocked(now)
	st.foreignSeen = now
	return first
}

// foreignHoldEnded tells whether the source is in state foreign_writer although no
// foreign write was found within foreignWriterHold: its state is to be derived again.
func (st *sourceState) foreignHoldEnded(now time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.state == stateForeignWriter && !st.foreignWritingLocked(now)
}

// foreignWritingLocked tells whether a foreign write was found within foreignWriterHold
// of now. The caller holds mu.
func (st *sourceState) foreignWritingLocked(now time.Time) bool {
	return !st.foreignSeen.IsZero() && now.Sub(st.foreignSeen) < foreignWriterHold
}

// current is the state, its error text, and who holds the lease while this source
// stands by.
func (st *sourceState) current() (state, errText, holder string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.state, st.errText, st.holder
}

// isDeregistered tells whether the source was found de-registered.
func (st *sourceState) isDeregistered() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.deregistered
}
