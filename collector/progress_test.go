package collector

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// capturingWriter is a writer of source name holding its lease on a test server's
// store, with the source's metrics on reg, and the store and progress it writes to.
func capturingWriter(t *testing.T, name string, reg *prometheus.Registry) (*writer, *sourceStore, *progress, *metrics) {
	t.Helper()
	client := testsupport.Connect(t, mongotest.URI(t))
	db := client.Database(config.DefaultStoreDatabase)
	epoch, _, err := testLeases(db, time.Minute).acquire(t.Context(), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics(reg)
	store, p := newSourceStore(db, name), newProgress(name, m)
	health := newHealth(m, name, retryStore, errStoreWrite, time.Second)
	report := newWriterReports(name, m, health, p, func(string, int64) { t.Error("a foreign write was reported") }, log.NewNopLogger())
	return &writer{store: store, epoch: epoch, report: report}, store, p, m
}

// changeEvent is an insert's change event at clusterTime, with wallTime when not zero.
func changeEvent(t *testing.T, data string, clusterTime bson.Timestamp, wallTime time.Time) bson.Raw {
	t.Helper()
	event := bson.D{
		{Key: "_id", Value: bson.D{{Key: "_data", Value: data}}},
		{Key: "operationType", Value: "insert"},
		{Key: "clusterTime", Value: clusterTime},
		{Key: "fullDocument", Value: bson.D{{Key: "_id", Value: 1}}},
		{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders"}}},
		{Key: "documentKey", Value: bson.D{{Key: "_id", Value: 1}}},
	}
	if !wallTime.IsZero() {
		event = append(event, bson.E{Key: "wallTime", Value: bson.NewDateTimeFromTime(wallTime)})
	}
	raw, err := bson.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// The checkpoint and the lag are true to the millisecond: a stored event's wallTime is
// the checkpoint exactly (its cluster time tells only the second), as is the time the
// source answered with a post-batch token and no event, which moves the checkpoint
// without a store write; an event whose wallTime is older moves it back neither.
// Before MongoDB 6.0 events have no wallTime: the cluster time's second is the
// checkpoint then.
func TestTheCheckpointIsTrueToTheMillisecond(t *testing.T) {
	const name = "precise"
	reg := prometheus.NewRegistry()
	w, store, progress, m := capturingWriter(t, name, reg)
	gauge := func(metric string) float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == metric && len(f.GetMetric()) == 1 {
				return f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no single series of %s", metric)
		return 0
	}
	written := func(what string, items ...item) {
		t.Helper()
		if !w.write(t.Context(), items) {
			t.Fatalf("%s not written", what)
		}
	}
	event := func(data string, clusterTime bson.Timestamp, wallTime time.Time) item {
		t.Helper()
		var split splitState
		it, err := toItem(name, changeEvent(t, data, clusterTime, wallTime), time.Now(), &split)
		if err != nil {
			t.Fatal(err)
		}
		return it
	}

	wall := time.Date(2026, 3, 1, 12, 0, 0, 123_000_000, time.UTC)
	written("an event", event("82000000010000000101", bson.Timestamp{T: uint32(wall.Unix()), I: 1}, wall))
	if got := gauge("oplog_capture_checkpoint_timestamp_seconds"); got != 1772366400.123 {
		t.Errorf("checkpoint after an event of wallTime %v: %.3f, want 1772366400.123", wall, got)
	}
	if got := gauge("oplog_capture_last_event_timestamp_seconds"); got != 1772366400.123 {
		t.Errorf("last event: %.3f, want 1772366400.123", got)
	}
	m.lag.now = func() time.Time { return wall.Add(4 * time.Millisecond) }
	if got := gauge("oplog_capture_lag_seconds"); got != 0.004 {
		t.Errorf("lag 4 ms after the checkpoint: %v", got)
	}
	saved, err := store.loadToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	answered := wall.Add(1500 * time.Millisecond)
	token, _ := bson.Marshal(bson.D{{Key: "_data", Value: "82000000020000000101"}})
	written("a post-batch token", item{pos: position{Token: token, ClusterTime: bson.Timestamp{T: uint32(wall.Unix()) + 1, I: 1}, Wall: answered}, progressOnly: true})
	if got := gauge("oplog_capture_checkpoint_timestamp_seconds"); got != 1772366401.623 {
		t.Errorf("checkpoint after a post-batch token answered at %v: %.3f, want 1772366401.623", answered, got)
	}
	if now, err := store.loadToken(t.Context()); err != nil || !bytes.Equal(now.Token, saved.Token) {
		t.Errorf("a post-batch token between two saves was saved: %v, %v", now.Token, err)
	}

	written("an event read after the token, committed before its answer", event("82000000030000000101", bson.Timestamp{T: uint32(wall.Unix()) + 1, I: 2}, wall.Add(time.Second)))
	if got := gauge("oplog_capture_checkpoint_timestamp_seconds"); got != 1772366401.623 {
		t.Errorf("the checkpoint moved back to an older wallTime: %.3f", got)
	}

	written("an event of MongoDB 5.0", event("82000000090000000101", bson.Timestamp{T: uint32(wall.Unix()) + 9, I: 1}, time.Time{}))
	if got := gauge("oplog_capture_checkpoint_timestamp_seconds"); got != 1772366409 {
		t.Errorf("checkpoint after an event without wallTime: %.3f, want its cluster time's second 1772366409", got)
	}

	if err := testutil.CollectAndCompare(m.lag, strings.NewReader(`
# HELP oplog_capture_lag_seconds How far capture is behind the source, at the scrape: its time less the checkpoint (oplog_capture_checkpoint_timestamp_seconds); 0 when the source's clock is ahead of this host's.
# TYPE oplog_capture_lag_seconds gauge
oplog_capture_lag_seconds{source_cluster="precise"} 0
`)); err != nil {
		t.Errorf("lag with the source's clock ahead: %v", err)
	}
	progress.forget()
	if n := testutil.CollectAndCount(m.lag); n != 0 {
		t.Errorf("%d lag series after the lease was lost, want none", n)
	}
}
