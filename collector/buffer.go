package collector

import (
	"context"
	"errors"
	"sync"

	"github.com/mongomigrate/observability/internal/config"
)

// errBufferClosed is what take returns once the reader has stopped and every item has
// been handed out.
var errBufferClosed = errors.New("buffer closed and drained")

// buffer holds what has been read from a source and not yet written to the store. It is
// bounded in events and in bytes, so a store outage makes reading wait instead of
// growing memory; the change stream keeps the rest on the server (in the oplog).
//
// The reader hands what it pushed over to the writer at the end of each read (publish),
// so that the events of one read go in one batch; the writer takes whatever has been
// handed over (group commit: while a write is in flight, the next batch grows). They
// wake each other only then: the writer when a read is handed over or the buffer
// closes, the reader when room is made. Waking the writer at every event would cost
// more than the event itself.
type buffer struct {
	maxEvents, maxBytes int // the buffer's bounds
	batch               config.Batch

	mu sync.Mutex
	// items[head:] are waiting. Taken items are cleared and the array reused: when it is
	// full, the live items move to the front (push), rather than a new array growing
	// under a window that slides along it.
	items     []item
	head      int
	published int // items[head:published] are the writer's to take
	events    int // items that carry an event (positions only do not count)
	bytes     int
	closed    bool
	ready     chan struct{} // closed to wake the writer
	room      chan struct{} // closed to wake the reader
}

func newBuffer(maxEvents, maxBytes int, batch config.Batch) *buffer {
	return &buffer{maxEvents: maxEvents, maxBytes: maxBytes, batch: batch, ready: make(chan struct{}), room: make(chan struct{})}
}

func wake(ch *chan struct{}) {
	close(*ch)
	*ch = make(chan struct{})
}

// push adds it, waiting while the buffer is full (and handing over what it holds, so
// that the writer can make room). A single event larger than the byte bound is let in
// alone, so no event can block the stream for ever.
func (b *buffer) push(ctx context.Context, it item) error {
	b.mu.Lock()
	for it.doc != nil && (b.events >= b.maxEvents || (b.events > 0 && b.bytes+it.size > b.maxBytes)) {
		b.publishLocked()
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
	if len(b.items) == cap(b.items) && b.head >= len(b.items)/2 {
		// At least half the array is taken: moving the rest down costs at most as much
		// as the pushes that filled it.
		live := copy(b.items, b.items[b.head:])
		clear(b.items[live:])
		b.items, b.published, b.head = b.items[:live], b.published-b.head, 0
	}
	b.items = append(b.items, it)
	if it.doc != nil {
		b.events++
		b.bytes += it.size
	}
	return nil
}

// publish hands what was pushed since the last call over to the writer: the end of a
// read.
func (b *buffer) publish() {
	b.mu.Lock()
	b.publishLocked()
	b.mu.Unlock()
}

func (b *buffer) publishLocked() {
	if b.published < len(b.items) {
		b.published = len(b.items)
		wake(&b.ready)
	}
}

// close says no more items will come; take drains what is left.
func (b *buffer) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.published = len(b.items)
	wake(&b.ready)
}

// take returns the next batch, in dst's array when it has room: whatever has been handed
// over, up to the batch bounds, as soon as there is something.
func (b *buffer) take(ctx context.Context, dst []item) ([]item, error) {
	for {
		b.mu.Lock()
		if n, _, _ := b.batchLocked(); n > 0 {
			return b.removeLocked(dst, n), nil
		}
		if b.closed {
			b.mu.Unlock()
			return nil, errBufferClosed
		}
		ready := b.ready
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ready:
		}
	}
}

// batchLocked counts how many leading items fit in one batch. A restart (item.restart)
// is a batch of its own: what was written before it must be in the store before the
// writer drops what follows its position, and what comes after it written after that.
func (b *buffer) batchLocked() (n, events, bytes int) {
	for _, it := range b.items[b.head:b.published] {
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
		b.items, b.published, b.head = b.items[:0], 0, 0
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
