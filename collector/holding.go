package collector

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-kit/log/level"
)

// awaitLease takes the source's lease, standing by while another live collector holds
// it. It returns false when ctx ends first.
func (s *source) awaitLease(ctx context.Context) bool {
	poll := s.common.LeaseTTL / 4
	for attempt := 0; ; attempt++ {
		acquired, held, err := s.leases.acquire(ctx, s.cfg.Name, false)
		switch {
		case acquired:
			s.setHolder("", false)
			s.setState(stateStarting, "")
			return true
		case err != nil:
			if ctx.Err() != nil {
				return false
			}
			s.metrics.errors.WithLabelValues(s.cfg.Name, errLease).Inc()
			s.setState(stateRetryingConnection, "cannot take the source's lease: "+describe(err))
			if !sleep(ctx, backoff(attempt, s.common.MaxBackoff)) {
				return false
			}
			continue
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
			return false
		}
	}
}

// hold captures while the lease is ours, renewing it. lost is true when another
// collector took the lease over: the capture stopped, and the source stands by again.
func (s *source) hold(ctx, kill context.Context) (final, errText string, lost bool) {
	holdCtx, cancel := context.WithCancelCause(ctx)
	var renewing sync.WaitGroup
	renewing.Go(func() { s.keepLease(holdCtx, cancel) })

	final, errText = s.capture(holdCtx, kill)
	if final == stateResumeTokenLost {
		// Keep the lease until a reset, so that no standby fails the same way.
		s.setState(final, errText)
		<-holdCtx.Done()
	}
	lost = context.Cause(holdCtx) == errLeaseLost && ctx.Err() == nil
	cancel(nil)
	renewing.Wait()
	if final == stateError {
		// A wrong cluster: let a standby configured for the right one take over.
		s.setState(final, errText)
		releaseCtx, stop := context.WithTimeout(kill, finalReportTimeout)
		_ = s.leases.release(releaseCtx, s.cfg.Name)
		stop()
		<-ctx.Done()
	}
	return final, errText, lost
}

// keepLease renews the lease every third of its TTL, with the position last saved.
// When another collector holds it now, it ends the capture (stop). A renewal that fails
// otherwise is retried: the metadata database being away must not stop a capture that
// no one else can take over, and every write is idempotent, so two writers for a while
// (a partition) store every event once all the same.
func (s *source) keepLease(ctx context.Context, stop context.CancelCauseFunc) {
	every(ctx, s.common.LeaseTTL/3, func() {
		renewCtx, cancel := context.WithTimeout(ctx, s.common.LeaseTTL/3)
		err := s.leases.renew(renewCtx, s.cfg.Name, s.progress.position())
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
