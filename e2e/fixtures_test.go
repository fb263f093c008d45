package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Databases and names the fixtures write, shared with the config and the assertions.
const (
	verifierDefaultDB = "__mdb_internal_migration_verifier" // found by detection (no database in the config)
	verifierRecheckDB = "vf_recheck"
	heartbeatDB       = "oplog_manager_orchestrator_db"
	heartbeatColl     = "source_clusters_info"
	sourceDB          = "app" // the captured source database
	sourceColl        = "orders"
)

// Task types and statuses of migration-verifier's verification_tasks
// (../shared/reference/migration-verifier.md).
const (
	taskPrimary             = "primary"
	taskProcessRecheckQueue = "processRecheckQueue"
	taskVerifyCollection    = "verifyCollection"
	taskVerifyDocuments     = "verifyDocuments"
	statusAdded             = "added"
	statusProcessing        = "processing"
	statusCompleted         = "completed"
	statusFailed            = "failed"
	statusMismatch          = "mismatch"
)

// verifierTask is one verification task; zero fields are written as the verifier writes
// them before they are known.
type verifierTask struct {
	typ, status, namespace string
	generation             int32
	documents, found, size int64
	ids                    []int
	begin                  time.Time
	srcTS, dstTS           time.Time
}

func (tk verifierTask) doc() bson.D {
	doc := bson.D{
		{Key: "_id", Value: bson.NewObjectID()},
		{Key: "type", Value: tk.typ},
		{Key: "status", Value: tk.status},
	}
	if tk.typ == taskPrimary {
		return doc
	}
	doc = append(doc, bson.E{Key: "generation", Value: tk.generation})
	if tk.ids != nil {
		ids := bson.A{}
		for _, id := range tk.ids {
			ids = append(ids, id)
		}
		doc = append(doc, bson.E{Key: "_ids", Value: ids})
	} else {
		doc = append(doc, bson.E{Key: "_ids", Value: nil})
	}
	if tk.typ != taskProcessRecheckQueue {
		filter := bson.D{{Key: "namespace", Value: tk.namespace}, {Key: "to", Value: tk.namespace}}
		if tk.typ == taskVerifyDocuments && tk.generation == 0 {
			filter = append(filter, bson.E{Key: "partition", Value: bson.D{{Key: "_id", Value: bson.D{
				{Key: "lowerBound", Value: bson.MinKey{}}, {Key: "upperBound", Value: bson.MaxKey{}}}}}})
		} else {
			filter = append(filter, bson.E{Key: "partition", Value: nil})
		}
		doc = append(doc, bson.E{Key: "query_filter", Value: filter})
	}
	doc = append(doc,
		bson.E{Key: "documents_count", Value: tk.documents},
		bson.E{Key: "found_source_documents_count", Value: tk.found},
		bson.E{Key: "source_bytes_count", Value: tk.size})
	if !tk.begin.IsZero() {
		doc = append(doc, bson.E{Key: "begin_time", Value: bson.NewDateTimeFromTime(tk.begin)})
	}
	for _, ts := range []struct {
		key string
		at  time.Time
	}{{"srctimestamp", tk.srcTS}, {"dsttimestamp", tk.dstTS}} {
		if ts.at.IsZero() {
			doc = append(doc, bson.E{Key: ts.key, Value: nil})
		} else {
			doc = append(doc, bson.E{Key: ts.key, Value: bson.Timestamp{T: uint32(ts.at.Unix()), I: 1}})
		}
	}
	return doc
}

// verifierMismatch is one document of the mismatches collection (metadata v6+).
type verifierMismatch struct {
	generation     int32
	taskType       string
	id             any
	field, details string
	cluster        string // srcClient or dstClient
	namespace      string
}

func (m verifierMismatch) doc(now time.Time) bson.D {
	return bson.D{
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
			{Key: "mismatchHistory", Value: bson.D{{Key: "first", Value: bson.NewDateTimeFromTime(now.Add(-30 * time.Minute))}, {Key: "durationMS", Value: int64(1_800_000)}}},
			{Key: "srctimestamp", Value: bson.Timestamp{T: uint32(now.Unix()), I: 1}},
			{Key: "dsttimestamp", Value: nil},
		}},
	}
}

// verifierFixture writes one verifier's metadata database.
type verifierFixture struct {
	db  *mongo.Database
	now time.Time
}

func (f verifierFixture) write(ctx context.Context, generation int32, tasks []verifierTask, mismatches []verifierMismatch, srcCounts, dstCounts bson.D) error {
	if _, err := f.db.Collection("generation").InsertOne(ctx, bson.D{
		{Key: "_id", Value: "generation"},
		{Key: "generation", Value: generation},
		{Key: "metadataversion", Value: int32(7)},
		{Key: "sourcechangereaderopt", Value: "changeStream"},
		{Key: "destinationchangereaderopt", Value: "changeStream"},
	}); err != nil {
		return err
	}
	docs := []any{}
	for _, tk := range tasks {
		docs = append(docs, tk.doc())
	}
	if _, err := f.db.Collection("verification_tasks").InsertMany(ctx, docs); err != nil {
		return err
	}
	if err := f.insertMismatches(ctx, mismatches...); err != nil {
		return err
	}
	_, err := f.db.Collection("changeReader").InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "srcResumeToken"}, {Key: "token", Value: bson.D{{Key: "_data", Value: "8267B1A2C3000000012B0429296E1404"}}}, {Key: "eventCounts", Value: srcCounts}},
		bson.D{{Key: "_id", Value: "dstResumeToken"}, {Key: "token", Value: bson.D{{Key: "ts", Value: bson.Timestamp{T: uint32(f.now.Unix()), I: 3}}}}, {Key: "eventCounts", Value: dstCounts}},
	})
	return err
}

func (f verifierFixture) insertMismatches(ctx context.Context, ms ...verifierMismatch) error {
	if len(ms) == 0 {
		return nil
	}
	docs := []any{}
	for _, m := range ms {
		docs = append(docs, m.doc(f.now))
	}
	_, err := f.db.Collection("mismatches").InsertMany(ctx, docs)
	return err
}

func counts(pairs ...any) bson.D {
	var d bson.D
	for i := 0; i < len(pairs); i += 2 {
		d = append(d, bson.E{Key: pairs[i].(string), Value: int64(pairs[i+1].(int))})
	}
	return d
}

// seedInitialCheck writes a verifier in its initial check (generation 0), with a
// content mismatch found in it: MigrationVerifierMismatchesFound waits for the recheck
// generations, so this verifier must never raise it.
func seedInitialCheck(ctx context.Context, client *mongo.Client, now time.Time) error {
	started := now.Add(-10 * time.Minute)
	f := verifierFixture{db: client.Database(verifierDefaultDB), now: now}
	return f.write(ctx, 0, []verifierTask{
		{typ: taskPrimary, status: statusCompleted},
		{typ: taskVerifyCollection, status: statusCompleted, namespace: "shop.orders", documents: 1000, size: 512000, begin: started},
		{typ: taskVerifyCollection, status: statusCompleted, namespace: "shop.users", documents: 200, size: 51200, begin: started},
		{typ: taskVerifyCollection, status: statusProcessing, namespace: "shop.carts", documents: 50, size: 4096, begin: started},
		{typ: taskVerifyDocuments, status: statusCompleted, namespace: "shop.orders", found: 600, size: 307200, begin: started},
		{typ: taskVerifyDocuments, status: statusProcessing, namespace: "shop.orders", begin: now.Add(-2 * time.Minute)},
		{typ: taskVerifyDocuments, status: statusFailed, namespace: "shop.users", found: 200, size: 51200, begin: started},
		{typ: taskVerifyDocuments, status: statusAdded, namespace: "shop.carts"},
	}, []verifierMismatch{
		{generation: 0, taskType: taskVerifyDocuments, id: 17, field: "email", details: "Different", cluster: "dstClient", namespace: "shop.users"},
	}, counts("insert", 120, "update", 30), counts())
}

// seedRecheck writes a verifier rechecking (generation 3) whose verdict generation (2)
// has no mismatch yet: the fault script writes them (recheckMismatches).
func seedRecheck(ctx context.Context, client *mongo.Client, now time.Time) error {
	gen0 := now.Add(-50 * time.Minute)
	f := verifierFixture{db: client.Database(verifierRecheckDB), now: now}
	return f.write(ctx, 3, []verifierTask{
		{typ: taskPrimary, status: statusCompleted},
		// generation 0: done; orders mismatched by content, users by metadata
		{typ: taskVerifyCollection, status: statusCompleted, namespace: "shop.orders", documents: 1000, size: 512000, begin: gen0},
		{typ: taskVerifyCollection, status: statusMismatch, namespace: "shop.users", documents: 200, size: 51200, begin: gen0},
		{typ: taskVerifyDocuments, status: statusFailed, namespace: "shop.orders", found: 1000, size: 512000, begin: gen0},
		{typ: taskVerifyDocuments, status: statusCompleted, namespace: "shop.users", found: 200, size: 51200, begin: gen0},
		// generations 1 and 2: rechecks, finished
		{typ: taskProcessRecheckQueue, status: statusCompleted, generation: 1},
		{typ: taskVerifyDocuments, status: statusFailed, generation: 1, namespace: "shop.orders", ids: []int{1, 2, 3}, documents: 3, found: 3, size: 900, srcTS: now.Add(-20 * time.Minute), dstTS: now.Add(-20 * time.Minute)},
		{typ: taskProcessRecheckQueue, status: statusCompleted, generation: 2},
		{typ: taskVerifyDocuments, status: statusFailed, generation: 2, namespace: "shop.orders", ids: []int{1, 2, 4, 5}, documents: 4, found: 3, size: 1200, srcTS: now.Add(-2 * time.Minute), dstTS: now.Add(-3 * time.Minute)},
		{typ: taskVerifyDocuments, status: statusCompleted, generation: 2, namespace: "shop.users", ids: []int{9}, documents: 1, found: 1, size: 256, srcTS: now.Add(-4 * time.Minute)},
		// generation 3: under way
		{typ: taskProcessRecheckQueue, status: statusCompleted, generation: 3},
		{typ: taskVerifyDocuments, status: statusProcessing, generation: 3, namespace: "shop.orders", ids: []int{1, 2, 4}, documents: 3, begin: now.Add(-30 * time.Second)},
		{typ: taskVerifyDocuments, status: statusAdded, generation: 3, namespace: "shop.carts", ids: []int{8, 9}, documents: 2},
	}, []verifierMismatch{
		// generation 1: superseded by the recheck of generation 2, never counted
		{generation: 1, taskType: taskVerifyDocuments, id: 3, details: "Missing", cluster: "dstClient", namespace: "shop.orders"},
	}, counts("insert", 5000, "update", 1200, "delete", 40), counts("insert", 4990, "update", 1200))
}

// recheckMismatches are what the recheck of generation 2 found: two documents missing on
// the destination and one that differs.
var recheckMismatches = []verifierMismatch{
	{generation: 2, taskType: taskVerifyDocuments, id: 1, details: "Missing", cluster: "dstClient", namespace: "shop.orders"},
	{generation: 2, taskType: taskVerifyDocuments, id: 2, details: "Missing", cluster: "dstClient", namespace: "shop.orders"},
	{generation: 2, taskType: taskVerifyDocuments, id: 5, field: "total", details: "Different", cluster: "dstClient", namespace: "shop.orders"},
}

// pythonISO is how the old Python collector writes times (datetime.isoformat()).
const pythonISO = "2006-01-02T15:04:05.000000+00:00"

// legacyHeartbeat writes, and keeps fresh, the heartbeat document of a source captured
// by the old Python collector: the exporter reads it next to the documents of this
// project's collector, in the same collection. Its connection string holds a password
// the exporter must never export.
func legacyHeartbeat(ctx context.Context, client *mongo.Client, now time.Time) error {
	coll := client.Database(heartbeatDB).Collection(heartbeatColl)
	_, err := coll.InsertOne(ctx, bson.D{
		{Key: "_id", Value: "0b7d1c9e-3f7a-4a51-9d55-3f1c2e0c9a01"},
		{Key: "name", Value: "legacy"},
		{Key: "source_connection_string", Value: "mongodb://backup:hunter2@legacy-rs0:27017/?replicaSet=rs0"},
		{Key: "change_stream_target_db", Value: nil},
		{Key: "registration_utc", Value: now.Add(-24 * time.Hour).UTC().Format(pythonISO)},
		{Key: "collector_status", Value: bson.D{
			{Key: "status", Value: "running"},
			{Key: "first_oplog_time_utc", Value: now.Add(-24 * time.Hour).UTC().Format(pythonISO)},
			{Key: "last_collector_reported_utc", Value: now.UTC().Format(pythonISO)},
			{Key: "last_oplog_time_utc", Value: now.Add(-2 * time.Second).UTC().Format(pythonISO)},
			{Key: "pid", Value: int32(4242)},
			{Key: "error_message", Value: nil},
		}},
	})
	return err
}

func refreshLegacyHeartbeat(ctx context.Context, client *mongo.Client) error {
	now := time.Now().UTC()
	_, err := client.Database(heartbeatDB).Collection(heartbeatColl).UpdateOne(ctx,
		bson.D{{Key: "name", Value: "legacy"}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "collector_status.last_collector_reported_utc", Value: now.Format(pythonISO)},
			{Key: "collector_status.last_oplog_time_utc", Value: now.Add(-2 * time.Second).Format(pythonISO)},
		}}})
	return err
}

// writer is the write load on the captured source: inserts, updates and deletes in
// app.orders at a steady pace, and the old collector's heartbeat kept fresh.
type writer struct {
	client *mongo.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup
	writes atomic.Int64

	mu      sync.Mutex
	lastErr error
}

func startWriter(client *mongo.Client, every time.Duration) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{client: client, cancel: cancel}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		coll := client.Database(sourceDB).Collection(sourceColl)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var err error
			switch {
			case i%10 == 9:
				_, err = coll.DeleteOne(ctx, bson.D{{Key: "n", Value: i - 9}})
			case i%5 == 4:
				_, err = coll.UpdateOne(ctx, bson.D{{Key: "n", Value: i - 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "qty", Value: 1}}}})
			default:
				_, err = coll.InsertOne(ctx, bson.D{{Key: "n", Value: i}, {Key: "qty", Value: 1}, {Key: "at", Value: time.Now()}})
			}
			if err == nil && i%10 == 0 {
				err = refreshLegacyHeartbeat(ctx, client)
			}
			if err != nil && ctx.Err() == nil {
				w.mu.Lock()
				w.lastErr = err
				w.mu.Unlock()
				continue
			}
			w.writes.Add(1)
		}
	}()
	return w
}

func (w *writer) stop() {
	w.cancel()
	w.wg.Wait()
}

func (w *writer) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// burst inserts n events into the source at once, in batches.
func burst(ctx context.Context, client *mongo.Client, n int) error {
	coll := client.Database(sourceDB).Collection("burst")
	for done := 0; done < n; {
		batch := min(500, n-done)
		docs := make([]any, batch)
		for i := range docs {
			docs[i] = bson.D{{Key: "i", Value: done + i}}
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			return fmt.Errorf("burst of writes: %w", err)
		}
		done += batch
	}
	return nil
}
