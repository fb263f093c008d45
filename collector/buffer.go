package collector

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/mongomigrate/observability/internal/config"
)

// errBufferClosed is what take returns once the reader has stopped and every item has
// been handed out.
var errBufferClosed = errors.New("buffer closed and drained")

// buffer holds what has been read from a source and not yet written to the store. It is
// bounded in events and in bytes, so a store outage makes reading wait instead of
// growing memory; the change stream keeps the rest on the server (in the oplog).
//
// The reader and the writer wake each other only when it matters: the writer when a
// first item arrives, a batch fills up or the buffer closes; the reader when room is
// made. Waking the writer at every event would cost more than the event itself.
type buffer struct {
	maxEvents, maxBytes int // the buffer's bounds
	batch               config.Batch

	mu sync.Mutex
	// items[head:] are waiting. Taken items are cleared and the array reused: moving
	// the live items to the front when it is full costs less than growing a new array
	// as the window slides along it, which is what reslicing from the front did.
	items  []item
	head   int
	events int // items that carry an event (positions only do not count)
	bytes  int
	oldest time.Time // when the first buffered item arrived
	closed bool
	ready  chan struct{} // closed to wake the writer
	room   chan struct{} // closed to wake the reader
}

func newBuffer(maxEvents, maxBytes int, batch config.Batch) *buffer {
	return &buffer{maxEvents: maxEvents, maxBytes: maxBytes, batch: batch, ready: make(chan struct{}), room: make(chan struct{})}
}

func wake(ch *chan struct{}) {
	close(*ch)
	*ch = make(chan struct{})
}

// push adds it, waiting while the buffer is full. A single event larger than the byte
// bound is let in alone, so no event can block the stream for ever.
func (b *buffer) push(ctx context.Context, it item) error {
	b.mu.Lock()
	for it.doc != nil && (b.events >= b.maxEvents || (b.events > 0 && b.bytes+it.size > b.maxBytes)) {
		room := b.room
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-room:
		}
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	if last := len(b.items) - 1; it.doc == nil && !it.restart && last >= b.head && b.items[last].doc == nil && !b.items[last].restart {
		// A position after a position: the later one says all the earlier says. So a
		// quiet source's post-batch tokens, one a second, do not pile up while the
		// store is away.
		it.progressOnly = it.progressOnly && b.items[last].progressOnly
		b.items[last] = it
		return nil
	}
	first := b.head == len(b.items)
	if first {
		b.oldest = time.Now()
	}
	if len(b.items) == cap(b.items) && b.head >= len(b.items)/2 {
		// At least half the array is taken: moving the rest down costs at most as much
		// as the pushes that filled it.
		live := copy(b.items, b.items[b.head:])
		clear(b.items[live:])
		b.items, b.head = b.items[:live], 0
	}
	b.items = append(b.items, it)
	if it.doc != nil {
		b.events++
		b.bytes += it.size
	}
	if first || b.events == b.batch.MaxEvents || (b.bytes >= b.batch.MaxBytes && b.bytes-it.size < b.batch.MaxBytes) {
		wake(&b.ready)
	}
	return nil
}

// close says no more items will come; take drains what is left.
func (b *buffer) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	wake(&b.ready)
}

// take returns the next batch, in dst's array when it has room: whatever is buffered, up
// to the batch bounds, as soon as there is something (group commit: while a write is in
// flight, the next batch grows; the writer never waits for a batch to fill). With batch.MaxWait set, a batch that is
// not full yet waits until its oldest item has waited that long, trading latency for
// fewer, larger writes on a slow trickle; a busy source fills its batches first.
func (b *buffer) take(ctx context.Context, dst []item) ([]item, error) {
	for {
		b.mu.Lock()
		n, events, bytes := b.batchLocked()
		full := events >= b.batch.MaxEvents || n < len(b.items)-b.head || bytes >= b.batch.MaxBytes || (n > 0 && b.items[b.head].restart)
		linger := time.Until(b.oldest.Add(b.batch.MaxWait))
		if n > 0 && (full || b.closed || linger <= 0) {
			return b.removeLocked(dst, n), nil
		}
		if n == 0 && b.closed {
			b.mu.Unlock()
			return nil, errBufferClosed
		}
		ready := b.ready
		b.mu.Unlock()
		var deadline <-chan time.Time
		if n > 0 {
			timer := time.NewTimer(linger)
			deadline = timer.C
			defer timer.Stop()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ready:
		case <-deadline:
		}
	}
}

// batchLocked counts how many leading items fit in one batch. A restart (item.restart)
// is a batch of its own: what was written before it must be in the store before the
// writer drops what follows its position, and what comes after it written after that.
func (b *buffer) batchLocked() (n, events, bytes int) {
	for _, it := range b.items[b.head:] {
		if it.restart {
			if n == 0 {
				return 1, 0, 0
			}
			break
		}
		if it.doc != nil {
			if events >= b.batch.MaxEvents || (events > 0 && bytes+it.size > b.batch.MaxBytes) {
				break
			}
			events++
			bytes += it.size
		}
		n++
	}
	return n, events, bytes
}

// removeLocked moves the first n items to dst, wakes the reader, and unlocks.
func (b *buffer) removeLocked(dst []item, n int) []item {
	defer b.mu.Unlock()
	taken := b.items[b.head : b.head+n]
	out := append(dst[:0], taken...)
	clear(taken) // the documents are the writer's now, not the array's to keep alive
	b.head += n
	if b.head == len(b.items) {
		b.items, b.head = b.items[:0], 0
		if cap(b.items) > 2*b.batch.MaxEvents {
			b.items = nil // a backlog's array: let it go now that the backlog is drained
		}
	}
	for _, it := range out {
		if it.doc != nil {
			b.events--
			b.bytes -= it.size
		}
	}
	wake(&b.room)
	return out
}

// length is the number of events waiting.
func (b *buffer) length() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.events
}
