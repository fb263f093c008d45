package collector

import (
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	hbdoc "github.com/mongomigrate/observability/internal/heartbeat"
	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/testsupport"
)

const oplogGauge = "oplog_capture_source_oplog_oldest_timestamp_seconds"

// firstOplogEntry reads the time of the first entry of a replica set's oplog, as a
// user would (rs.printReplicationInfo()'s "oplog first event time"); lastOplogEntry,
// of its last.
func firstOplogEntry(t *testing.T, client *mongo.Client) bson.Timestamp {
	t.Helper()
	return oplogEntryTime(t, client, 1)
}

func lastOplogEntry(t *testing.T, client *mongo.Client) bson.Timestamp {
	t.Helper()
	return oplogEntryTime(t, client, -1)
}

func oplogEntryTime(t *testing.T, client *mongo.Client, natural int) bson.Timestamp {
	t.Helper()
	var entry struct {
		TS bson.Timestamp `bson:"ts"`
	}
	if err := client.Database("local").Collection("oplog.rs").FindOne(t.Context(), bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: natural}})).Decode(&entry); err != nil {
		t.Fatal(err)
	}
	return entry.TS
}

// heartbeatOplogOldest is the source's oplog's oldest entry as the heartbeat document
// records it (zero when it records none).
func heartbeatOplogOldest(t *testing.T, meta *mongo.Client, name string) time.Time {
	t.Helper()
	raw, err := meta.Database("oplog_manager_orchestrator_db").Collection("source_clusters_info").FindOne(t.Context(), hbdoc.Filter(name)).Raw()
	if err != nil {
		return time.Time{}
	}
	hb, _ := hbdoc.Parse(raw)
	if hb.SourceOplogOldest == nil {
		return time.Time{}
	}
	return *hb.SourceOplogOldest
}

// The collector exports the time of the oldest entry of a replica set source's oplog,
// without a shard label, follows it as the oplog is truncated, and records it in the
// heartbeat document.
func TestSourceOplogOldestOfAReplicaSet(t *testing.T) {
	src := mongotest.New(t, "a source initiated long ago with a short history", mongotest.Options{InitiatedAgo: 30 * time.Hour, History: 20})
	store := mongotest.New(t, "the store and metadata", mongotest.Options{})
	source, meta := testsupport.Connect(t, src.URI()), testsupport.Connect(t, store.URI())
	h := startManager(t, collectorConfig(t, store.URI(), store.URI(), "", testSource{name: "rs", uri: src.URI()}))
	h.waitState("rs", stateRunning)

	initiated := firstOplogEntry(t, source)
	if age := time.Since(time.Unix(int64(initiated.T), 0)); age < 29*time.Hour {
		t.Fatalf("the source's first entry is %v old, want its initiation's, 30h", age)
	}
	eventually(t, "the headroom gauge at the source's initiation", func() bool {
		return h.gauge(oplogGauge, "source_cluster", "rs", "shard", "") == float64(initiated.T)
	})
	eventually(t, "the heartbeat to record it", func() bool {
		return heartbeatOplogOldest(t, meta, "rs").Equal(time.Unix(int64(initiated.T), 0))
	})

	// More events than the history holds: the initiation's entry is truncated.
	insertSeq(t, source, "app", "c", 0, 30)
	truncated := firstOplogEntry(t, source)
	if !initiated.Before(truncated) {
		t.Fatalf("the first entry did not move: %v", truncated)
	}
	eventually(t, "the headroom gauge to follow the truncation", func() bool {
		return h.gauge(oplogGauge, "source_cluster", "rs", "shard", "") == float64(truncated.T)
	})
	eventually(t, "the heartbeat to follow it", func() bool {
		return heartbeatOplogOldest(t, meta, "rs").Equal(time.Unix(int64(truncated.T), 0))
	})
}

// shardedSource is a mongos of two test shards: sh0 initiated 50 hours ago, sh1 49
// hours ago with a history of 5 events.
type shardedSource struct {
	mongos  *mongotest.Server
	servers map[string]*mongotest.Server
	shards  map[string]*mongo.Client // a client of each shard
}

func startShardedSource(t *testing.T) shardedSource {
	t.Helper()
	out := shardedSource{servers: map[string]*mongotest.Server{}, shards: map[string]*mongo.Client{}}
	var shards []mongotest.Shard
	for i, opts := range []mongotest.Options{{InitiatedAgo: 50 * time.Hour}, {InitiatedAgo: 49 * time.Hour, History: 5}} {
		id := fmt.Sprintf("sh%d", i)
		opts.ReplicaSet = id
		srv := mongotest.New(t, "a shard whose oplog starts at a chosen age", opts)
		shards = append(shards, mongotest.Shard{ID: id, Host: id + "/" + srv.Addr()})
		out.servers[id], out.shards[id] = srv, testsupport.Connect(t, srv.URI())
	}
	out.mongos = mongotest.New(t, "a mongos of test shards", mongotest.Options{Shards: shards})
	return out
}

// On a sharded source, the oldest entry of each shard's oplog is read on the shard
// (listShards names them) and exported with its shard; the heartbeat records the
// binding one, the newest of them. A shard whose oplog is truncated moves its own
// series; a shard removed from the cluster loses its series; a shard that cannot be
// read leaves the source with no series at all and counts an error.
func TestSourceOplogOldestOfAShardedSource(t *testing.T) {
	sharded := startShardedSource(t)
	store := mongotest.New(t, "the store and metadata", mongotest.Options{})
	meta := testsupport.Connect(t, store.URI())
	h := startManager(t, collectorConfig(t, store.URI(), store.URI(), "", testSource{name: "sharded", uri: sharded.mongos.URI()}))
	h.waitState("sharded", stateRunning)

	first := map[string]bson.Timestamp{}
	for id, c := range sharded.shards {
		first[id] = firstOplogEntry(t, c)
	}
	eventually(t, "a series per shard at its first entry", func() bool {
		return h.gauge(oplogGauge, "source_cluster", "sharded", "shard", "sh0") == float64(first["sh0"].T) &&
			h.gauge(oplogGauge, "source_cluster", "sharded", "shard", "sh1") == float64(first["sh1"].T)
	})
	if v := h.gauge(oplogGauge, "source_cluster", "sharded", "shard", ""); v != -1 {
		t.Errorf("a sharded source has a series without a shard: %v", v)
	}
	eventually(t, "the heartbeat to record the binding shard's, sh1's", func() bool {
		return heartbeatOplogOldest(t, meta, "sharded").Equal(time.Unix(int64(first["sh1"].T), 0))
	})

	// sh1's oplog is truncated: its series moves, and it binds with its new first entry.
	insertSeq(t, sharded.shards["sh1"], "app", "c", 0, 10)
	truncated := firstOplogEntry(t, sharded.shards["sh1"])
	eventually(t, "sh1's series to follow its truncation", func() bool {
		return h.gauge(oplogGauge, "source_cluster", "sharded", "shard", "sh1") == float64(truncated.T) &&
			heartbeatOplogOldest(t, meta, "sharded").Equal(time.Unix(int64(truncated.T), 0))
	})
	if v := h.gauge(oplogGauge, "source_cluster", "sharded", "shard", "sh0"); v != float64(first["sh0"].T) {
		t.Errorf("sh0's series moved with sh1's truncation: %v", v)
	}

	// sh1 removed from the cluster: its series goes, sh0 binds.
	admin := testsupport.Connect(t, sharded.mongos.URI()).Database("admin")
	for range 2 {
		if err := admin.RunCommand(t.Context(), bson.D{{Key: "removeShard", Value: "sh1"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "sh1's series to go once the shard is removed", func() bool {
		return h.gauge(oplogGauge, "source_cluster", "sharded", "shard", "sh1") == -1 &&
			heartbeatOplogOldest(t, meta, "sharded").Equal(time.Unix(int64(first["sh0"].T), 0))
	})

	// sh0 cannot be read: the headroom is unknown, so the source has no series.
	errorsBefore := h.gauge("oplog_capture_errors_total", "source_cluster", "sharded", "kind", errSourceOplog)
	shard0 := sharded.servers["sh0"]
	shard0.Stop()
	eventually(t, "the source's series to go while a shard cannot be read", func() bool {
		return h.gauge(oplogGauge, "source_cluster", "sharded", "shard", "sh0") == -1 &&
			h.gauge("oplog_capture_errors_total", "source_cluster", "sharded", "kind", errSourceOplog) > errorsBefore &&
			heartbeatOplogOldest(t, meta, "sharded").IsZero()
	})
	if err := shard0.Restart(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "sh0's series back once it answers", func() bool {
		return h.gauge(oplogGauge, "source_cluster", "sharded", "shard", "sh0") == float64(first["sh0"].T)
	})
}
