package demo

import (
	"context"
	"fmt"
	"time"
)

// narrate prints what the simulated migration does as it happens: each mongosync
// instance's phase, the burst of writes, the commit, and a new migration.
func (d *demo) narrate(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := map[string]phase{}
	var wasBurst, couldCommit bool
	first := true
	for {
		t := d.clock.inCycle(time.Now())
		canCommit := true
		for _, in := range instances {
			ph := in.phase(t)
			if prev, seen := last[in.name]; !seen || prev != ph {
				if line := describe(in, ph, t, first); line != "" {
					d.event("mongosync %s: %s", in.name, line)
				}
				last[in.name] = ph
			}
			l, _ := in.lagAt(t)
			canCommit = canCommit && ph == phaseSteady && l != nil && *l < 30
		}
		if burst := t >= burstStart && t < burstEnd; burst != wasBurst {
			if burst {
				d.event("a burst of writes on the source: the lag of both instances rises for a minute (watch mongosync_lag_seconds)")
			}
			wasBurst = burst
		}
		if canCommit && !couldCommit {
			d.event("migration %s: every instance can commit (migration:mongosync_can_commit:min is 1)", migrationName)
		}
		couldCommit = canCommit
		first = false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// describe says what an instance's new phase means; at the start, where it stands.
func describe(in instanceScript, ph phase, t time.Duration, start bool) string {
	switch ph {
	case phaseIdle:
		return "restarted for a new migration: IDLE, then the collection copy starts again"
	case phaseCopy:
		if start {
			return fmt.Sprintf("collection copy, %.0f%% of its share copied", 100*in.copied(t))
		}
		return "collection copy started"
	case phaseDrain:
		l, _ := in.lagAt(t)
		return fmt.Sprintf("its share is copied; change event application drains what was written meanwhile (lag %.0f s, falling)", *l)
	case phaseSteady:
		return "caught up: change event application in steady state"
	case phaseCommitting:
		return "commit requested: COMMITTING"
	case phaseCommitted:
		return "COMMITTED: the application may write to the destination (canWrite)"
	}
	return ""
}
