package collector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/testsupport"
)

type syncBuffer = testsupport.LogBuffer

// testSource names a source and where it is.
type testSource struct {
	name, uri, database string
}

// collectorConfig builds a config through the real loader, so defaults and checks
// apply as for a user's file. Intervals are short so the tests do not wait.
func collectorConfig(t *testing.T, storeURI, metaURI string, extra string, sources ...testSource) *config.Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "collector:\n  store: {uri: %q}\n", storeURI)
	if metaURI != "" {
		fmt.Fprintf(&b, "  metadata: {uri: %q}\n", metaURI)
	}
	b.WriteString("  heartbeat_interval: 200ms\n  checkpoint_interval: 100ms\n  max_backoff: 200ms\n  batch: {max_events: 50, max_wait: 50ms}\n")
	b.WriteString(extra)
	b.WriteString("  sources:\n")
	for _, s := range sources {
		fmt.Fprintf(&b, "    - {name: %s, uri: %q, database: %q}\n", s.name, s.uri, s.database)
	}
	cfg, err := config.ForCollector.Parse([]byte(b.String()), "test.yml")
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return cfg
}

// harness runs a Manager for a test.
type harness struct {
	t       *testing.T
	manager *Manager
	reg     *prometheus.Registry
	logs    *syncBuffer
}

func startManager(t *testing.T, cfg *config.Config) *harness {
	t.Helper()
	h := &harness{t: t, reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	h.manager = NewManager(h.reg, log.NewLogfmtLogger(h.logs), testOptions())
	if err := h.manager.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.stop)
	return h
}

// testOptions are a manager's options in tests: its own instance, as a process has.
func testOptions() Options {
	return Options{Instance: NewInstance(), StopGrace: 10 * time.Second}
}

// stop stops the manager as SIGTERM does, within a grace period.
func (h *harness) stop() {
	stopManager(h.manager)
}

func stopManager(m *Manager) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m.Stop(ctx)
}

// tester is who asks for the tests' destructive commands.
var tester = Requester{User: "tester", RemoteAddr: "127.0.0.1:1", Via: "test"}

// eventually waits for cond, failing the test after a deadline meant only to stop a
// hang: no test depends on how fast it is reached.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) state(name string) string {
	for _, s := range h.manager.Status() {
		if s.Name == name {
			return s.State
		}
	}
	return ""
}

func (h *harness) waitState(name, state string) {
	h.t.Helper()
	deadline := time.Now().Add(time.Minute) // against hanging only
	for h.state(name) != state {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s in state %s; it is %s:\n%s", name, state, h.state(name), h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) gauge(metric string, labels ...string) float64 {
	h.t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != metric {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// stored returns the source's stored events in source order (by _id, the token).
func stored(t *testing.T, store *mongo.Client, name string) []bson.Raw {
	t.Helper()
	cursor, err := store.Database(config.DefaultStoreDatabase).Collection("oplogs_"+name).
		Find(t.Context(), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.Raw
	if err := cursor.All(t.Context(), &docs); err != nil {
		t.Fatal(err)
	}
	return docs
}

func opTypes(docs []bson.Raw) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d.Lookup("op_type").StringValue())
	}
	return out
}

// insertSeq inserts documents {_id: from..to-1} into db.coll, one write each.
func insertSeq(t *testing.T, client *mongo.Client, db, coll string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := client.Database(db).Collection(coll).InsertOne(t.Context(), bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
}

// insertedIDs returns the documentKey._id of the stored inserts, in stored order.
func insertedIDs(docs []bson.Raw) []int32 {
	var ids []int32
	for _, d := range docs {
		if d.Lookup("op_type").StringValue() == "insert" {
			ids = append(ids, d.Lookup("doc_key", "_id").Int32())
		}
	}
	return ids
}

func seq(from, to int) []int32 {
	var out []int32
	for i := from; i < to; i++ {
		out = append(out, int32(i))
	}
	return out
}

// setFailPoint configures the server's failCommand failpoint, and turns it
// off when the test ends.
func setFailPoint(t *testing.T, client *mongo.Client, mode any, data bson.D) {
	t.Helper()
	set := func(mode any, data bson.D) error {
		return client.Database("admin").RunCommand(context.Background(), bson.D{
			{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: mode}, {Key: "data", Value: data},
		}).Err()
	}
	if err := set(mode, data); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set("off", bson.D{}) })
}
