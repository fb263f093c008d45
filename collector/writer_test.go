package collector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// answeringStore is the store as a writer sees it (batchStore), answering each write
// with the next of its answers (nil: written), and keeping what it was asked.
type answeringStore struct {
	answers []error
	writes  []batchWrite
}

func (s *answeringStore) prepareEvents(context.Context, time.Duration) (bool, error) {
	return true, nil
}

func (s *answeringStore) write(_ context.Context, _ int64, b batchWrite, _ *[]byte) (bool, error) {
	s.writes = append(s.writes, b)
	if len(s.answers) == 0 {
		return false, nil
	}
	err := s.answers[0]
	s.answers = s.answers[1:]
	return false, err
}

func (s *answeringStore) dropAfter(context.Context, int64, bson.Raw) (int64, error) {
	return 0, nil
}

// How a writer retries what the store refused: a batch whose commit answer was lost is
// written again without what is stored; a failed position save counts as token_save,
// not store_write; a write refused at the holder's epoch is not retried, and ends the
// capture.
func TestWriterRetriesWhatTheStoreRefused(t *testing.T) {
	const name = "retried"
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	var fenced int
	health := newHealth(m, name, retryStore, errStoreWrite, time.Millisecond)
	health.fenced = func() { fenced++ }
	p := newProgress(name, m)
	store := &answeringStore{}
	w := &writer{store: store, epoch: 7, report: newWriterReports(name, m, health, p, func(string, int64) {}, log.NewNopLogger())}
	var split splitState
	event, err := toItem(name, changeEvent(t, "82000000010000000101", bson.Timestamp{T: 1, I: 1}, time.Time{}), time.Now(), &split)
	if err != nil {
		t.Fatal(err)
	}
	errorsOf := func(kind string) float64 { return testutil.ToFloat64(m.errors.WithLabelValues(name, kind)) }

	duplicates := mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: mongoerr.DuplicateKey}}}
	store.answers = []error{duplicates}
	if !w.write(t.Context(), []item{event}) {
		t.Fatal("the batch was not written")
	}
	if len(store.writes) != 2 || store.writes[0].skipStored || !store.writes[1].skipStored {
		t.Errorf("attempts: %+v; want a second one that skips what is stored", store.writes)
	}
	if p.position() == nil || p.position().ClusterTime != event.pos.ClusterTime {
		t.Errorf("saved position %v, want the batch's", p.position())
	}

	store.writes = nil
	store.answers = []error{errors.New("connection reset")}
	token, _ := bson.Marshal(bson.D{{Key: "_data", Value: "82000000020000000101"}})
	if !w.write(t.Context(), []item{{pos: position{Token: token, ClusterTime: bson.Timestamp{T: 2, I: 1}}}}) {
		t.Fatal("the position was not saved")
	}
	if got := errorsOf(errTokenSave); got != 1 {
		t.Errorf("token_save errors: %v, want 1", got)
	}
	if got := errorsOf(errStoreWrite); got != 1 { // the duplicates
		t.Errorf("store_write errors: %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.retries.WithLabelValues(name, retryStore)); got != 2 {
		t.Errorf("store retries: %v, want 2", got)
	}

	store.writes = nil
	store.answers = []error{errFenced}
	if w.write(t.Context(), []item{event}) {
		t.Error("a write refused at the holder's epoch was reported written")
	}
	if len(store.writes) != 1 || fenced != 1 {
		t.Errorf("a fenced write: %d attempts, %d reports; want 1 and 1", len(store.writes), fenced)
	}
}
