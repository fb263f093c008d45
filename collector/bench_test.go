package collector

// Benchmarks of the capture against a mongotestd process (the test MongoDB server, run
// apart so that its CPU and memory are not counted as the collector's), all in one run:
//
//	limit/read     the driver reading a change stream of N events: the read limit
//	limit/insert   the driver inserting N store documents in unordered batches of 1000
//	collector      this collector capturing N events (read, convert, write, save tokens)
//	old-design     the old Python tool's loop in Go: batches of 100, read then write in
//	               turn, one insert and one token update per batch
//
// Each reports events/s and the benchmark process's CPU time per event.
// BenchmarkBacklogMemory builds a backlog of 1,000,000 events while the store is
// unavailable and reports the peak heap.

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
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
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

func benchClient(b *testing.B, uri string) *mongo.Client {
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client
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

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU time a process has used, from /proc (Linux; clock ticks of
// 10 ms): it shows how much of the machine the mongotestd servers take.
func processCPU(p *os.Process) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	var utime, stime int64
	fmt.Sscan(fields[11], &utime) // fields 14 and 15 of stat, counted after the command
	fmt.Sscan(fields[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// servers is the CPU used so far by the mongotestd processes of a benchmark.
type servers []*os.Process

func (s servers) cpu() time.Duration {
	var total time.Duration
	for _, p := range s {
		total += processCPU(p)
	}
	return total
}

var benchServers servers

func report(b *testing.B, events int, elapsed, cpu time.Duration) {
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(events), "cpu-µs/event")
}

// measure runs f and reports its rate, the benchmark process's CPU per event and the
// servers' CPU per event.
func measure(b *testing.B, events int, f func()) {
	began, cpu, serverCPU := time.Now(), cpuTime(), benchServers.cpu()
	f()
	report(b, events, time.Since(began), cpuTime()-cpu)
	b.ReportMetric(float64((benchServers.cpu()-serverCPU).Microseconds())/float64(events), "server-cpu-µs/event")
}

func BenchmarkCapture(b *testing.B) {
	const n = 50_000
	// The source and the store are two servers, as in production: reading and writing
	// can then overlap.
	uri, srcProc := mongotestdProcess(b, "--history", "1000000")
	storeURI, storeProc := mongotestdProcess(b)
	benchServers = servers{srcProc, storeProc}
	client := benchClient(b, uri)
	storeClient := benchClient(b, storeURI)
	run := 0
	// fresh writes n events to a new database and returns it with a resume token from
	// just before them.
	fresh := func() (string, bson.Raw) {
		run++
		db := fmt.Sprintf("bench%d", run)
		before := positionBefore(b, client, db)
		writeEvents(b, client, db, n)
		return db, before
	}

	b.Run("limit/read", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			db, start := fresh()
			b.StartTimer()
			measure(b, n, func() {
				cs, err := client.Database(db).Watch(context.Background(), mongo.Pipeline{},
					options.ChangeStream().SetResumeAfter(start).SetBatchSize(1000))
				if err != nil {
					b.Fatal(err)
				}
				for seen := 0; seen < n && cs.Next(context.Background()); {
					if cs.Current.Lookup("operationType").StringValue() == "insert" {
						seen++
					}
				}
				_ = cs.Close(context.Background())
			})
		}
	})

	b.Run("limit/insert", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			db, before := fresh()
			docs := storeDocuments(b, client, db, before, n) // what the collector writes
			coll := storeClient.Database("limit_" + db).Collection("oplogs_" + db)
			b.StartTimer()
			measure(b, n, func() {
				for start := 0; start < len(docs); start += 1000 {
					if _, err := coll.InsertMany(context.Background(), docs[start:min(start+1000, len(docs))], options.InsertMany().SetOrdered(false)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})

	b.Run("collector", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			db, before := fresh()
			cfg := benchConfig(b, uri, storeURI, db, before)
			b.StartTimer()
			reg := prometheus.NewRegistry()
			m := NewManager(reg, log.NewNopLogger())
			measure(b, n, func() {
				if err := m.Apply(cfg); err != nil {
					b.Fatal(err)
				}
				waitStored(b, reg, db, n)
			})
			m.Stop()
		}
	})

	b.Run("old-design", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			db, start := fresh()
			b.StartTimer()
			measure(b, n, func() { oldDesign(b, client, storeClient, db, start, n) })
		}
	})
}

// benchConfig configures a source capturing db into its own store, with a saved
// position before db's events, as a collector that was stopped while they were written.
func benchConfig(b *testing.B, uri, storeURI, db string, before bson.Raw) *config.Config {
	text := fmt.Sprintf("collector:\n  store: {uri: %q, database: store_%s}\n  sources:\n    - {name: %s, uri: %q, database: %s}\n", storeURI, db, db, uri, db)
	cfg, err := config.Parse([]byte(text), "bench.yml")
	if err != nil {
		b.Fatal(err)
	}
	store := newSourceStore(benchClient(b, storeURI).Database("store_"+db), db)
	if err := store.saveToken(context.Background(), item{token: before}); err != nil {
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

// waitStored waits until the collector reports n inserts persisted. It asks the
// collector's metrics, not the store: counting in the store would scan it while the
// collector writes, and slow what is measured.
func waitStored(b *testing.B, reg *prometheus.Registry, source string, n int) {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		v := 0.0
		families, _ := reg.Gather()
		for _, f := range families {
			if f.GetName() == "oplog_capture_events_total" {
				for _, m := range f.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "op_type" && l.GetValue() == "insert" {
							v = m.GetCounter().GetValue()
						}
					}
				}
			}
		}
		if v >= float64(n) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %v of %d events stored", v, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// storeDocuments reads db's change stream from before and converts the events as the
// collector does.
func storeDocuments(b *testing.B, client *mongo.Client, db string, before bson.Raw, n int) []any {
	cs, err := client.Database(db).Watch(context.Background(), mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(before))
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close(context.Background())
	var docs []any
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

// oldDesign is the old collector's loop: read up to 100 events (or 1 s), insert them in
// one call, save the last token, then read again: reading and writing take turns.
func oldDesign(b *testing.B, client, storeClient *mongo.Client, db string, start bson.Raw, n int) {
	cs, err := client.Database(db).Watch(context.Background(), mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(start))
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close(context.Background())
	store := storeClient.Database("old_" + db)
	events, tokens := store.Collection("oplogs_"+db), store.Collection("resume_tokens_for_"+db)
	var split splitState
	for seen := 0; seen < n; {
		batch := make([]any, 0, 100)
		var last bson.Raw
		for len(batch) < 100 && cs.Next(context.Background()) {
			it, err := toItem(db, cs.Current, time.Now(), &split)
			if err != nil {
				b.Fatal(err)
			}
			batch = append(batch, it.doc)
			last = it.token
			if it.opType == "insert" {
				seen++
			}
			if seen == n {
				break
			}
		}
		if _, err := events.InsertMany(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		if _, err := tokens.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: "resume_token_" + db}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "token", Value: last}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBacklogMemory: the store stops answering (its process is paused with
// SIGSTOP) while 1,000,000 events are written to the source. The collector's heap must
// stay flat, bounded by its buffer, whatever the backlog: the rest waits in the source's
// change history. Reports the peak heap in use, sampled every 50 ms.
func BenchmarkBacklogMemory(b *testing.B) {
	const backlog = 1_000_000
	srcURI, _ := mongotestdProcess(b, "--history", "2000000")
	storeURI, storeProc := mongotestdProcess(b)
	src := benchClient(b, srcURI)
	for b.Loop() {
		text := fmt.Sprintf("collector:\n  store: {uri: %q}\n  buffer: {max_events: 20000, max_bytes: 16777216}\n  sources:\n    - {name: backlog, uri: %q, database: backlog}\n", storeURI, srcURI)
		cfg, err := config.Parse([]byte(text), "bench.yml")
		if err != nil {
			b.Fatal(err)
		}
		m := NewManager(prometheus.NewRegistry(), log.NewNopLogger())
		if err := m.Apply(cfg); err != nil {
			b.Fatal(err)
		}
		waitRunning(b, m, "backlog")
		if err := storeProc.Signal(syscall.SIGSTOP); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		// The heap's peak in each quarter of the backlog: flat means bounded.
		var mu sync.Mutex
		peak := base.HeapInuse
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			var ms runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				runtime.ReadMemStats(&ms)
				mu.Lock()
				peak = max(peak, ms.HeapInuse)
				mu.Unlock()
			}
		}()
		for quarter := range 4 {
			writeEventsFrom(b, src, "backlog", quarter*backlog/4, backlog/4)
			mu.Lock()
			b.ReportMetric(float64(peak)/(1<<20), fmt.Sprintf("peak-heap-MiB-at-%dk", (quarter+1)*backlog/4000))
			peak = 0
			mu.Unlock()
		}
		close(stop)
		<-sampled
		_ = storeProc.Signal(syscall.SIGCONT)
		b.ReportMetric(float64(base.HeapInuse)/(1<<20), "start-heap-MiB")
		m.Stop()
	}
}

func waitRunning(b *testing.B, m *Manager, name string) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, s := range m.Status() {
			if s.Name == name && s.State == stateRunning {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("%s never ran", name)
}
