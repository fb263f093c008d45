package pitr

import (
	"context"
	"errors"
	"io"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// Bounds of a batch read ahead: with one in the channel, one being filled and one being
// applied, memory stays within a few batches.
const (
	readAheadEvents = 1000
	readAheadBytes  = 8 << 20
)

type eventBatch struct {
	events []oplogstore.Event
	err    error // after the batch's events
}

// readAhead reads the events in a goroutine of its own, a batch ahead of the caller, so
// that reading the store overlaps writing to the target. stop ends the reading and
// waits for it.
func readAhead(ctx context.Context, reader *oplogstore.EventReader) (batches <-chan eventBatch, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan eventBatch, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		send := func(b eventBatch) bool {
			select {
			case out <- b:
				return true
			case <-ctx.Done():
				return false
			}
		}
		var batch []oplogstore.Event
		size := 0
		for {
			e, err := reader.Next(ctx)
			switch {
			case errors.Is(err, io.EOF):
				if len(batch) > 0 {
					send(eventBatch{events: batch})
				}
				return
			case err != nil:
				send(eventBatch{events: batch, err: err})
				return
			}
			batch = append(batch, e)
			size += e.Bytes
			if len(batch) >= readAheadEvents || size >= readAheadBytes {
				if !send(eventBatch{events: batch}) {
					return
				}
				batch, size = nil, 0
			}
		}
	}()
	return out, func() { cancel(); <-done }
}
