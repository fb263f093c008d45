package collector

import (
	"testing"
	"time"

	"github.com/mongomigrate/observability/internal/config"
)

// After a read, reading waits about as long as batch.min_events take to come at the
// pace the read saw, at most batch.max_wait; a read that brought nothing or a full batch
// does not wait, nor does any with a max_wait of 0.
func TestReadingPausesOnASlowSource(t *testing.T) {
	batch := config.Batch{MaxEvents: 1000, MinEvents: 50, MaxWait: 100 * time.Millisecond}
	for _, c := range []struct {
		events int
		over   time.Duration
		batch  config.Batch
		want   time.Duration
	}{
		{0, time.Second, batch, 0},
		{1000, time.Millisecond, batch, 0},
		{20, 10 * time.Millisecond, batch, 25 * time.Millisecond},
		{200, 10 * time.Millisecond, batch, 2500 * time.Microsecond},
		{2, 10 * time.Millisecond, batch, 100 * time.Millisecond},
		{1, 1000 * time.Hour, config.Batch{MaxEvents: 1 << 30, MinEvents: 1 << 30, MaxWait: time.Hour}, time.Hour},
		{20, 10 * time.Millisecond, config.Batch{MaxEvents: 1000, MinEvents: 50}, 0},
	} {
		if got := pause(c.events, c.over, c.batch); got != c.want {
			t.Errorf("%d events over %v, %+v: pause %v, want %v", c.events, c.over, c.batch, got, c.want)
		}
	}
}
