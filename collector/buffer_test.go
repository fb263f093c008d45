package collector

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/config"
)

// event is a buffered event of size bytes whose position is its number.
func event(n uint32, size int) item {
	return item{doc: make(bson.Raw, size), size: size, pos: position{ClusterTime: bson.Timestamp{T: n}}}
}

// positionOnly is a buffered position with no event.
func positionOnly(n uint32) item { return item{pos: position{ClusterTime: bson.Timestamp{T: n}}} }

func numbers(items []item) []uint32 {
	var out []uint32
	for _, it := range items {
		out = append(out, it.pos.ClusterTime.T)
	}
	return out
}

// mustTake hands what was pushed over, as the end of a read does, and takes a batch.
func mustTake(t *testing.T, b *buffer) []item {
	t.Helper()
	b.publish()
	batch, err := b.take(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return batch
}

// Group commit: the writer takes whatever is handed over at once, never waiting for a
// batch to fill, up to the batch's bounds in events and bytes; positions ride along
// without counting as events.
func TestBufferTakesWhatIsThereUpToTheBatchBounds(t *testing.T) {
	b := newBuffer(100, 1<<20, config.Batch{MaxEvents: 3, MaxBytes: 250})
	for _, it := range []item{event(1, 10), positionOnly(2)} {
		if err := b.push(t.Context(), it); err != nil {
			t.Fatal(err)
		}
	}
	if got := numbers(mustTake(t, b)); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("first batch %v, want the event and the position buffered", got)
	}
	for n := uint32(3); n <= 7; n++ {
		_ = b.push(t.Context(), event(n, 10))
	}
	if got := numbers(mustTake(t, b)); len(got) != 3 {
		t.Fatalf("batch %v, want 3: batch.max_events", got)
	}
	if got := numbers(mustTake(t, b)); len(got) != 2 || got[0] != 6 {
		t.Fatalf("batch %v, want the remaining 6 and 7", got)
	}
	for n := uint32(8); n <= 10; n++ {
		_ = b.push(t.Context(), event(n, 100))
	}
	if got := numbers(mustTake(t, b)); len(got) != 2 {
		t.Fatalf("batch %v, want 2 events of 100 bytes under batch.max_bytes 250", got)
	}
	if b.length() != 1 {
		t.Fatalf("length %d, want 1 event left", b.length())
	}
}

// A full buffer makes the reader wait until the writer takes a batch; an event larger
// than the byte bound is let in alone so that it cannot block the stream for ever.
func TestBufferBoundsMemory(t *testing.T) {
	b := newBuffer(2, 100, config.Batch{MaxEvents: 10, MaxBytes: 1000})
	_ = b.push(t.Context(), event(1, 40))
	_ = b.push(t.Context(), event(2, 40))
	pushed := make(chan error, 1)
	go func() { pushed <- b.push(context.Background(), event(3, 40)) }()
	select {
	case <-pushed:
		t.Fatal("a push into a full buffer did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	mustTake(t, b)
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}

	mustTake(t, b)
	if err := b.push(t.Context(), event(4, 500)); err != nil {
		t.Fatalf("an event over the byte bound into an empty buffer: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if err := b.push(ctx, event(5, 10)); !errors.Is(err, context.Canceled) {
		t.Fatalf("push behind an oversized event, cancelled: %v", err)
	}
}

// The writer takes only what the reader has handed over: the events of a read go
// together. A push that must wait for room hands over what the buffer holds first, or
// neither side could go on; closing hands over the rest.
func TestBufferHandsOverWhatIsPublished(t *testing.T) {
	b := newBuffer(3, 1<<20, config.Batch{MaxEvents: 10, MaxBytes: 1 << 20})
	_ = b.push(t.Context(), event(1, 10))
	_ = b.push(t.Context(), event(2, 10))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if got, err := b.take(ctx, nil); err == nil {
		t.Fatalf("took %v before the read was handed over", numbers(got))
	}
	b.publish()
	if got := numbers(mustTake(t, b)); !slices.Equal(got, []uint32{1, 2}) {
		t.Errorf("a read handed over: %v", got)
	}
	for n := uint32(3); n <= 5; n++ {
		_ = b.push(t.Context(), event(n, 10))
	}
	pushed := make(chan error, 1)
	go func() { pushed <- b.push(context.Background(), event(6, 10)) }()
	if got, err := b.take(t.Context(), nil); err != nil || !slices.Equal(numbers(got), []uint32{3, 4, 5}) {
		t.Errorf("what a push waiting for room handed over: %v, %v", numbers(got), err)
	}
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	b.close()
	if got := numbers(mustTake(t, b)); !slices.Equal(got, []uint32{6}) {
		t.Errorf("closed: %v", got)
	}
}

// A position after a position replaces it (the later says all the earlier does), so a
// quiet source's post-batch tokens do not pile up while the store is away; a save asked
// for by the earlier one is kept. Positions are never merged across an event, nor into a
// batch already taken.
func TestBufferKeepsTheLastOfConsecutivePositions(t *testing.T) {
	b := newBuffer(100, 1<<20, config.Batch{MaxEvents: 10, MaxBytes: 1 << 20})
	progress := func(n uint32) item { it := positionOnly(n); it.progressOnly = true; return it }
	for _, it := range []item{positionOnly(1), progress(2), progress(3)} {
		_ = b.push(t.Context(), it)
	}
	batch := mustTake(t, b)
	if got := numbers(batch); !slices.Equal(got, []uint32{3}) || batch[0].progressOnly {
		t.Errorf("three positions in a row: %v (progress only: %v), want the last, to be saved", got, batch[0].progressOnly)
	}
	for _, it := range []item{progress(4), event(5, 10), progress(6), progress(7)} {
		_ = b.push(t.Context(), it)
	}
	batch = mustTake(t, b)
	if got := numbers(batch); !slices.Equal(got, []uint32{4, 5, 7}) || !batch[2].progressOnly {
		t.Errorf("positions around an event: %v, want 4, 5, 7 and the last only progress", got)
	}
	_ = b.push(t.Context(), progress(8))
	if got := numbers(mustTake(t, b)); !slices.Equal(got, []uint32{8}) {
		t.Errorf("a position after a batch was taken: %v", got)
	}
}

// Closing lets the writer drain what is left, then says so; a cancelled take returns.
func TestBufferCloseDrains(t *testing.T) {
	b := newBuffer(100, 1<<20, config.Batch{MaxEvents: 2, MaxBytes: 1 << 20})
	_ = b.push(t.Context(), event(1, 10))
	b.close()
	if got := numbers(mustTake(t, b)); len(got) != 1 {
		t.Fatalf("drained %v", got)
	}
	if _, err := b.take(t.Context(), nil); !errors.Is(err, errBufferClosed) {
		t.Fatalf("take after draining: %v", err)
	}
	empty := newBuffer(1, 1, config.Batch{MaxEvents: 1, MaxBytes: 1})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := empty.take(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled take: %v", err)
	}
}

// A reader and a writer at full speed: every item comes out once, in order, and the
// buffer never holds more than its bound.
func TestBufferKeepsOrderUnderConcurrency(t *testing.T) {
	const total = 20000
	b := newBuffer(64, 1<<20, config.Batch{MaxEvents: 16, MaxBytes: 1 << 20})
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := uint32(1); n <= total; n++ {
			it := event(n, 8)
			if n%7 == 0 {
				it = positionOnly(n)
			}
			if err := b.push(context.Background(), it); err != nil {
				t.Error(err)
				return
			}
			if n%5 == 0 {
				b.publish()
			}
		}
		b.close()
	})
	next := uint32(1)
	var batch []item
	for {
		var err error
		batch, err = b.take(t.Context(), batch) // reusing the array, as the writer does
		if errors.Is(err, errBufferClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.length() > 64 {
			t.Fatalf("the buffer holds %d events, over its bound of 64", b.length())
		}
		for _, n := range numbers(batch) {
			if n != next {
				t.Fatalf("got item %d, want %d", n, next)
			}
			next++
		}
	}
	wg.Wait()
	if next != total+1 {
		t.Fatalf("%d items came out of %d", next-1, total)
	}
}

// A restart is a batch of its own, between what was read before it and after it.
func TestBufferRestartIsABatchOfItsOwn(t *testing.T) {
	b := newBuffer(100, 1<<20, config.Batch{MaxEvents: 10, MaxBytes: 1 << 20})
	for _, it := range []item{event(1, 10), event(2, 10), {pos: position{ClusterTime: bson.Timestamp{T: 3}}, restart: true}, event(4, 10)} {
		_ = b.push(t.Context(), it)
	}
	for _, want := range [][]uint32{{1, 2}, {3}, {4}} {
		batch := mustTake(t, b)
		if got := numbers(batch); !slices.Equal(got, want) {
			t.Fatalf("batch %v, want %v", got, want)
		}
		if batch[0].restart != (want[0] == 3) || batch[0].checkpoint() == batch[0].restart {
			t.Fatalf("batch %v: restart %v, checkpoint %v", want, batch[0].restart, batch[0].checkpoint())
		}
	}
}

// The buffer's array is reused: items still waiting when it fills up move to its front
// in order, and taken slots keep no document alive.
func TestBufferReusesItsArray(t *testing.T) {
	b := newBuffer(100, 1<<20, config.Batch{MaxEvents: 4, MaxBytes: 1 << 20})
	next, want := uint32(1), uint32(1)
	push := func(k int) {
		for range k {
			if err := b.push(t.Context(), event(next, 8)); err != nil {
				t.Fatal(err)
			}
			next++
		}
		b.publish()
	}
	push(8)
	array := cap(b.items)
	var batch []item
	for round := range 50 {
		var err error
		if batch, err = b.take(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
		for _, n := range numbers(batch) {
			if n != want {
				t.Fatalf("round %d: got item %d, want %d", round, n, want)
			}
			want++
		}
		for i, it := range b.items[:b.head] {
			if it.doc != nil {
				t.Fatalf("round %d: taken slot %d still holds its document", round, i)
			}
		}
		push(len(batch)) // as many as taken: the waiting items wrap around
	}
	if cap(b.items) != array {
		t.Fatalf("the array grew from %d to %d items though never more than 8 waited", array, cap(b.items))
	}
	if b.length() != 8 {
		t.Fatalf("%d events waiting, want 8", b.length())
	}
}
