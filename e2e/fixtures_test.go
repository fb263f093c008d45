package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	vf "github.com/mongomigrate/observability/internal/verifierfixture"
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

// writeVerifier writes one verifier's metadata: its generation document, tasks,
// mismatches and change-reader counters.
func writeVerifier(ctx context.Context, f vf.Fixture, generation int32, tasks []vf.Task, mismatches []vf.Mismatch, src, dst bson.D) error {
	if err := f.Generation(ctx, generation); err != nil {
		return err
	}
	if err := f.Tasks(ctx, tasks...); err != nil {
		return err
	}
	if err := f.Mismatches(ctx, mismatches...); err != nil {
		return err
	}
	return f.ChangeReader(ctx, "changeReader", src, dst)
}

// seedInitialCheck writes a verifier in its initial check (generation 0), with a
// content mismatch found in it: MigrationVerifierMismatchesFound waits for the recheck
// generations, so this verifier must never raise it.
func seedInitialCheck(ctx context.Context, client *mongo.Client, now time.Time) error {
	started := now.Add(-10 * time.Minute)
	f := vf.Fixture{DB: client.Database(verifierDefaultDB), Now: now}
	return writeVerifier(ctx, f, 0, []vf.Task{
		{Type: vf.TaskPrimary, Status: vf.StatusCompleted},
		{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "shop.orders", Documents: 1000, Size: 512000, Begin: started},
		{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "shop.users", Documents: 200, Size: 51200, Begin: started},
		{Type: vf.TaskVerifyCollection, Status: vf.StatusProcessing, Namespace: "shop.carts", Documents: 50, Size: 4096, Begin: started},
		{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Namespace: "shop.orders", Found: 600, Size: 307200, Begin: started},
		{Type: vf.TaskVerifyDocuments, Status: vf.StatusProcessing, Namespace: "shop.orders", Begin: now.Add(-2 * time.Minute)},
		{Type: vf.TaskVerifyDocuments, Status: vf.StatusFailed, Namespace: "shop.users", Found: 200, Size: 51200, Begin: started},
		{Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Namespace: "shop.carts"},
	}, []vf.Mismatch{
		{Generation: 0, TaskType: vf.TaskVerifyDocuments, ID: 17, Field: "email", Details: "Different", Cluster: "dstClient", Namespace: "shop.users"},
	}, vf.Counts("insert", 120, "update", 30), vf.Counts())
}

// recheckGeneration is the generation of the rechecking verifier.
const recheckGeneration = 3

// seedRecheck writes a verifier rechecking (generation 3) whose verdict generation (2)
// has no mismatch yet: the fault script writes them (recheckMismatches).
func seedRecheck(ctx context.Context, client *mongo.Client, now time.Time) error {
	gen0 := now.Add(-50 * time.Minute)
	f := vf.Fixture{DB: client.Database(verifierRecheckDB), Now: now}
	return writeVerifier(ctx, f, recheckGeneration, []vf.Task{
		{Type: vf.TaskPrimary, Status: vf.StatusCompleted},
		// generation 0: done; orders mismatched by content, users by metadata
		{Type: vf.TaskVerifyCollection, Status: vf.StatusCompleted, Namespace: "shop.orders", Documents: 1000, Size: 512000, Begin: gen0},
		{Type: vf.TaskVerifyCollection, Status: vf.StatusMismatch, Namespace: "shop.users", Documents: 200, Size: 51200, Begin: gen0},
		{Type: vf.TaskVerifyDocuments, Status: vf.StatusFailed, Namespace: "shop.orders", Found: 1000, Size: 512000, Begin: gen0},
		{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Namespace: "shop.users", Found: 200, Size: 51200, Begin: gen0},
		// generations 1 and 2: rechecks, finished
		{Type: vf.TaskProcessRecheckQueue, Status: vf.StatusCompleted, Generation: 1},
		{Type: vf.TaskVerifyDocuments, Status: vf.StatusFailed, Generation: 1, Namespace: "shop.orders", IDs: []int{1, 2, 3}, Documents: 3, Found: 3, Size: 900, SrcTS: now.Add(-20 * time.Minute), DstTS: now.Add(-20 * time.Minute)},
		{Type: vf.TaskProcessRecheckQueue, Status: vf.StatusCompleted, Generation: 2},
		{Type: vf.TaskVerifyDocuments, Status: vf.StatusFailed, Generation: 2, Namespace: "shop.orders", IDs: []int{1, 2, 4, 5}, Documents: 4, Found: 3, Size: 1200, SrcTS: now.Add(-2 * time.Minute), DstTS: now.Add(-3 * time.Minute)},
		{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Generation: 2, Namespace: "shop.users", IDs: []int{9}, Documents: 1, Found: 1, Size: 256, SrcTS: now.Add(-4 * time.Minute)},
		// generation 3: under way
		{Type: vf.TaskProcessRecheckQueue, Status: vf.StatusCompleted, Generation: 3},
		{Type: vf.TaskVerifyDocuments, Status: vf.StatusProcessing, Generation: 3, Namespace: "shop.orders", IDs: []int{1, 2, 4}, Documents: 3, Begin: now.Add(-30 * time.Second)},
		{Type: vf.TaskVerifyDocuments, Status: vf.StatusAdded, Generation: 3, Namespace: "shop.carts", IDs: []int{8, 9}, Documents: 2},
	}, []vf.Mismatch{
		// generation 1: superseded by the recheck of generation 2, never counted
		{Generation: 1, TaskType: vf.TaskVerifyDocuments, ID: 3, Details: "Missing", Cluster: "dstClient", Namespace: "shop.orders"},
	}, vf.Counts("insert", 5000, "update", 1200, "delete", 40), vf.Counts("insert", 4990, "update", 1200))
}

// recheckMismatches are what the recheck of generation 2 found: two documents missing on
// the destination and one that differs.
var recheckMismatches = []vf.Mismatch{
	{Generation: 2, TaskType: vf.TaskVerifyDocuments, ID: 1, Details: "Missing", Cluster: "dstClient", Namespace: "shop.orders"},
	{Generation: 2, TaskType: vf.TaskVerifyDocuments, ID: 2, Details: "Missing", Cluster: "dstClient", Namespace: "shop.orders"},
	{Generation: 2, TaskType: vf.TaskVerifyDocuments, ID: 5, Field: "total", Details: "Different", Cluster: "dstClient", Namespace: "shop.orders"},
}

// startVerifierProgress makes the rechecking verifier compare documents: a finished
// recheck task of its current generation every interval, so its pace and ETA have a
// rate to show. It returns the function that stops it.
func startVerifierProgress(client *mongo.Client, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		f := vf.Fixture{DB: client.Database(verifierRecheckDB), Now: time.Now()}
		for i := 100; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// Errors only leave the pace flat; the dashboards test says which panel lacks data.
			_ = f.Tasks(ctx, vf.Task{Type: vf.TaskVerifyDocuments, Status: vf.StatusCompleted, Generation: recheckGeneration,
				Namespace: "shop.orders", IDs: []int{i, i + 1}, Documents: 2, Found: 2, Size: 512})
		}
	}()
	return func() {
		cancel()
		<-done
	}
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
