package collector

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// progress is how far a source's capture has come. It is recorded here only, and each
// change sets the matching gauge at once: status, the heartbeat and the lease read it.
type progress struct {
	name    string
	metrics *metrics

	mu        sync.Mutex
	lastEvent time.Time // the wallTime of the newest event acknowledged by the store
	saved     *position // the resume token last saved
	// checkpoint is the time up to which the store holds every event the source had
	// majority-committed: the newest stored event's wallTime, or the time the source
	// answered that nothing more had come (a post-batch token), whichever is later.
	// It never moves back while the lease is held.
	checkpoint   time.Time
	storeOldest  bson.Timestamp // the oldest event in the store
	pendingSince time.Time      // when the writer's unacknowledged store write began; zero when none
}

func newProgress(name string, m *metrics) *progress {
	return &progress{name: name, metrics: m}
}

// stored records a batch acknowledged by the store, newest being its newest event's
// wallTime.
func (p *progress) stored(newest time.Time) {
	p.mu.Lock()
	p.lastEvent = newest
	p.mu.Unlock()
	p.metrics.lastEvent.WithLabelValues(p.name).Set(unixSeconds(newest))
}

// savedAt records the resume token last saved (or, at start, found saved).
func (p *progress) savedAt(pos position) {
	p.mu.Lock()
	p.saved = &pos
	p.mu.Unlock()
	p.reached(pos.wall())
}

// reached records that the store holds every event up to t: the position of a batch
// just written, or a post-batch token read once everything before it was written.
func (p *progress) reached(t time.Time) {
	p.mu.Lock()
	later := t.After(p.checkpoint)
	if later {
		p.checkpoint = t
	}
	p.mu.Unlock()
	if later {
		p.metrics.checkpoint.WithLabelValues(p.name).Set(unixSeconds(t))
		p.metrics.lag.set(p.name, t)
	}
}

// oldestStored records the store's oldest event.
func (p *progress) oldestStored(ts bson.Timestamp) {
	p.mu.Lock()
	p.storeOldest = ts
	p.mu.Unlock()
	p.metrics.storeOldest.WithLabelValues(p.name).Set(seconds(ts))
}

// writing marks the start (at a non-zero time) or the end (zero) of a store write that
// is being retried until acknowledged.
func (p *progress) writing(since time.Time) {
	p.mu.Lock()
	p.pendingSince = since
	p.mu.Unlock()
}

// pending is how long the store write in flight has gone unacknowledged.
func (p *progress) pending(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pendingSince.IsZero() {
		return 0
	}
	return now.Sub(p.pendingSince)
}

// forget drops what a capture that lost its lease knew: its figures are the new
// holder's to report.
func (p *progress) forget() {
	p.mu.Lock()
	p.lastEvent, p.saved, p.checkpoint, p.storeOldest = time.Time{}, nil, time.Time{}, bson.Timestamp{}
	p.mu.Unlock()
	for _, g := range []*prometheus.GaugeVec{p.metrics.lastEvent, p.metrics.checkpoint, p.metrics.storeOldest} {
		g.DeleteLabelValues(p.name)
	}
	p.metrics.lag.forget(p.name)
}

// position is the last saved position, nil before the first.
func (p *progress) position() *position {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.saved
}

// snapshot is the progress as times, for status and the heartbeat.
type snapshot struct {
	checkpoint, lastEvent, storeOldest time.Time
	// saved is the saved position's cluster time, to the second: where a collector
	// starts on a new store from the heartbeat. The checkpoint may be later (a quiet
	// source's position is saved every checkpoint_interval), and may come from this
	// host's clock; this one is the source's and is never ahead of what is stored.
	saved time.Time
}

func (p *progress) snapshot() snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	var saved bson.Timestamp
	if p.saved != nil {
		saved = p.saved.ClusterTime
	}
	return snapshot{checkpoint: p.checkpoint, lastEvent: p.lastEvent, storeOldest: tsTime(p.storeOldest), saved: tsTime(saved)}
}

func tsTime(ts bson.Timestamp) time.Time {
	if ts.IsZero() {
		return time.Time{}
	}
	return time.Unix(int64(ts.T), 0).UTC()
}
