package exporter

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	commoncfg "github.com/prometheus/common/config"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongotest"
)

// oldCollectorDocs are heartbeat documents as the old collector (package oplogstore)
// writes them (docs/oplog-store.md, "Heartbeat document"): ISO strings with +00:00,
// nulls, a connection string with its password next to the status.
var oldCollectorDocs = []any{
	bson.D{
		{Key: "_id", Value: "0b7d1c9e-3f7a-4a51-9d55-3f1c2e0c9a01"},
		{Key: "name", Value: "prod"},
		{Key: "source_connection_string", Value: "mongodb://backup:hunter2@prod-rs0:27017/?replicaSet=rs0"},
		{Key: "oplog_data_store_uri", Value: "mongodb://store:hunter3@store:27017/oplog_backup_db"},
		{Key: "change_stream_target_db", Value: nil},
		{Key: "registration_utc", Value: "2025-06-01T08:00:00+00:00"},
		{Key: "collector_status", Value: bson.D{
			{Key: "status", Value: "running"},
			{Key: "last_app_checked_utc", Value: "2025-06-02T09:59:50+00:00"},
			{Key: "first_oplog_time_utc", Value: "2025-06-01T08:00:05+00:00"},
			{Key: "last_collector_reported_utc", Value: "2025-06-02T10:00:00+00:00"},
			{Key: "last_oplog_time_utc", Value: "2025-06-02T09:59:58+00:00"},
			{Key: "pid", Value: int32(4242)},
			{Key: "error_message", Value: nil},
		}},
	},
	// Just registered: every time still null.
	bson.D{
		{Key: "_id", Value: "5e1f0d7a-0000-4000-8000-000000000002"},
		{Key: "name", Value: "staging"},
		{Key: "source_connection_string", Value: "mongodb://localhost:27017"},
		{Key: "collector_status", Value: bson.D{
			{Key: "status", Value: "pending_registration"},
			{Key: "first_oplog_time_utc", Value: nil},
			{Key: "last_collector_reported_utc", Value: nil},
			{Key: "last_oplog_time_utc", Value: nil},
			{Key: "pid", Value: nil},
			{Key: "error_message", Value: nil},
		}},
	},
	// Lost its resume token; stopped reporting.
	bson.D{
		{Key: "_id", Value: "5e1f0d7a-0000-4000-8000-000000000003"},
		{Key: "name", Value: "reports"},
		{Key: "collector_status", Value: bson.D{
			{Key: "status", Value: "error_resume_token_lost"},
			{Key: "first_oplog_time_utc", Value: "2025-05-20T00:00:00.250000+00:00"},
			{Key: "last_collector_reported_utc", Value: "2025-06-02T07:30:00+00:00"},
			{Key: "last_oplog_time_utc", Value: "2025-06-02T07:29:41+00:00"},
			{Key: "error_message", Value: "Resume token lost (ChangeStreamHistoryLost); reset required"},
		}},
	},
	// Registered by an old manager before any collector ran: no collector_status at all.
	bson.D{{Key: "_id", Value: "5e1f0d7a-0000-4000-8000-000000000004"}, {Key: "name", Value: "archive"}},
}

// newCollectorDocs are heartbeats written by this project's collector: BSON dates, and a
// status the exporter does not know yet.
var newCollectorDocs = []any{
	bson.D{
		{Key: "_id", Value: "a2"},
		{Key: "name", Value: "payments"},
		{Key: "collector_status", Value: bson.D{
			{Key: "status", Value: "running"},
			{Key: "first_oplog_time_utc", Value: bson.DateTime(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli())},
			{Key: "last_collector_reported_utc", Value: bson.DateTime(time.Date(2025, 6, 2, 10, 0, 1, 500e6, time.UTC).UnixMilli())},
			{Key: "last_oplog_time_utc", Value: bson.DateTime(time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC).UnixMilli())},
			{Key: "source_oplog_oldest_time_utc", Value: "2025-06-01T22:00:00+00:00"},
			{Key: "error_message", Value: ""},
		}},
	},
	bson.D{
		{Key: "_id", Value: "a3"},
		{Key: "name", Value: "futures"},
		{Key: "collector_status", Value: bson.D{
			{Key: "status", Value: "draining"},
			{Key: "last_collector_reported_utc", Value: "yesterday"},
			{Key: "last_oplog_time_utc", Value: int32(7)},
		}},
	},
	bson.D{{Key: "_id", Value: "a4"}, {Key: "collector_status", Value: bson.D{{Key: "status", Value: "running"}}}},
}

func insertDocs(t *testing.T, uri, db, coll string, docs []any) *mongo.Client {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	if len(docs) > 0 {
		if _, err := client.Database(db).Collection(coll).InsertMany(t.Context(), docs); err != nil {
			t.Fatal(err)
		}
	}
	return client
}

func newHeartbeatForTest(t *testing.T, targets ...config.HeartbeatDatabase) (Scraper, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	env := testEnv(logs)
	s, err := newHeartbeatScraper(&config.Exporter{HeartbeatDatabases: targets}, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.(*heartbeatScraper).Close)
	return s, logs
}

func metadataTarget(name, uri, db string) config.HeartbeatDatabase {
	limit := config.DefaultSourceLimit
	return config.HeartbeatDatabase{
		Name: name, MongoURI: config.MongoURI{URI: commoncfg.Secret(uri)},
		Database: db, Collection: config.DefaultCollectorMetadataCollection, Timeout: 5 * time.Second,
		SourceLimit: &limit,
	}
}

func TestHeartbeatGolden(t *testing.T) {
	uri := mongotest.URI(t)
	insertDocs(t, uri, "hb_old", config.DefaultCollectorMetadataCollection, oldCollectorDocs)
	insertDocs(t, uri, "hb_new", config.DefaultCollectorMetadataCollection, newCollectorDocs)
	s, logs := newHeartbeatForTest(t,
		metadataTarget("central", uri, "hb_old"),
		metadataTarget("ours", uri, "hb_new"),
		metadataTarget("empty", uri, "hb_database_that_does_not_exist"),
	)
	compareGolden(t, collectorOf(s), filepath.Join("heartbeat", "old-and-new.prom"))
	for _, want := range []string{
		`yesterday\" is not an ISO-8601 time`,
		"a BSON 32-bit integer is not a time",
		"the document has no name",
		"Resume token lost (ChangeStreamHistoryLost); reset required",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), "hunter") {
		t.Errorf("a connection string's password reached the log:\n%s", logs)
	}
}

// A de-registered cluster's series go with its document; a collector that stopped
// reporting keeps its last timestamps.
func TestHeartbeatDeregisteredClusterDisappears(t *testing.T) {
	uri := mongotest.URI(t)
	client := insertDocs(t, uri, "hb_dereg", config.DefaultCollectorMetadataCollection, oldCollectorDocs)
	s, _ := newHeartbeatForTest(t, metadataTarget("central", uri, "hb_dereg"))
	c := collectorOf(s)
	if n := testutil.CollectAndCount(c, "oplog_collector_last_report_timestamp_seconds"); n != 2 {
		t.Fatalf("%d last_report series before de-registering, want 2 (prod, reports)", n)
	}
	if _, err := client.Database("hb_dereg").Collection(config.DefaultCollectorMetadataCollection).DeleteOne(t.Context(), bson.D{{Key: "name", Value: "prod"}}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP oplog_collector_last_report_timestamp_seconds When the collector last wrote its heartbeat (collector_status.last_collector_reported_utc). Kept when the collector stops reporting, so time() - this grows.
# TYPE oplog_collector_last_report_timestamp_seconds gauge
oplog_collector_last_report_timestamp_seconds{metadata="central",source_cluster="reports"} 1.7488494e+09
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "oplog_collector_last_report_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
}

func TestHeartbeatUnreachableDatabase(t *testing.T) {
	srv := mongotest.New(t, "a server that goes away", mongotest.Options{})
	uri := srv.URI()
	writer := insertDocs(t, uri, "hb", config.DefaultCollectorMetadataCollection, oldCollectorDocs)
	target := metadataTarget("central", uri, "hb")
	target.Timeout = 300 * time.Millisecond
	s, logs := newHeartbeatForTest(t, target)
	c := collectorOf(s)
	if n := testutil.CollectAndCount(c, "oplog_collector_status"); n == 0 {
		t.Fatal("no status series while the server is up")
	}
	_ = writer.Disconnect(t.Context()) // now, while the server can still end its sessions
	srv.Stop()
	want := `
# HELP oplog_collector_metadata_up Whether the central metadata database's heartbeat collection was readable (1) or not (0). A database or collection that does not exist yet is readable and empty.
# TYPE oplog_collector_metadata_up gauge
oplog_collector_metadata_up{metadata="central"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	// The first failures are the dropped connection, then the server that no longer
	// answers, each named: each cause is logged once, and repeating it logs nothing more.
	for range 2 {
		testutil.CollectAndCount(c)
	}
	before := strings.Count(logs.String(), "Read failed")
	for range 3 {
		testutil.CollectAndCount(c)
	}
	if after := strings.Count(logs.String(), "Read failed"); after != before || before == 0 {
		t.Fatalf("failures logged %d times, then %d after three more failing scrapes; want the same, non-zero:\n%s", before, after, logs)
	}
}
