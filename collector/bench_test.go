package collector

// Benchmarks of the capture against two mongotestd processes, a source and a store (the
// test MongoDB server, run apart so that its CPU and memory are not counted as the
// collector's; fresh ones for each sub-benchmark), all in one run:
//
//	limit/read     the driver reading a change stream of N events: the read limit
//	limit/insert   the driver inserting N store documents in unordered batches of 1000,
//	               with the insert command, into a collection with the store's indexes
//	               (limit/insert-many: with InsertMany)
//	limit/read+insert  both at once, each on its own: the limit when the servers share
//	               the machine's cores with the client, as they do here
//	collector      this collector capturing N events (read, convert, write, save tokens)
//	               of a source that goes on writing
//	old-design     the old collector's loop in Go: batches of 100, read then write in
//	               turn, one insert and one token update per batch
//
// Each reports events/s, the benchmark process's CPU time per event and each server's.
// They run twice: own-cpu gives the source, the store and the client each a share of the
// CPU of their own, as on separate hosts in production (the collector is held to 90% of
// the slower raw limit there); shared-cpu lets all three compete for the machine's cores,
// where the collector, reading and writing at once, pays for both servers.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// mongotestdProcess builds and starts the test server as its own process.
func mongotestdProcess(b *testing.B, args ...string) (uri string, proc *os.Process) {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "mongotestd")
	if out, err := exec.Command("go", "build", "-o", bin, "../internal/mongotest/cmd/mongotestd").CombinedOutput(); err != nil {
		b.Fatalf("building mongotestd: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	return strings.TrimSpace(line), cmd.Process
}

// writeEvents inserts n small documents into db.c in batches and returns the cluster
// time just before them, for a change stream to start from.
func writeEvents(b *testing.B, client *mongo.Client, db string, n int) bson.Timestamp {
	return writeEventsFrom(b, client, db, 0, n)
}

func writeEventsFrom(b *testing.B, client *mongo.Client, db string, from, n int) bson.Timestamp {
	var hello struct {
		OperationTime bson.Timestamp `bson:"operationTime"`
	}
	if err := client.Database("admin").RunCommand(context.Background(), bson.D{{Key: "ping", Value: 1}}).Decode(&hello); err != nil {
		b.Fatal(err)
	}
	coll := client.Database(db).Collection("c")
	batch := make([]any, 0, 1000)
	for i := from; i < from+n; i++ {
		batch = append(batch, bson.D{{Key: "_id", Value: i}, {Key: "name", Value: "customer"}, {Key: "amount", Value: float64(i)}, {Key: "tags", Value: bson.A{"a", "b"}}})
		if len(batch) == cap(batch) || i == from+n-1 {
			if _, err := coll.InsertMany(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return hello.OperationTime
}

// benchServers are the mongotestd processes of BenchmarkCapture, whose CPU per event
// measure reports apart: the source's and the store's.
var benchServers struct{ source, store *os.Process }

// measure runs f and reports its rate, the benchmark process's CPU per event and the
// servers' CPU per event. f may call started(k) once, when the first k events are done:
// the figures then cover the rest, and the time until then is reported as start-ms. A
// collector's start (connections, the lease, the saved position, opening the stream)
// would otherwise weigh on a drain of 50,000 events as it never does on a real backlog.
func measure(b *testing.B, events int, f func(started func(k int))) {
	runtime.GC() // the setup's garbage is not f's to collect
	type sample struct {
		at                       time.Time
		cpu, sourceCPU, storeCPU time.Duration
	}
	now := func() sample {
		return sample{time.Now(), testsupport.OwnCPU(), testsupport.ProcessCPU(benchServers.source.Pid), testsupport.ProcessCPU(benchServers.store.Pid)}
	}
	from := now()
	began := from.at
	f(func(k int) {
		from, events = now(), events-k
		b.ReportMetric(float64(from.at.Sub(began).Microseconds())/1000, "start-ms")
	})
	to := now()
	perEvent := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(events) }
	b.ReportMetric(float64(events)/to.at.Sub(from.at).Seconds(), "events/s")
	b.ReportMetric(perEvent(to.cpu-from.cpu), "cpu-µs/event")
	b.ReportMetric(perEvent(to.sourceCPU-from.sourceCPU), "source-cpu-µs/event")
	b.ReportMetric(perEvent(to.storeCPU-from.storeCPU), "store-cpu-µs/event")
}

// captureBench is one sub-benchmark's pair of servers, the source and the store, fresh
// for each: a server holding what earlier sub-benchmarks wrote would spend more on
// garbage collection, and slow whatever runs last.
type captureBench struct {
	b                   *testing.B
	n                   int
	uri, storeURI       string
	client, storeClient *mongo.Client
	run                 int
}

// newCaptureBench starts the two servers, as in production: reading and writing can
// then overlap. With ownCPU, the source, the store and this process (the client) each
// get their own share of the machine's CPU: 30%, 30% and 40%, as if each ran on its own
// host; the sub-benchmark is skipped where that cannot be done.
func newCaptureBench(b *testing.B, n int, ownCPU bool) *captureBench {
	uri, srcProc := mongotestdProcess(b, "--history", "1000000")
	storeURI, storeProc := mongotestdProcess(b)
	benchServers.source, benchServers.store = srcProc, storeProc
	if ownCPU {
		cores := float64(runtime.NumCPU())
		for _, share := range []struct {
			role     string
			fraction float64
			pid      int
		}{{"source", 0.3, srcProc.Pid}, {"store", 0.3, storeProc.Pid}, {"client", 0.4, os.Getpid()}} {
			q, err := newCPUQuota(b, fmt.Sprintf("mongomigrate-bench-%d-%s", os.Getpid(), share.role), share.fraction*cores)
			if err == nil {
				err = q.add(share.pid)
			}
			if err != nil {
				b.Skipf("needs a CPU quota per process (root and the cgroup cpu controller) to give each server its own share of the machine: %v", err)
			}
		}
	}
	return &captureBench{b: b, n: n, uri: uri, storeURI: storeURI, client: testsupport.Connect(b, uri), storeClient: testsupport.Connect(b, storeURI)}
}

// fresh writes n events to a new database and returns it with a resume token from just
// before them.
func (c *captureBench) fresh() (string, bson.Raw) {
	c.run++
	db := fmt.Sprintf("bench%d", c.run)
	before := positionBefore(c.b, c.client, db)
	writeEvents(c.b, c.client, db, c.n)
	return db, before
}

// readAll reads db's change stream from start until n inserts came.
func (c *captureBench) readAll(db string, start bson.Raw) {
	cs, err := c.client.Database(db).Watch(context.Background(), mongo.Pipeline{},
		options.ChangeStream().SetResumeAfter(start).SetBatchSize(1000))
	if err != nil {
		c.b.Fatal(err)
	}
	for seen := 0; seen < c.n && cs.Next(context.Background()); {
		if cs.Current.Lookup("operationType").StringValue() == "insert" {
			seen++
		}
	}
	_ = cs.Close(context.Background())
}

// limitStore makes the collection the raw insert limits write db's documents to, with
// the indexes the collector gives its store, which each insert maintains: without them
// the limit would be that of another, cheaper collection.
func (c *captureBench) limitStore(db string) *mongo.Collection {
	store := newSourceStore(c.storeClient.Database("limit_"+db), db)
	if err := store.createIndexes(context.Background(), 0); err != nil {
		c.b.Fatal(err)
	}
	return store.events
}

// insertAll inserts docs into target in batches of 1000 with the insert command, the
// fastest way the driver has: documents already in BSON, unordered, as the collector
// sends them.
func (c *captureBench) insertAll(target *mongo.Collection, docs []bson.Raw) {
	for start := 0; start < len(docs); start += 1000 {
		if err := target.Database().RunCommand(context.Background(), bson.Raw(appendInsertCommand(nil, target.Name(), docs[start:min(start+1000, len(docs))]))).Err(); err != nil {
			c.b.Fatal(err)
		}
	}
}

// loop runs the benchmark: at each iteration setup prepares with the timer stopped,
// then what it returns is measured, then done (when not nil) cleans up.
func (c *captureBench) loop(setup func() (measured func(started func(k int)), done func())) {
	for c.b.Loop() {
		c.b.StopTimer()
		measured, done := setup()
		c.b.StartTimer()
		measure(c.b, c.n, measured)
		if done != nil {
			done()
		}
	}
}

func BenchmarkCapture(b *testing.B) {
	// own-cpu: the servers and the client each have their own share of the CPU, as on
	// their own hosts in production: the collector is held to the slower raw limit there.
	// shared-cpu: all compete for the machine's cores.
	b.Run("own-cpu", func(b *testing.B) { benchmarkCapture(b, true) })
	b.Run("shared-cpu", func(b *testing.B) { benchmarkCapture(b, false) })
}

func benchmarkCapture(b *testing.B, ownCPU bool) {
	const n = 50_000

	b.Run("limit/read", func(b *testing.B) {
		c := newCaptureBench(b, n, ownCPU)
		c.loop(func() (func(func(int)), func()) {
			db, start := c.fresh()
			return func(func(int)) { c.readAll(db, start) }, nil
		})
	})

	b.Run("limit/insert", func(b *testing.B) {
		c := newCaptureBench(b, n, ownCPU)
		c.loop(func() (func(func(int)), func()) {
			db, before := c.fresh()
			docs := storeDocuments(b, c.client, db, before, n) // what the collector writes
			target := c.limitStore(db)
			return func(func(int)) { c.insertAll(target, docs) }, nil
		})
	})

	// The same documents through InsertMany, which decodes each one again to find its
	// _id: the rate most tools get, for reference.
	b.Run("limit/insert-many", func(b *testing.B) {
		c := newCaptureBench(b, n, ownCPU)
		c.loop(func() (func(func(int)), func()) {
			db, before := c.fresh()
			docs := storeDocuments(b, c.client, db, before, n)
			coll := c.limitStore(db)
			return func(func(int)) {
				for start := 0; start < len(docs); start += 1000 {
					if _, err := coll.InsertMany(context.Background(), docs[start:min(start+1000, len(docs))], options.InsertMany().SetOrdered(false)); err != nil {
						b.Fatal(err)
					}
				}
			}, nil
		})
	})

	// Both raw loops at once, independent of each other: what this machine allows when
	// the source and the store server share its cores with the reader and the writer,
	// as they do for the collector here (in production they are other machines).
	b.Run("limit/read+insert", func(b *testing.B) {
		c := newCaptureBench(b, n, ownCPU)
		c.loop(func() (func(func(int)), func()) {
			readDB, start := c.fresh()
			insertDB, before := c.fresh()
			docs := storeDocuments(b, c.client, insertDB, before, n)
			target := c.limitStore(insertDB)
			return func(func(int)) {
				var both sync.WaitGroup
				both.Go(func() { c.readAll(readDB, start) })
				both.Go(func() { c.insertAll(target, docs) })
				both.Wait()
			}, nil
		})
	})

	b.Run("collector", func(b *testing.B) {
		c := newCaptureBench(b, n, ownCPU)
		c.loop(func() (func(func(int)), func()) {
			db, before := c.fresh()
			cfg := benchConfig(b, c.uri, c.storeURI, db, before)
			m := NewManager(prometheus.NewRegistry(), log.NewNopLogger(), testOptions())
			return func(started func(int)) {
				if err := m.Apply(cfg); err != nil {
					b.Fatal(err)
				}
				started(waitStored(b, m, db, 1))
				waitStored(b, m, db, n)
				b.ReportMetric(float64(n)/testutil.ToFloat64(m.metrics.batches.WithLabelValues(db)), "events/batch")
			}, func() { stopManager(m) }
		})
	})

	b.Run("old-design", func(b *testing.B) {
		c := newCaptureBench(b, n, ownCPU)
		c.loop(func() (func(func(int)), func()) {
			db, start := c.fresh()
			return func(func(int)) {
				oldDesign(context.Background(), b, c.client, c.storeClient, db, start, n, new(atomic.Int64))
			}, nil
		})
	})
}

// benchConfig configures a source capturing db into its own store, with a saved
// position before db's events, as a collector that was stopped while they were written.
func benchConfig(b testing.TB, uri, storeURI, db string, before bson.Raw) *config.Config {
	text := fmt.Sprintf("collector:\n  store: {uri: %q, database: store_%s}\n  sources:\n    - {name: %s, uri: %q, database: %s}\n", storeURI, db, db, uri, db)
	cfg, err := config.ForCollector.Parse([]byte(text), "bench.yml")
	if err != nil {
		b.Fatal(err)
	}
	tokens := testsupport.Connect(b, storeURI).Database("store_" + db).Collection(oplogstore.TokensCollection(db))
	if _, err := tokens.InsertOne(context.Background(), bson.D{{Key: "_id", Value: oplogstore.TokenID(db)}, {Key: oplogstore.TokenFieldToken, Value: before}}); err != nil {
		b.Fatal(err)
	}
	return cfg
}

// positionBefore returns a resume token for db as of now.
func positionBefore(b *testing.B, client *mongo.Client, db string) bson.Raw {
	cs, err := client.Database(db).Watch(context.Background(), mongo.Pipeline{})
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close(context.Background())
	return append(bson.Raw(nil), cs.ResumeToken()...)
}

// waitStored waits until the collector reports at least n inserts persisted, and returns
// how many. It reads the collector's counter, not the store: counting in the store would
// scan it while the collector writes, and slow what is measured.
func waitStored(b *testing.B, m *Manager, source string, n int) int {
	stored := m.metrics.events.WithLabelValues(source, "insert")
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if got := int(testutil.ToFloat64(stored)); got >= n {
			return got
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %v of %d events stored", testutil.ToFloat64(stored), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// storeDocuments reads db's change stream from before and converts the events as the
// collector does.
func storeDocuments(b *testing.B, client *mongo.Client, db string, before bson.Raw, n int) []bson.Raw {
	cs, err := client.Database(db).Watch(context.Background(), mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(before))
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close(context.Background())
	var docs []bson.Raw
	var split splitState
	for inserts := 0; inserts < n && cs.Next(context.Background()); {
		it, err := toItem(db, cs.Current, time.Now(), &split)
		if err != nil {
			b.Fatal(err)
		}
		docs = append(docs, it.doc)
		if it.opType == "insert" {
			inserts++
		}
	}
	return docs
}
