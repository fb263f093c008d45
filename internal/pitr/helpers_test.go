package pitr

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/collector"
	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/mongotest/query"
	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/pitr/pitrtest"
	"github.com/mongomigrate/observability/internal/testsupport"
)

const sourceName = "src"

// world is a source cluster captured by the real collector into a store on the same
// server (the collector never captures its store), and an empty target cluster.
type world struct {
	t       *testing.T
	source  *mongo.Client
	store   *mongo.Database
	target  *mongo.Client
	logs    *testsupport.LogBuffer
	manager *collector.Manager
}

func newWorld(t *testing.T) *world {
	t.Helper()
	src := mongotest.New(t, "replay needs a source and a target of its own, and a store it can write gaps into", mongotest.Options{})
	w := &world{t: t, source: testsupport.Connect(t, src.URI()), target: newTarget(t), logs: &testsupport.LogBuffer{}}
	w.store = w.source.Database(oplogstore.DefaultDatabase)
	cfg, err := config.ForCollector.Parse(fmt.Appendf(nil, `collector:
  store: {uri: %q}
  checkpoint_interval: 50ms
  heartbeat_interval: 1s
  max_backoff: 200ms
  batch: {max_events: 200, max_wait: 20ms}
  sources:
    - {name: %s, uri: %q}
`, src.URI(), sourceName, src.URI()), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	w.manager = collector.NewManager(prometheus.NewRegistry(), log.NewLogfmtLogger(w.logs), collector.Options{Instance: collector.NewInstance()})
	if err := w.manager.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.manager.Stop(context.Background()) })
	eventually(t, "the collector's first checkpoint", func() bool {
		cp, err := oplogstore.ReadCheckpoint(t.Context(), w.store, sourceName)
		return err == nil && cp.Known
	})
	return w
}

// newTarget starts an empty target cluster.
func newTarget(t *testing.T) *mongo.Client {
	t.Helper()
	return testsupport.Connect(t, mongotest.New(t, "replay writes to a target of its own", mongotest.Options{}).URI())
}

// eventually waits for cond; the deadline only stops a hang.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clusterTime is the source's cluster time now: every write so far is at or before it.
func clusterTime(t testing.TB, client *mongo.Client) bson.Timestamp {
	t.Helper()
	session, err := client.StartSession()
	if err != nil {
		t.Fatal(err)
	}
	defer session.EndSession(context.Background())
	ctx := mongo.NewSessionContext(t.Context(), session)
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		t.Fatal(err)
	}
	return *session.OperationTime()
}

// cut returns the source's state and cluster time now, once the store holds every event
// up to it.
func (w *world) cut() (pitrtest.State, bson.Timestamp) {
	w.t.Helper()
	state, err := pitrtest.Read(w.t.Context(), w.source)
	if err != nil {
		w.t.Fatal(err)
	}
	at := clusterTime(w.t, w.source)
	eventually(w.t, "the checkpoint to reach the cut", func() bool {
		cp, err := oplogstore.ReadCheckpoint(w.t.Context(), w.store, sourceName)
		return err == nil && cp.Known && !cp.TS.Before(at)
	})
	return state, at
}

func (w *world) replay(target *mongo.Client, opts Options) *Summary {
	w.t.Helper()
	opts.Source = sourceName
	s, err := Replay(w.t.Context(), w.store, target, opts)
	if err != nil {
		w.t.Fatalf("replay: %v\n%s", err, w.logs)
	}
	return s
}

// replayNeeding is replay for a test whose writes to the target the test server may not
// run yet: where it answers 115 CommandNotSupported, the test is skipped, naming what it
// lacks.
func (w *world) replayNeeding(target *mongo.Client, opts Options) *Summary {
	w.t.Helper()
	opts.Source = sourceName
	s, err := Replay(w.t.Context(), w.store, target, opts)
	if mongoerr.HasCode(err, query.CodeCommandNotSupported) {
		w.t.Skipf("needs writes the test server does not run yet (%v); runs against MongoDB once internal/mongotest runs them", err)
	}
	if err != nil {
		w.t.Fatalf("replay: %v\n%s", err, w.logs)
	}
	return s
}

// expect fails the test when target's state is not want.
func expect(t testing.TB, target *mongo.Client, want pitrtest.State, what string) {
	t.Helper()
	got, err := pitrtest.Read(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	if d := pitrtest.Diff(want, got); d != "" {
		t.Fatalf("%s: the target is not the source's state:\n%s", what, d)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ts(t, i uint32) *bson.Timestamp { return &bson.Timestamp{T: t, I: i} }

// storeDocument is the start of an event's store document in the collector's layout:
// its position, source and kind; the caller adds the event's own fields.
func storeDocument(source string, ts bson.Timestamp, wall time.Time, op, ns string) bson.D {
	token := fmt.Sprintf("82%08X%08X01", ts.T, ts.I)
	return bson.D{
		{Key: oplogstore.FieldID, Value: token},
		{Key: oplogstore.FieldResumeToken, Value: bson.D{{Key: "_data", Value: token}}},
		{Key: oplogstore.FieldClusterName, Value: source},
		{Key: oplogstore.FieldTS, Value: ts},
		{Key: oplogstore.FieldWall, Value: bson.NewDateTimeFromTime(wall)},
		{Key: oplogstore.FieldOpType, Value: op},
		{Key: oplogstore.FieldNamespace, Value: ns},
	}
}
