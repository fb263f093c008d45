package collector

import (
	"context"
	"time"

	"github.com/go-kit/log/level"

	hbdoc "github.com/mongomigrate/observability/internal/heartbeat"
)

// Status is a source's state, as GET /api/v1/sources lists it and the status command
// shows it.
type Status struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// Holder is the collector holding the source's lease while this one stands by.
	Holder         string    `json:"holder,omitempty"`
	Checkpoint     time.Time `json:"checkpoint,omitzero"`
	LastEvent      time.Time `json:"last_event,omitzero"`
	StoreOldest    time.Time `json:"store_oldest,omitzero"`
	BufferedEvents int       `json:"buffered_events"`
	// StoreWritePendingSeconds is how long the current store write has waited.
	StoreWritePendingSeconds float64 `json:"store_write_pending_seconds,omitempty"`
	// StoredEvents is about how many events the store holds (GET of one source only).
	StoredEvents *int64 `json:"stored_events,omitempty"`
}

// Window is the recoverable stretch of history: from the oldest stored event to the
// checkpoint, up to which every event is stored.
func (st Status) Window() time.Duration {
	if st.StoreOldest.IsZero() || st.Checkpoint.IsZero() {
		return 0
	}
	return st.Checkpoint.Sub(st.StoreOldest)
}

func (s *source) status() Status {
	snap := s.progress.snapshot()
	pending := s.progress.pending(time.Now())
	state, errText, holder := s.state.current()
	st := Status{
		Name: s.cfg.Name, State: state, Error: errText, Holder: holder,
		Checkpoint: snap.checkpoint, LastEvent: snap.lastEvent, StoreOldest: snap.storeOldest,
		StoreWritePendingSeconds: pending.Seconds(),
	}
	if buf := s.buf.Load(); buf != nil {
		st.BufferedEvents = buf.length()
	}
	return st
}

// heartbeatLoop reports at every interval and at every state change, and looks for
// writes of other processes in the store while the source holds its lease.
func (s *source) heartbeatLoop(ctx context.Context) {
	ticker := time.NewTicker(s.common.HeartbeatInterval)
	defer ticker.Stop()
	for {
		s.sendHeartbeat(ctx, false)
		s.checkForeignDocuments(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-s.state.wake:
		}
	}
}

// sendHeartbeat writes the source's heartbeat document while it holds the lease (or,
// final, as it stops holding it); a standby writes only that it stands by, leaving the
// holder's report as it is.
func (s *source) sendHeartbeat(ctx context.Context, final bool) {
	ctx, cancel := context.WithTimeout(ctx, storeAttemptTimeout)
	defer cancel()
	st := s.status()
	epoch, holds := s.tenure.current()
	var err error
	switch {
	case s.state.isDeregistered():
		return
	case st.State == stateStandby:
		s.recoverable.forget()
		err = s.beats.reportStandby(ctx, s.cfg.Name, s.leases.me)
	case !holds && !final:
		return // the lease is not this collector's: the holder, or the act under way, reports
	default:
		err = s.report(ctx, st, epoch)
	}
	if err != nil && ctx.Err() == nil {
		s.metrics.errors.WithLabelValues(s.cfg.Name, errHeartbeat).Inc()
		level.Debug(s.logger).Log("msg", "Heartbeat not written; counted in oplog_capture_errors_total{kind=\"heartbeat\"}", "err", describe(err))
	}
}

// report writes the holder's heartbeat at epoch, with what the store holds: its oldest
// event, and what its record of gaps leaves a restore.
func (s *source) report(ctx context.Context, st Status, epoch int64) error {
	oldest, ok, err := s.store.oldest(ctx)
	if err == nil && ok {
		s.progress.oldestStored(oldest)
		st.StoreOldest = tsTime(oldest)
	}
	if err == nil {
		s.recoverable.export(ctx, oldest, ok, s.checkpointTime())
	}
	return s.beats.report(ctx, s.cfg.Name, hbdoc.Report{
		Status: st.State, Scope: s.cfg.Database, Checkpoint: s.progress.snapshot().saved, LastEvent: st.LastEvent,
		FirstOplog: st.StoreOldest, SourceOplogOldest: s.headroom.oldestEntry(), Error: st.Error, Holder: &s.leases.me, LeaseEpoch: epoch,
		PID: holding(st.State != stateStopped && st.State != stateResumeTokenLost),
	}, func(ctx context.Context) (bool, error) { return s.leases.holds(ctx, s.cfg.Name, epoch, false) })
}
