package collector

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// awaitLease takes the source's lease, standing by while another live collector holds
// it, and returns the epoch it took it at; 0 when ctx ends first.
func (s *source) awaitLease(ctx context.Context) int64 {
	poll := s.common.LeaseTTL / 4
	for attempt := 0; ; attempt++ {
		epoch, held, err := s.leases.acquire(ctx, s.cfg.Name, nil)
		switch {
		case epoch > 0:
			s.setHolder("", false)
			s.setState(stateStarting, "")
			return epoch
		case err != nil:
			if ctx.Err() != nil {
				return 0
			}
			s.metrics.errors.WithLabelValues(s.cfg.Name, errLease).Inc()
			s.setState(stateRetryingConnection, "cannot take the source's lease: "+describe(err))
			if !sleep(ctx, backoff(attempt, s.common.MaxBackoff)) {
				return 0
			}
			continue
		case held != nil && held.Wiping != nil:
			s.setHolder("", false)
			s.setState(stateResettingOplogStore, held.Wiping.Action+" by "+held.Wiping.By+" since "+held.Wiping.Since.Time().UTC().Format(time.RFC3339)+
				": the source is captured again once it is done; if it was interrupted, run it again (oplog_collector "+held.Wiping.Action+" --source "+s.cfg.Name+")")
		case held != nil && held.Deregistered != nil:
			s.setHolder("", true)
			s.setState(stateStopped, "de-registered by "+held.Deregistered.By+" at "+held.Deregistered.At.Time().UTC().Format(time.RFC3339)+
				": it is not captured until it is reset (oplog_collector reset --source "+s.cfg.Name+"), or remove it from the config")
		case held != nil:
			s.setHolder(held.Holder.String(), false)
			s.setState(stateStandby, "")
		}
		attempt = 0
		if !sleep(ctx, poll) {
			return 0
		}
	}
}

// hold captures while the lease is ours at epoch, renewing it. lost is true when the
// lease moved on (another collector took it over, a reset or de-registration): the
// capture stopped, and the source stands by again.
func (s *source) hold(ctx, kill context.Context, epoch int64) (final, errText string, lost bool) {
	holdCtx, cancel := context.WithCancelCause(ctx)
	s.mu.Lock()
	s.epoch, s.loseLease = epoch, func() { cancel(errLeaseLost) }
	s.foreignAfter = bson.ObjectID{}
	s.mu.Unlock()
	var renewing sync.WaitGroup
	renewing.Go(func() { s.keepLease(holdCtx, epoch, cancel) })

	final, errText = s.capture(holdCtx, kill, epoch)
	if final == stateResumeTokenLost {
		// Keep the lease until a reset, so that no standby fails the same way.
		s.setState(final, errText)
		<-holdCtx.Done()
	}
	lost = context.Cause(holdCtx) == errLeaseLost && ctx.Err() == nil
	cancel(nil)
	renewing.Wait()
	s.mu.Lock()
	s.loseLease = nil
	s.mu.Unlock()
	if final == stateError && !lost {
		// A wrong cluster: let a standby configured for the right one take over.
		s.setState(final, errText)
		releaseCtx, stop := context.WithTimeout(kill, finalReportTimeout)
		_ = s.leases.release(releaseCtx, s.cfg.Name, epoch)
		stop()
		<-ctx.Done()
	}
	return final, errText, lost
}

// leaseLost ends the capture: the store refused a write at the holder's epoch.
func (s *source) leaseLost() {
	s.mu.Lock()
	lose := s.loseLease
	s.mu.Unlock()
	s.metrics.errors.WithLabelValues(s.cfg.Name, errLease).Inc()
	if lose != nil {
		lose()
	}
}

// keepLease renews the lease every third of its TTL. When another collector holds it
// now, it ends the capture (stop). A renewal that fails otherwise is retried: the store
// being away must not stop a capture that no one else can take over; and if a partition
// lets another collector take it over meanwhile, the store refuses this one's writes
// (fence.go).
func (s *source) keepLease(ctx context.Context, epoch int64, stop context.CancelCauseFunc) {
	every(ctx, s.common.LeaseTTL/3, func() {
		renewCtx, cancel := context.WithTimeout(ctx, s.common.LeaseTTL/3)
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
