package collector

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// tenure is the source's hold of its lease: the epoch it holds (or held last), how to
// end the capture when the store says the lease moved on, and what is checked for
// foreign writes since it was taken.
type tenure struct {
	mu    sync.Mutex
	epoch int64
	lose  func() // set while the lease is held
	// foreignAfter is the greatest ObjectId _id checked for foreign writes in this
	// tenure; zero until the first check.
	foreignAfter bson.ObjectID
}

// begin records the lease taken at epoch; lose ends the capture.
func (t *tenure) begin(epoch int64, lose func()) {
	t.mu.Lock()
	t.epoch, t.lose, t.foreignAfter = epoch, lose, bson.ObjectID{}
	t.mu.Unlock()
}

// end records that the lease is no longer held (its epoch is kept).
func (t *tenure) end() {
	t.mu.Lock()
	t.lose = nil
	t.mu.Unlock()
}

// current is the epoch held, or held last, and whether the lease is held now.
func (t *tenure) current() (epoch int64, holds bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.epoch, t.lose != nil
}

// holds tells whether the lease is held now.
func (t *tenure) holds() bool {
	_, holds := t.current()
	return holds
}

// lost ends the capture, if the lease is held.
func (t *tenure) lost() {
	t.mu.Lock()
	lose := t.lose
	t.mu.Unlock()
	if lose != nil {
		lose()
	}
}

// foreignChecked is where the last check for foreign writes ended, with the epoch and
// whether the lease is held.
func (t *tenure) foreignChecked() (epoch int64, holds bool, after bson.ObjectID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.epoch, t.lose != nil, t.foreignAfter
}

// checkedForeign records where a check for foreign writes made at epoch ended, unless
// the lease was taken again since.
func (t *tenure) checkedForeign(epoch int64, after bson.ObjectID) {
	t.mu.Lock()
	if t.epoch == epoch {
		t.foreignAfter = after
	}
	t.mu.Unlock()
}

// awaitLease takes the source's lease, standing by while another live collector holds
// it, and returns the epoch it took it at; 0 when ctx ends first.
func (s *source) awaitLease(ctx context.Context) int64 {
	for attempt := 0; ; attempt++ {
		epoch, held, err := s.leases.acquire(ctx, s.cfg.Name, nil)
		switch {
		case epoch > 0:
			s.state.standingBy("", false)
			s.state.set(stateStarting, "")
			return epoch
		case err != nil:
			if ctx.Err() != nil {
				return 0
			}
			s.metrics.errors.WithLabelValues(s.cfg.Name, errLease).Inc()
			s.state.set(stateRetryingConnection, "cannot take the source's lease: "+describe(err))
			if !sleep(ctx, backoff(attempt, s.common.MaxBackoff)) {
				return 0
			}
			continue
		case held != nil:
			s.standBy(held)
		}
		attempt = 0
		if !sleep(ctx, s.leases.timing.pollEvery()) {
			return 0
		}
	}
}

// standBy records why the source is not captured here: another collector holds its
// lease, a reset or de-registration is under way, or it is de-registered.
func (s *source) standBy(held *lease) {
	switch {
	case held.Wiping != nil:
		s.state.standingBy("", false)
		s.state.set(stateResettingOplogStore, held.Wiping.Action+" by "+held.Wiping.By+" since "+held.Wiping.Since.Time().UTC().Format(time.RFC3339)+
			": the source is captured again once it is done; if it was interrupted, run it again (oplog_collector "+held.Wiping.Action+" --source "+s.cfg.Name+")")
	case held.Deregistered != nil:
		s.state.standingBy("", true)
		s.state.set(stateStopped, "de-registered by "+held.Deregistered.By+" at "+held.Deregistered.At.Time().UTC().Format(time.RFC3339)+
			": it is not captured until it is reset (oplog_collector reset --source "+s.cfg.Name+"), or remove it from the config")
	default:
		s.state.standingBy(held.Holder.String(), false)
		s.state.set(stateStandby, "")
	}
}

// hold captures while the lease is ours at epoch, renewing it. lost is true when the
// lease moved on (another collector took it over, a reset or de-registration): the
// capture stopped, and the source stands by again.
func (s *source) hold(ctx, kill context.Context, epoch int64) (final, errText string, lost bool) {
	holdCtx, cancel := context.WithCancelCause(ctx)
	s.tenure.begin(epoch, func() { cancel(errLeaseLost) })
	var renewing sync.WaitGroup
	renewing.Go(func() { s.keepLease(holdCtx, epoch, cancel) })

	final, errText = s.capture(holdCtx, kill, epoch)
	if final == stateResumeTokenLost {
		// Keep the lease until a reset, so that no standby fails the same way.
		s.state.set(final, errText)
		<-holdCtx.Done()
	}
	lost = context.Cause(holdCtx) == errLeaseLost && ctx.Err() == nil
	cancel(nil)
	renewing.Wait()
	s.tenure.end()
	if final == stateError && !lost {
		// A wrong cluster: let a standby configured for the right one take over.
		s.state.set(final, errText)
		releaseCtx, stop := context.WithTimeout(kill, finalReportTimeout)
		_ = s.leases.release(releaseCtx, s.cfg.Name, epoch)
		stop()
		<-ctx.Done()
	}
	return final, errText, lost
}

// leaseLost ends the capture: the store refused a write at the holder's epoch.
func (s *source) leaseLost() {
	s.metrics.errors.WithLabelValues(s.cfg.Name, errLease).Inc()
	s.tenure.lost()
}

// keepLease renews the lease at the lease's renewal period. When another collector
// holds it now, it ends the capture (stop). A renewal that fails otherwise is retried:
// the store being away must not stop a capture that no one else can take over; and if
// a partition lets another collector take it over meanwhile, the store refuses this
// one's writes (fence.go).
func (s *source) keepLease(ctx context.Context, epoch int64, stop context.CancelCauseFunc) {
	period := s.leases.timing.renewEvery()
	every(ctx, period, func() {
		renewCtx, cancel := context.WithTimeout(ctx, period)
		err := s.leases.renew(renewCtx, s.cfg.Name, epoch)
		cancel()
		switch {
		case errors.Is(err, errLeaseLost):
			stop(errLeaseLost) // ends ctx, and with it every
		case err != nil && ctx.Err() == nil:
			s.metrics.errors.WithLabelValues(s.cfg.Name, errLease).Inc()
			level.Warn(s.logger).Log("msg", "Lease not renewed; capture goes on and the renewal is retried", "err", describe(err))
		}
	})
}
