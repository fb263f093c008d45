package pitr

import (
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// progress writes a line at an interval while a replay runs: how far, how fast, where in
// the source's history, and how long the rest should take.
type progress struct {
	out    io.Writer
	every  time.Duration
	source string
	total  int64 // store documents in the range
	start  time.Time
	next   time.Time
}

func newProgress(o *Options, total int64) *progress {
	now := time.Now()
	p := &progress{out: o.Progress, every: o.ProgressInterval, source: o.Source, total: total, start: now}
	if p.every <= 0 {
		p.every = 10 * time.Second
	}
	p.next = now.Add(p.every)
	return p
}

// update notes that done store documents are read and the replay is at ts; it writes a
// line when the interval is up.
func (p *progress) update(done int64, ts bson.Timestamp) {
	if p.out == nil || done%64 != 0 {
		return // time.Now at every event would cost more than the rest of the loop
	}
	now := time.Now()
	if now.Before(p.next) {
		return
	}
	// The average since the start: writes go in batches, so a rate over the last
	// interval jumps with them.
	rate := float64(done) / now.Sub(p.start).Seconds()
	line := fmt.Sprintf("replay %s: %d of %d store documents", p.source, done, p.total)
	if p.total > 0 {
		line += fmt.Sprintf(" (%.1f%%)", 100*float64(done)/float64(p.total))
	}
	line += fmt.Sprintf(", %.0f/s, at %s", rate, oplogstore.FormatTS(ts))
	if rate > 0 && p.total > done {
		line += fmt.Sprintf(", about %s left", time.Duration(float64(p.total-done)/rate*float64(time.Second)).Round(time.Second))
	}
	fmt.Fprintln(p.out, line)
	p.next = now.Add(p.every)
}
