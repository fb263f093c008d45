package demo

import "time"

// clock places moments in the scripted cycles: the first cycle started joinAt before
// the demo did, and each lasts cycleLength.
type clock struct{ base time.Time }

func newClock(demoStart time.Time) *clock { return &clock{base: demoStart.Add(-joinAt)} }

// inCycle is how far into its cycle now is.
func (c *clock) inCycle(now time.Time) time.Duration { return now.Sub(c.base) % cycleLength }

// cycle numbers the cycle now is in, from 0.
func (c *clock) cycle(now time.Time) int { return int(now.Sub(c.base) / cycleLength) }

// cycleStart is when cycle n starts.
func (c *clock) cycleStart(n int) time.Time { return c.base.Add(time.Duration(n) * cycleLength) }
