package collector

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errBufferClosed is what take returns once the reader has stopped and every item has
// been handed out.
var errBufferClosed = errors.New("buffer closed and drained")

// buffer holds what has been read from a source and not yet written to the store. It is
// bounded in events and in bytes, so a store outage makes reading wait instead of
// growing memory; the change stream keeps the rest on the server (in the oplog).
type buffer struct {
	maxEvents, maxBytes int

	mu      sync.Mutex
	items   []item
	events  int // items that carry an event (positions only do not count)
	bytes   int
	closed  bool
	changed chan struct{} // closed and replaced on every change, to wake waiters
}

func newBuffer(maxEvents, maxBytes int) *buffer {
	return &buffer{maxEvents: maxEvents, maxBytes: maxBytes, changed: make(chan struct{})}
}

// signalLocked wakes every waiter.
func (b *buffer) signalLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// push adds it, waiting while the buffer is full. A single event larger than the byte
// bound is let in alone, so no event can block the stream for ever.
func (b *buffer) push(ctx context.Context, it item) error {
	b.mu.Lock()
	for {
		full := b.events >= b.maxEvents || (b.events > 0 && b.bytes+it.size > b.maxBytes)
		if it.doc == nil || !full {
			break
		}
		wait := b.changed
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait:
		}
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	b.items = append(b.items, it)
	if it.doc != nil {
		b.events++
		b.bytes += it.size
	}
	b.signalLocked()
	return nil
}

// close says no more items will come; take drains what is left.
func (b *buffer) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.signalLocked()
}

// take returns the next batch: it waits for a first item, then for more until the
// batch holds maxEvents events or maxBytes bytes, or maxWait has passed since the first.
func (b *buffer) take(ctx context.Context, maxEvents, maxBytes int, maxWait time.Duration) ([]item, error) {
	var deadline <-chan time.Time
	for {
		b.mu.Lock()
		n, events, bytes := b.batchLocked(maxEvents, maxBytes)
		fullBatch := events >= maxEvents || (n < len(b.items)) || bytes >= maxBytes
		if n > 0 && (fullBatch || b.closed) {
			return b.removeLocked(n), nil
		}
		if n == 0 && b.closed {
			b.mu.Unlock()
			return nil, errBufferClosed
		}
		wait := b.changed
		b.mu.Unlock()
		if n > 0 && deadline == nil {
			timer := time.NewTimer(maxWait)
			defer timer.Stop()
			deadline = timer.C
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait:
		case <-deadline:
			b.mu.Lock()
			n, _, _ = b.batchLocked(maxEvents, maxBytes)
			return b.removeLocked(n), nil
		}
	}
}

// batchLocked counts how many leading items fit in one batch.
func (b *buffer) batchLocked(maxEvents, maxBytes int) (n, events, bytes int) {
	for _, it := range b.items {
		if it.doc != nil {
			if events >= maxEvents || (events > 0 && bytes+it.size > maxBytes) {
				break
			}
			events++
			bytes += it.size
		}
		n++
	}
	return n, events, bytes
}

// removeLocked takes the first n items and unlocks.
func (b *buffer) removeLocked(n int) []item {
	defer b.mu.Unlock()
	out := make([]item, n)
	copy(out, b.items)
	b.items = b.items[n:]
	for _, it := range out {
		if it.doc != nil {
			b.events--
			b.bytes -= it.size
		}
	}
	if len(b.items) == 0 {
		b.items = nil // let the backing array go
	}
	b.signalLocked()
	return out
}

// length is the number of events waiting.
func (b *buffer) length() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.events
}
