package exporter

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	commoncfg "github.com/prometheus/common/config"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongotest"
)

// A fixed clock for fixtures, so golden files do not change from run to run.
var fixtureTime = time.Date(2026, 3, 11, 18, 0, 0, 0, time.UTC)

// metadataFixture writes a verifier's metadata database through the driver, with
// documents shaped as ../shared/reference/migration-verifier.md describes them.
type metadataFixture struct {
	t       *testing.T
	db      *mongo.Database
	version int32 // metadataversion: 7 by default; 6 for the older task fields
}

func newMetadataFixture(t *testing.T, client *mongo.Client, database string, version int32) *metadataFixture {
	return &metadataFixture{t: t, db: client.Database(database), version: version}
}

func (f *metadataFixture) insert(collection string, docs ...any) {
	f.t.Helper()
	if _, err := f.db.Collection(collection).InsertMany(f.t.Context(), docs); err != nil {
		f.t.Fatal(err)
	}
}

func (f *metadataFixture) generation(g int32) *metadataFixture {
	f.insert("generation", bson.D{
		{Key: "_id", Value: "generation"},
		{Key: "generation", Value: g},
		{Key: "metadataversion", Value: f.version},
		{Key: "sourcechangereaderopt", Value: "changeStream"},
		{Key: "destinationchangereaderopt", Value: "changeStream"},
	})
	return f
}

func (f *metadataFixture) primary(status string) *metadataFixture {
	f.insert("verification_tasks", bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "type", Value: taskPrimary}, {Key: "status", Value: status}})
	return f
}

// task describes one verification task; zero fields are written as the verifier
// writes them before they are known.
type task struct {
	typ, status, namespace string
	generation             int32
	documents, found, size int64
	ids                    []int
	begin                  time.Time
	srcTS, dstTS           uint32
}

func (f *metadataFixture) tasks(tasks ...task) *metadataFixture {
	docs := make([]any, 0, len(tasks))
	for _, tk := range tasks {
		doc := bson.D{
			{Key: "_id", Value: bson.NewObjectID()},
			{Key: "type", Value: tk.typ},
			{Key: "status", Value: tk.status},
			{Key: "generation", Value: tk.generation},
		}
		if tk.ids != nil {
			ids := bson.A{}
			for _, id := range tk.ids {
				ids = append(ids, id)
			}
			doc = append(doc, bson.E{Key: "_ids", Value: ids})
		} else {
			doc = append(doc, bson.E{Key: "_ids", Value: nil})
		}
		filter := bson.D{{Key: "namespace", Value: tk.namespace}, {Key: "to", Value: tk.namespace}}
		if tk.typ == taskVerifyDocuments && tk.generation == 0 {
			filter = append(filter, bson.E{Key: "partition", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "lowerBound", Value: bson.MinKey{}}, {Key: "upperBound", Value: bson.MaxKey{}}}}}})
		} else {
			filter = append(filter, bson.E{Key: "partition", Value: nil})
		}
		if tk.typ != taskProcessRecheckQueue {
			doc = append(doc, bson.E{Key: "query_filter", Value: filter})
		}
		if f.version >= 7 {
			doc = append(doc, bson.E{Key: "documents_count", Value: tk.documents}, bson.E{Key: "found_source_documents_count", Value: tk.found})
		} else {
			// Before v7 one field held the source count, and the documents found once finished.
			count := tk.documents
			if tk.typ == taskVerifyDocuments && tk.found > 0 {
				count = tk.found
			}
			doc = append(doc, bson.E{Key: "source_documents_count", Value: count})
		}
		doc = append(doc, bson.E{Key: "source_bytes_count", Value: tk.size})
		if !tk.begin.IsZero() {
			doc = append(doc, bson.E{Key: "begin_time", Value: bson.NewDateTimeFromTime(tk.begin)})
		}
		for _, ts := range []struct {
			key string
			t   uint32
		}{{"srctimestamp", tk.srcTS}, {"dsttimestamp", tk.dstTS}} {
			if ts.t > 0 {
				doc = append(doc, bson.E{Key: ts.key, Value: bson.Timestamp{T: ts.t, I: 7}})
			} else {
				doc = append(doc, bson.E{Key: ts.key, Value: nil})
			}
		}
		docs = append(docs, doc)
	}
	f.insert("verification_tasks", docs...)
	return f
}

// mismatch describes one mismatch document of metadata v6+.
type mismatch struct {
	generation     int32
	taskType       string
	id             any
	field, details string
	cluster        string // srcClient or dstClient
	namespace      string
}

func (f *metadataFixture) mismatches(ms ...mismatch) *metadataFixture {
	docs := make([]any, 0, len(ms))
	for _, m := range ms {
		docs = append(docs, bson.D{
			{Key: "_id", Value: bson.NewObjectID()},
			{Key: "generation", Value: m.generation},
			{Key: "taskType", Value: m.taskType},
			{Key: "taskID", Value: bson.NewObjectID()},
			{Key: "detail", Value: bson.D{
				{Key: "id", Value: m.id},
				{Key: "field", Value: m.field},
				{Key: "details", Value: m.details},
				{Key: "namespace", Value: m.namespace},
				{Key: "cluster", Value: m.cluster},
				{Key: "mismatchHistory", Value: bson.D{{Key: "first", Value: bson.NewDateTimeFromTime(fixtureTime.Add(-time.Hour))}, {Key: "durationMS", Value: int64(3_600_000)}}},
				{Key: "srctimestamp", Value: bson.Timestamp{T: uint32(fixtureTime.Unix()), I: 1}},
				{Key: "dsttimestamp", Value: nil},
			}},
		})
	}
	f.insert("mismatches", docs...)
	return f
}

func (f *metadataFixture) changeReader(collection string, src, dst bson.D) *metadataFixture {
	f.insert(collection,
		bson.D{{Key: "_id", Value: "srcResumeToken"}, {Key: "token", Value: bson.D{{Key: "_data", Value: "8267B1A2C3000000012B0429296E1404"}}}, {Key: "eventCounts", Value: src}},
		bson.D{{Key: "_id", Value: "dstResumeToken"}, {Key: "token", Value: bson.D{{Key: "ts", Value: bson.Timestamp{T: uint32(fixtureTime.Unix()), I: 3}}}}, {Key: "eventCounts", Value: dst}},
	)
	return f
}

func counts(pairs ...any) bson.D {
	var d bson.D
	for i := 0; i < len(pairs); i += 2 {
		d = append(d, bson.E{Key: pairs[i].(string), Value: int64(pairs[i+1].(int))})
	}
	return d
}

func connectForFixtures(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client
}

func verifierConfig(name, uri, database string) config.Verifier {
	limit := config.DefaultNamespaceLimit
	return config.Verifier{
		Name: name, MongoURI: config.MongoURI{URI: commoncfg.Secret(uri)}, Database: database,
		Timeout: 10 * time.Second, NamespaceLimit: &limit, NamespaceRefresh: config.DefaultNamespaceRefresh,
	}
}

func newVerifierForTest(t *testing.T, targets ...config.Verifier) (*verifierScraper, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := newVerifierScraper(&config.Exporter{Verifiers: targets}, testEnv(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.(*verifierScraper).Close)
	return s.(*verifierScraper), logs
}

// Scenario fixtures. Each writes one verifier's metadata into database db.

func initialCheckUnderWay(f *metadataFixture) {
	started := fixtureTime.Add(-10 * time.Minute)
	f.generation(0).primary(statusCompleted).tasks(
		task{typ: taskVerifyCollection, status: statusCompleted, namespace: "shop.orders", documents: 1000, size: 512000, begin: started},
		task{typ: taskVerifyCollection, status: statusCompleted, namespace: "shop.users", documents: 200, size: 51200, begin: started},
		task{typ: taskVerifyCollection, status: statusProcessing, namespace: "shop.carts", documents: 50, size: 4096, begin: started},
		task{typ: taskVerifyDocuments, status: statusCompleted, namespace: "shop.orders", found: 600, size: 307200, begin: started},
		task{typ: taskVerifyDocuments, status: statusProcessing, namespace: "shop.orders", begin: fixtureTime.Add(-2 * time.Minute)},
		task{typ: taskVerifyDocuments, status: statusFailed, namespace: "shop.users", found: 200, size: 51200, begin: started},
		task{typ: taskVerifyDocuments, status: statusAdded, namespace: "shop.carts"},
	).mismatches(
		mismatch{generation: 0, taskType: taskVerifyDocuments, id: 17, field: "email", details: "Different", cluster: "dstClient", namespace: "shop.users"},
	).changeReader("changeReader", counts("insert", 120, "update", 30), counts())
}

func recheckWithEveryKind(f *metadataFixture) {
	f.generation(3).primary(statusCompleted).tasks(
		// generation 0: all done, orders mismatched by content, users by metadata
		task{typ: taskVerifyCollection, status: statusCompleted, namespace: "shop.orders", documents: 1000, size: 512000, begin: fixtureTime.Add(-3 * time.Hour)},
		task{typ: taskVerifyCollection, status: statusMismatch, namespace: "shop.users", documents: 200, size: 51200, begin: fixtureTime.Add(-3 * time.Hour)},
		task{typ: taskVerifyDocuments, status: statusFailed, namespace: "shop.orders", found: 1000, size: 512000, begin: fixtureTime.Add(-3 * time.Hour)},
		task{typ: taskVerifyDocuments, status: statusCompleted, namespace: "shop.users", found: 200, size: 51200, begin: fixtureTime.Add(-3 * time.Hour)},
		// generation 1 and 2: rechecks, finished
		task{typ: taskProcessRecheckQueue, status: statusCompleted, generation: 1},
		task{typ: taskVerifyDocuments, status: statusFailed, generation: 1, namespace: "shop.orders", ids: []int{1, 2, 3}, documents: 3, found: 3, size: 900, srcTS: 1773250000, dstTS: 1773250001},
		task{typ: taskProcessRecheckQueue, status: statusCompleted, generation: 2},
		task{typ: taskVerifyDocuments, status: statusFailed, generation: 2, namespace: "shop.orders", ids: []int{1, 2, 4, 5}, documents: 4, found: 3, size: 1200, srcTS: 1773253202, dstTS: 1773253100},
		task{typ: taskVerifyDocuments, status: statusCompleted, generation: 2, namespace: "shop.users", ids: []int{9}, documents: 1, found: 1, size: 256, srcTS: 1773253000},
		// generation 3: under way
		task{typ: taskProcessRecheckQueue, status: statusCompleted, generation: 3},
		task{typ: taskVerifyDocuments, status: statusProcessing, generation: 3, namespace: "shop.orders", ids: []int{1, 2, 4}, documents: 3, begin: fixtureTime.Add(-30 * time.Second)},
		task{typ: taskVerifyDocuments, status: statusAdded, generation: 3, namespace: "shop.carts", ids: []int{8, 9}, documents: 2},
	).mismatches(
		// generation 1 (superseded: not counted)
		mismatch{generation: 1, taskType: taskVerifyDocuments, id: 3, details: "Missing", cluster: "dstClient", namespace: "shop.orders"},
		// generation 2: the current verdict, one of every kind
		mismatch{generation: 2, taskType: taskVerifyDocuments, id: 1, details: "Missing", cluster: "dstClient", namespace: "shop.orders"},
		mismatch{generation: 2, taskType: taskVerifyDocuments, id: 2, details: "Missing", cluster: "dstClient", namespace: "shop.orders"},
		mismatch{generation: 2, taskType: taskVerifyDocuments, id: 4, details: "Missing", cluster: "srcClient", namespace: "shop.orders"},
		mismatch{generation: 2, taskType: taskVerifyDocuments, id: 5, field: "total", details: "Different", cluster: "dstClient", namespace: "shop.orders"},
		mismatch{generation: 2, taskType: taskVerifyCollection, id: "email_1", field: "unique", details: "Different", cluster: "dstClient", namespace: "shop.users"},
	).changeReader("changeReader", counts("insert", 5000, "update", 1200, "delete", 40, "createIndexes", 1), counts("insert", 4990, "update", 1200))
}

func finishedRun(f *metadataFixture) {
	f.generation(5).primary(statusCompleted).tasks(
		task{typ: taskVerifyCollection, status: statusCompleted, namespace: "app.events", documents: 10, size: 1000, begin: fixtureTime.Add(-2 * time.Hour)},
		task{typ: taskVerifyDocuments, status: statusCompleted, namespace: "app.events", found: 10, size: 1000, begin: fixtureTime.Add(-2 * time.Hour)},
		task{typ: taskProcessRecheckQueue, status: statusCompleted, generation: 4},
		task{typ: taskVerifyDocuments, status: statusCompleted, generation: 4, namespace: "app.events", ids: []int{1}, documents: 1, found: 1, size: 100, srcTS: 1773200000, dstTS: 1773200000},
	).changeReader("changeReader", counts("insert", 11), counts("insert", 11))
}

func stalledRun(f *metadataFixture) {
	f.generation(0).primary(statusCompleted).tasks(
		task{typ: taskVerifyCollection, status: statusCompleted, namespace: "big.blobs", documents: 1e6, size: 1 << 40, begin: fixtureTime.Add(-26 * time.Hour)},
		task{typ: taskVerifyDocuments, status: statusProcessing, namespace: "big.blobs", begin: fixtureTime.Add(-25 * time.Hour)},
		task{typ: taskVerifyDocuments, status: statusProcessing, namespace: "big.blobs", begin: fixtureTime.Add(-3 * time.Hour)},
	)
}

func metadataMismatchOnly(f *metadataFixture) {
	f.generation(0).primary(statusCompleted).tasks(
		task{typ: taskVerifyCollection, status: statusFailed, namespace: "crm.accounts", documents: 10, size: 4000, begin: fixtureTime.Add(-time.Hour)},
		task{typ: taskVerifyCollection, status: statusCompleted, namespace: "crm.notes", documents: 5, size: 500, begin: fixtureTime.Add(-time.Hour)},
		task{typ: taskVerifyDocuments, status: statusCompleted, namespace: "crm.notes", found: 5, size: 500, begin: fixtureTime.Add(-time.Hour)},
	).mismatches(
		mismatch{generation: 0, taskType: taskVerifyCollection, id: "spec", field: "shardKey", details: "Different", cluster: "dstClient", namespace: "crm.accounts"},
	)
}

func initializing(f *metadataFixture) {
	f.primary(statusAdded)
}

func TestVerifierGolden(t *testing.T) {
	uri := mongotest.URI(t)
	client := connectForFixtures(t, uri)
	cases := []struct {
		name     string
		database string // "" to detect
		write    func(*metadataFixture)
		dbName   string // where the fixture is written
		version  int32
	}{
		{"initial-check", "", initialCheckUnderWay, verifierDatabase, 7},
		{"recheck-every-kind", "vf_recheck", recheckWithEveryKind, "vf_recheck", 7},
		{"recheck-v6", "vf_recheck_v6", recheckWithEveryKind, "vf_recheck_v6", 6},
		{"finished", "vf_finished", finishedRun, "vf_finished", 7},
		{"stalled", "vf_stalled", stalledRun, "vf_stalled", 7},
		{"metadata-mismatch", "vf_metadata", metadataMismatchOnly, "vf_metadata", 7},
		{"initializing", "vf_init", initializing, "vf_init", 7},
		{"empty", "vf_never_created", nil, "", 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.write != nil {
				c.write(newMetadataFixture(t, client, c.dbName, c.version))
				t.Cleanup(func() { _ = client.Database(c.dbName).Drop(context.Background()) })
			}
			s, logs := newVerifierForTest(t, verifierConfig(c.name, uri, c.database))
			compareGolden(t, collectorOf(s), filepath.Join("verifier", c.name+".prom"))
			if strings.Contains(logs.String(), "level=warn") {
				t.Errorf("unexpected warnings:\n%s", logs)
			}
		})
	}
}

// Verifiers before v0.2.0 used another database name; detection finds it when the
// current default is absent, and a metadata v2-v3 database keeps its counters in
// changeStream.
func TestVerifierOldDatabaseName(t *testing.T) {
	uri := mongotest.URI(t)
	client := connectForFixtures(t, uri)
	f := newMetadataFixture(t, client, verifierDatabaseOld, 3)
	f.generation(1).primary(statusCompleted).tasks(
		task{typ: taskVerifyCollection, status: statusCompleted, namespace: "old.things", documents: 3, size: 30},
	).changeReader("changeStream", counts("insert", 7), counts("insert", 6))
	t.Cleanup(func() { _ = client.Database(verifierDatabaseOld).Drop(context.Background()) })
	s, _ := newVerifierForTest(t, verifierConfig("old", uri, ""))
	compareGolden(t, collectorOf(s), filepath.Join("verifier", "old-database.prom"))
}

// The verifier's --clean drops the whole database: the next scrape says not_started,
// with no error and no warning.
func TestVerifierDatabaseDropped(t *testing.T) {
	uri := mongotest.URI(t)
	client := connectForFixtures(t, uri)
	finishedRun(newMetadataFixture(t, client, "vf_clean", 7))
	s, logs := newVerifierForTest(t, verifierConfig("clean", uri, "vf_clean"))
	c := collectorOf(s)
	if n := testutil.CollectAndCount(c, "migration_verifier_generation"); n != 1 {
		t.Fatalf("generation series before --clean: %d", n)
	}
	if err := client.Database("vf_clean").Drop(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP migration_verifier_phase Phase of the verification (state-set), from the metadata database, or from the API while the database is unreadable.
# TYPE migration_verifier_phase gauge
migration_verifier_phase{phase="check",verifier="clean"} 0
migration_verifier_phase{phase="idle",verifier="clean"} 0
migration_verifier_phase{phase="initializing",verifier="clean"} 0
migration_verifier_phase{phase="not_started",verifier="clean"} 1
migration_verifier_phase{phase="recheck",verifier="clean"} 0
# HELP migration_verifier_up Whether the verifier's metadata database was readable (1) or not (0). A database that does not exist yet (not started, or dropped by --clean) is readable.
# TYPE migration_verifier_up gauge
migration_verifier_up{verifier="clean"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if logs.String() != "" {
		t.Fatalf("a dropped database is normal, yet it was logged:\n%s", logs)
	}
}

// verifierAPIStandIn serves a recorded GET /api/v1/progress, and fails any other request.
func verifierAPIStandIn(t *testing.T, body string) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var requests []string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/progress" {
			http.Error(w, "the exporter must only GET /api/v1/progress", http.StatusTeapot)
			return
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s, &requests
}

// The API example of the reference, with the metadata database unreachable: the API's
// series and phase stand in, and each source says whether it was read.
func TestVerifierAPIWhenDatabaseIsDown(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "verifier", "api-progress.json"))
	if err != nil {
		t.Fatal(err)
	}
	api, requests := verifierAPIStandIn(t, string(body))
	target := verifierConfig("api", "mongodb://127.0.0.1:1/?connectTimeoutMS=200", "")
	target.Timeout = 500 * time.Millisecond
	target.APIURL = api.URL
	s, logs := newVerifierForTest(t, target)
	compareGolden(t, collectorOf(s), filepath.Join("verifier", "api-only.prom"))
	if !strings.Contains(logs.String(), `source="metadata database"`) {
		t.Errorf("the database failure was not logged:\n%s", logs)
	}
	for _, r := range *requests {
		if r != "GET /api/v1/progress" {
			t.Errorf("the exporter sent %s", r)
		}
	}
}

// An API that answers {"error": ...} with HTTP 200 is down; the database's series stay.
func TestVerifierAPIErrorKeepsDatabaseSeries(t *testing.T) {
	uri := mongotest.URI(t)
	client := connectForFixtures(t, uri)
	finishedRun(newMetadataFixture(t, client, "vf_apierr", 7))
	api, _ := verifierAPIStandIn(t, `{"error":"verifier is shutting down"}`)
	target := verifierConfig("apierr", uri, "vf_apierr")
	target.APIURL = api.URL
	s, logs := newVerifierForTest(t, target)
	c := collectorOf(s)
	want := `
# HELP migration_verifier_api_up Whether the verifier's GET /api/v1/progress answered without error (1) or not (0); only when api_url is configured.
# TYPE migration_verifier_api_up gauge
migration_verifier_api_up{verifier="apierr"} 0
# HELP migration_verifier_up Whether the verifier's metadata database was readable (1) or not (0). A database that does not exist yet (not started, or dropped by --clean) is readable.
# TYPE migration_verifier_up gauge
migration_verifier_up{verifier="apierr"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "migration_verifier_up", "migration_verifier_api_up"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "migration_verifier_generation"); n != 1 {
		t.Fatalf("the database's series went with the API: %d generation series", n)
	}
	if !strings.Contains(logs.String(), "verifier is shutting down") {
		t.Errorf("the API's error text was not logged:\n%s", logs)
	}
}

func TestVerifierNamespaceLimitAndFilter(t *testing.T) {
	uri := mongotest.URI(t)
	client := connectForFixtures(t, uri)
	f := newMetadataFixture(t, client, "vf_many", 7).generation(0)
	var tasks []task
	for i := range 6 {
		status := statusCompleted
		if i == 4 || i == 5 {
			status = statusFailed
		}
		tasks = append(tasks, task{typ: taskVerifyDocuments, status: status, namespace: fmt.Sprintf("db%d.coll", i), found: 1})
	}
	tasks = append(tasks, task{typ: taskVerifyDocuments, status: statusAdded, namespace: "skip.me"})
	f.tasks(tasks...)
	target := verifierConfig("many", uri, "vf_many")
	limit := 3
	target.NamespaceLimit = &limit
	target.NamespaceInclude = `^db`
	s, _ := newVerifierForTest(t, target)
	want := `
# HELP migration_verifier_namespace_mismatched Whether the namespace has a mismatch (1) or not (0) in the generation whose verdict is current; at most namespace_limit namespaces, mismatched first, filtered by namespace_include; refreshed at most every namespace_refresh_interval.
# TYPE migration_verifier_namespace_mismatched gauge
migration_verifier_namespace_mismatched{namespace="db0.coll",verifier="many"} 0
migration_verifier_namespace_mismatched{namespace="db4.coll",verifier="many"} 1
migration_verifier_namespace_mismatched{namespace="db5.coll",verifier="many"} 1
# HELP migration_verifier_namespaces Namespaces by verdict in the generation whose verdict is current; refreshed at most every namespace_refresh_interval (default 30s), since it scans a whole generation of tasks.
# TYPE migration_verifier_namespaces gauge
migration_verifier_namespaces{status="complete",verifier="many"} 4
migration_verifier_namespaces{status="in_progress",verifier="many"} 1
migration_verifier_namespaces{status="mismatched",verifier="many"} 2
# HELP migration_verifier_namespaces_omitted Namespaces left out of migration_verifier_namespace_mismatched by namespace_limit or namespace_include.
# TYPE migration_verifier_namespaces_omitted gauge
migration_verifier_namespaces_omitted{verifier="many"} 4
`
	if err := testutil.CollectAndCompare(collectorOf(s), strings.NewReader(want),
		"migration_verifier_namespace_mismatched", "migration_verifier_namespaces", "migration_verifier_namespaces_omitted"); err != nil {
		t.Fatal(err)
	}
}

// commandLog records the commands the exporter's MongoDB clients send.
type commandLog struct {
	mu       sync.Mutex
	commands []bson.Raw
	names    []string
	// hold, when set, is called before a command is sent (on the driver's goroutine).
	hold func(name string)
}

func (l *commandLog) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		l.mu.Lock()
		l.commands = append(l.commands, append(bson.Raw(nil), e.Command...))
		l.names = append(l.names, e.CommandName)
		hold := l.hold
		l.mu.Unlock()
		if hold != nil {
			hold(e.CommandName)
		}
	}}
}

func (l *commandLog) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.names)
}

func (l *commandLog) count(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.names {
		if c == name {
			n++
		}
	}
	return n
}

// watchCommands makes the exporter's MongoDB clients report to the returned log.
func watchCommands(t *testing.T) *commandLog {
	l := &commandLog{}
	previous := mongoClientOptions
	mongoClientOptions = func(o *options.ClientOptions) *options.ClientOptions { return o.SetMonitor(l.monitor()) }
	t.Cleanup(func() { mongoClientOptions = previous })
	return l
}

// Every query carries maxTimeMS, so the server stops it when the exporter stops waiting.
func TestVerifierQueriesAreBoundedOnTheServer(t *testing.T) {
	uri := mongotest.URI(t)
	client := connectForFixtures(t, uri)
	recheckWithEveryKind(newMetadataFixture(t, client, "vf_bounded", 7))
	commands := watchCommands(t)
	s, _ := newVerifierForTest(t, verifierConfig("bounded", uri, "vf_bounded"))
	testutil.CollectAndCount(collectorOf(s))
	commands.mu.Lock()
	defer commands.mu.Unlock()
	queries := 0
	for i, cmd := range commands.commands {
		switch commands.names[i] {
		case "find", "aggregate", "count", "listDatabases", "getMore":
			queries++
			if _, err := cmd.LookupErr("maxTimeMS"); err != nil && commands.names[i] != "getMore" {
				t.Errorf("%s without maxTimeMS: %s", commands.names[i], cmd)
			}
		}
	}
	if queries == 0 {
		t.Fatal("no query seen")
	}
}

// Twenty scrapes at once share one read of the metadata database: they send the
// commands of a single scrape.
func TestVerifierConcurrentScrapesShareOneRead(t *testing.T) {
	uri := mongotest.URI(t)
	client := connectForFixtures(t, uri)
	recheckWithEveryKind(newMetadataFixture(t, client, "vf_shared", 7))
	commands := watchCommands(t)

	single, _ := newVerifierForTest(t, verifierConfig("single", uri, "vf_shared"))
	testutil.CollectAndCount(collectorOf(single), "migration_verifier_up")
	oneRead := commands.total()
	if commands.count("aggregate") == 0 {
		t.Fatal("a scrape ran no aggregation")
	}

	const scrapes = 20
	var started sync.WaitGroup
	started.Add(scrapes)
	release := make(chan struct{})
	var once sync.Once
	commands.hold = func(name string) {
		if name == "listDatabases" { // the first command of a read: hold it until every scrape is waiting
			once.Do(func() { <-release })
		}
	}
	s, _ := newVerifierForTest(t, verifierConfig("shared", uri, "vf_shared"))
	results := make(chan float64, scrapes)
	for range scrapes {
		go func() {
			ch := make(chan prometheus.Metric, 1000)
			started.Done()
			_ = s.Scrape(context.Background(), ch)
			close(ch)
			up := -1.0
			for m := range ch {
				if strings.Contains(m.Desc().String(), `"migration_verifier_up"`) {
					up = testutil.ToFloat64(constCollector{m})
				}
			}
			results <- up
		}()
	}
	started.Wait()
	time.Sleep(100 * time.Millisecond) // let the goroutines reach the shared read; the assertion below does not depend on timing otherwise
	close(release)
	for range scrapes {
		if up := <-results; up != 1 {
			t.Fatalf("a scrape got migration_verifier_up %v", up)
		}
	}
	if n := commands.total() - oneRead; n != oneRead {
		t.Fatalf("%d concurrent scrapes sent %d commands; one scrape sends %d", scrapes, n, oneRead)
	}
}

// constCollector collects one metric, for testutil.ToFloat64.
type constCollector struct{ m prometheus.Metric }

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.Desc() }
func (c constCollector) Collect(ch chan<- prometheus.Metric) { ch <- c.m }

// The per-namespace aggregation scans a generation: it runs once per refresh interval.
func TestVerifierNamespaceAggregationIsCached(t *testing.T) {
	uri := mongotest.URI(t)
	client := connectForFixtures(t, uri)
	recheckWithEveryKind(newMetadataFixture(t, client, "vf_cached", 7))
	commands := watchCommands(t)
	s, _ := newVerifierForTest(t, verifierConfig("cached", uri, "vf_cached"))
	namespaceScans := func() int {
		commands.mu.Lock()
		defer commands.mu.Unlock()
		n := 0
		for _, c := range commands.commands {
			if strings.Contains(c.String(), "query_filter.namespace") {
				n++
			}
		}
		return n
	}
	for range 3 {
		testutil.CollectAndCount(collectorOf(s))
	}
	if n := namespaceScans(); n != 1 {
		t.Fatalf("3 scrapes within the refresh interval scanned namespaces %d times, want 1", n)
	}
	s.targets[0].reader.namespaces.refresh = 0 // every scrape is past the interval
	testutil.CollectAndCount(collectorOf(s))
	if n := namespaceScans(); n != 2 {
		t.Fatalf("a scrape past the refresh interval did not scan again (%d scans)", n)
	}
}

func TestParseVerifierProgress(t *testing.T) {
	for _, c := range []struct{ body, err string }{
		{`{"error":"boom"}`, "the verifier reported an error: boom"},
		{`{"progress":{"phase":"idle","error":"stuck"}}`, "the verifier reported an error: stuck"},
		{`{"progress":{"phase":"idle","generation":0,"error":null}}`, ""},
		{`not json`, "not a JSON progress report"},
		{`{}`, `no "progress" object`},
	} {
		_, err := parseVerifierProgress([]byte(c.body))
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("parseVerifierProgress(%s) error = %v, want %q", c.body, err, c.err)
		}
	}
}

func TestVerifierLongestMismatchFromAPI(t *testing.T) {
	p, err := parseVerifierProgress([]byte(`{"progress":{"phase":"recheck","error":null,
		"longestDocMismatch":{"type":"Different","namespace":"shop.orders","_id":"5","field":"total","detail":"Different","durationSecs":3600.5}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan prometheus.Metric, 10)
	emitVerifierAPI(emitter{ch: ch, labels: []string{"v"}}, p)
	close(ch)
	var got []string
	for m := range ch {
		got = append(got, fmt.Sprintf("%s=%v", m.Desc(), testutil.ToFloat64(constCollector{m})))
	}
	if len(got) != 1 || !strings.Contains(got[0], "migration_verifier_longest_mismatch_duration_seconds") || !strings.HasSuffix(got[0], "=3600.5") {
		t.Fatalf("emitted %v, want the longest mismatch at 3600.5 s", got)
	}
}
