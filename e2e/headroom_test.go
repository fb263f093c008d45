package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mongomigrate/observability/internal/testsupport"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

const (
	// shardedName is the collector's second source: a sharded cluster of test servers.
	shardedName = "sharded"
	// shortShardHistory is what the oplog of the sharded source's second shard holds.
	shortShardHistory = 50
)

// shardedSource is a mongos (mongotestd --shard) of two shards: sh0, initiated 50 hours
// ago, and sh1, initiated 49 hours ago with an oplog of 50 entries. Until sh1's oplog is
// truncated, the source's resume headroom is sh1's 49 hours.
type shardedSource struct {
	mongosURI string
	mongos    *mongo.Client
	shard1    *mongo.Client
	// initiated is when each shard's set was initiated: its oplog's first entry.
	initiated map[string]bson.Timestamp
}

func (s *stack) startShardedSource(t *testing.T) *shardedSource {
	t.Helper()
	out := &shardedSource{initiated: map[string]bson.Timestamp{}}
	mongosArgs := []string{}
	for _, sh := range []struct {
		id   string
		args []string
	}{
		{"sh0", []string{"--initiated-ago=50h"}},
		{"sh1", []string{"--initiated-ago=49h", fmt.Sprint("--history=", shortShardHistory)}},
	} {
		uri := s.startMongotestd(t, "mongotestd "+sh.id, append([]string{"--replica-set", sh.id}, sh.args...)...)
		host, _, _ := strings.Cut(strings.TrimPrefix(uri, "mongodb://"), "/")
		mongosArgs = append(mongosArgs, "--shard", sh.id+"="+sh.id+"/"+host)
		client := testsupport.Connect(t, uri)
		out.initiated[sh.id] = firstOplogEntry(t, client)
		if sh.id == "sh1" {
			out.shard1 = client
		}
	}
	out.mongosURI = s.startMongotestd(t, "mongotestd mongos", mongosArgs...)
	out.mongos = testsupport.Connect(t, out.mongosURI)
	return out
}

// firstOplogEntry is the time of the first entry of a replica set's oplog.
func firstOplogEntry(t *testing.T, client *mongo.Client) bson.Timestamp {
	t.Helper()
	var entry struct {
		TS bson.Timestamp `bson:"ts"`
	}
	if err := client.Database("local").Collection("oplog.rs").FindOne(t.Context(), bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: 1}})).Decode(&entry); err != nil {
		t.Fatal(err)
	}
	return entry.TS
}

// The oplog of the sharded source's shard sh1 is truncated by writes on the shard:
// its oldest entry is then seconds old and binds the source's resume headroom, which
// falls from 49 hours to seconds: OplogCaptureResumeHeadroomLow fires, warning and
// critical. Removing sh1 from the cluster (removeShard, drained and completed) leaves
// sh0 binding, with its 50 hours: both resolve, sh1's series leaves Prometheus, and the
// exporter's central view (the heartbeat) shows sh0's oldest entry.
func (s *stack) faultHeadroomLow(t *testing.T) {
	labels := func(severity string) map[string]string {
		return map[string]string{
			"alertname": "OplogCaptureResumeHeadroomLow", "severity": severity,
			"job": "oplog_collector", "instance": s.collectorAddr, "source_cluster": shardedName,
		}
	}
	oldest := func(shard string) (float64, bool) {
		return s.single(t, fmt.Sprintf(`oplog_capture_source_oplog_oldest_timestamp_seconds{source_cluster=%q,shard=%q}`, shardedName, shard))
	}
	eventually(t, waitTimeout, "each shard's oldest oplog entry in Prometheus", func() (bool, string) {
		v0, ok0 := oldest("sh0")
		v1, ok1 := oldest("sh1")
		return ok0 && ok1 && v0 == float64(s.headroom.initiated["sh0"].T) && v1 == float64(s.headroom.initiated["sh1"].T),
			fmt.Sprintf("sh0 %v (%v), sh1 %v (%v); initiated %v", v0, ok0, v1, ok1, s.headroom.initiated)
	})
	// The recording rule binds the newest of a sharded source's oldest entries: sh1's,
	// 49 hours back, not sh0's 50; the replica set source's set was initiated 72 hours
	// ago. (The test has run for minutes, which the bounds allow.)
	headroom := func(source string) (float64, bool) {
		return s.single(t, fmt.Sprintf(`source_cluster:oplog_capture_resume_headroom:seconds{source_cluster=%q}`, source))
	}
	eventually(t, waitTimeout, "the resume headroom of both sources", func() (bool, string) {
		sharded, ok1 := headroom(shardedName)
		app, ok2 := headroom(sourceName)
		hours := func(v float64) float64 { return v / 3600 }
		return ok1 && ok2 && hours(sharded) >= 49 && hours(sharded) < 49.5 && hours(app) >= 72,
			fmt.Sprintf("%s: %.2fh (%v), %s: %.2fh (%v)", shardedName, hours(sharded), ok1, sourceName, hours(app), ok2)
	})
	s.run(t, fault{
		alerts: []map[string]string{labels("warning"), labels("critical")},
		inject: func(t *testing.T) {
			coll := s.headroom.shard1.Database("app").Collection("headroom")
			for i := range 2 * shortShardHistory {
				if _, err := coll.InsertOne(t.Context(), bson.D{{Key: "i", Value: i}}); err != nil {
					t.Fatal(err)
				}
			}
		},
		clear: func(t *testing.T) {
			for _, want := range []string{"started", "completed"} {
				var res struct {
					State string `bson:"state"`
				}
				if err := s.headroom.mongos.Database("admin").RunCommand(t.Context(), bson.D{{Key: "removeShard", Value: "sh1"}}).Decode(&res); err != nil || res.State != want {
					t.Fatalf("removeShard sh1: state %q, %v; want %s", res.State, err, want)
				}
			}
		},
	})
	eventually(t, waitTimeout, "sh1's series to leave Prometheus, and the heartbeat to show sh0's oldest entry", func() (bool, string) {
		_, sh1 := oldest("sh1")
		central, ok := s.single(t, fmt.Sprintf(`oplog_collector_source_oplog_oldest_timestamp_seconds{source_cluster=%q}`, shardedName))
		return !sh1 && ok && central == float64(s.headroom.initiated["sh0"].T),
			fmt.Sprintf("sh1 still there: %v; heartbeat's oldest entry %v (%v), sh0 initiated at %d", sh1, central, ok, s.headroom.initiated["sh0"].T)
	})
}
