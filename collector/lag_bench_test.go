package collector

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/testsupport"
)

// lagRun is how long each offered rate is kept up.
const lagRun = 3 * time.Second

// BenchmarkCaptureLag: how far the store is behind the source while the source is
// written at a fixed rate, and what that costs, for this collector and the old tool's
// loop (100 events or 1 s per batch), at 200, 2,000 and 20,000 inserts/s, in one run
// (fresh servers for each). Per event, the lag is the store's commit time (the wallTime
// of the store's own change event) less the source's (the event's wallTime, stored as
// wall_time), both from the test servers on this machine's clock. The capture runs in
// a process of its own (this test binary again, TestCaptureProcess), so that its CPU
// time per event is measured apart from the load and the measuring. Reports p50 and p99
// lag, the rate actually offered, the capture's CPU per event and its store writes
// (batches) per second; for the collector, the median age of its checkpoint gauge,
// sampled at random while the load is offered.
func BenchmarkCaptureLag(b *testing.B) {
	for _, design := range []string{"collector", "old-design"} {
		for _, rate := range []int{200, 2000, 20000} {
			b.Run(fmt.Sprintf("%s/%d-per-s", design, rate), func(b *testing.B) { benchmarkLag(b, design, rate) })
		}
	}
}

func benchmarkLag(b *testing.B, design string, rate int) {
	c := newCaptureBench(b, 0, false)
	for b.Loop() {
		db, before := c.fresh()
		storeDB := "old_" + db
		if design == "collector" {
			storeDB = "store_" + db
		}
		stored, err := c.storeClient.Database(storeDB).Collection("oplogs_"+db).Watch(context.Background(), mongo.Pipeline{})
		if err != nil {
			b.Fatal(err)
		}
		capture := startCaptureProcess(b, captureJob{Design: design, SourceURI: c.uri, StoreURI: c.storeURI, DB: db, Before: hex.EncodeToString(before)})
		began := capture.measure()
		start := time.Now()
		ages := capture.sampleCheckpoint()
		offered := offer(b, c.client, db, rate)
		elapsed := time.Since(start)
		checkpointAges := ages()
		lags := storeLags(b, stored, db+".offered", offered)
		ended := capture.measure()
		took := time.Since(start)
		capture.stop()
		_ = stored.Close(context.Background())
		slices.Sort(lags)
		b.ReportMetric(float64(offered)/elapsed.Seconds(), "offered-per-s")
		b.ReportMetric(percentile(lags, 0.50), "p50-lag-ms")
		b.ReportMetric(percentile(lags, 0.99), "p99-lag-ms")
		b.ReportMetric(float64((ended.cpu-began.cpu).Microseconds())/float64(offered), "cpu-µs/event")
		b.ReportMetric(float64(ended.batches-began.batches)/took.Seconds(), "batches-per-s")
		if design == "collector" {
			slices.Sort(checkpointAges)
			b.ReportMetric(percentile(checkpointAges, 0.50), "checkpoint-age-p50-ms")
		}
	}
}

// captureJob is what TestCaptureProcess captures, handed over in captureJobEnv as JSON.
type captureJob struct {
	Design              string // collector or old-design
	SourceURI, StoreURI string
	DB                  string // the database captured; the source is named after it
	Before              string // hex of the resume token the capture starts after
}

const captureJobEnv = "COLLECTOR_BENCH_CAPTURE_JOB"

// captureProcess is a capture running in a process of its own.
type captureProcess struct {
	b     *testing.B
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines *bufio.Scanner
}

// captureFigures are what the capture process has done so far.
type captureFigures struct {
	cpu     time.Duration // its CPU time, user and system
	batches int64         // the store writes it made: transactions, or the old loop's batches
	// checkpoint is the collector's oplog_capture_checkpoint_timestamp_seconds (0 for
	// the old loop), and at when the answer came.
	checkpoint float64
	at         time.Time
}

// sampleCheckpoint asks the capture process for its figures every 50 to 150 ms, at
// random, as scrapes fall at any moment of a capture that writes in rhythm (the old
// loop is asked as well, so that both pay for the asking), until the returned function
// is called, which returns how old the checkpoint was at each answer, in ms: what
// time() - oplog_capture_checkpoint_timestamp_seconds reads at a scrape, to compare
// with the lag measured per event.
func (p *captureProcess) sampleCheckpoint() (stop func() []float64) {
	done := make(chan struct{})
	ages := make(chan []float64)
	go func() {
		var out []float64
		for {
			select {
			case <-done:
				ages <- out
				return
			case <-time.After(50*time.Millisecond + rand.N(100*time.Millisecond)):
			}
			if f := p.measure(); f.checkpoint > 0 {
				out = append(out, float64(f.at.UnixMicro())/1000-f.checkpoint*1000)
			}
		}
	}()
	return func() []float64 { close(done); return <-ages }
}

// startCaptureProcess starts the test binary again as TestCaptureProcess, and waits
// until its capture reads the stream.
func startCaptureProcess(b *testing.B, job captureJob) *captureProcess {
	spec, err := json.Marshal(job)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCaptureProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), captureJobEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	p := &captureProcess{b: b, cmd: cmd}
	if p.in, err = cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p.lines = bufio.NewScanner(out)
	p.reply()
	return p
}

// reply reads the capture process's next answer, skipping what the test framework
// prints.
func (p *captureProcess) reply() string {
	for p.lines.Scan() {
		if answer, ok := strings.CutPrefix(p.lines.Text(), captureReply); ok {
			return answer
		}
	}
	p.b.Fatalf("the capture process ended without answering: %v", p.lines.Err())
	return ""
}

// measure asks the capture process for its figures.
func (p *captureProcess) measure() captureFigures {
	if _, err := io.WriteString(p.in, "measure\n"); err != nil {
		p.b.Fatal(err)
	}
	var f captureFigures
	var cpu int64
	if _, err := fmt.Sscan(p.reply(), &cpu, &f.batches, &f.checkpoint); err != nil {
		p.b.Fatal(err)
	}
	f.cpu, f.at = time.Duration(cpu), time.Now()
	return f
}

// stop ends the capture process and waits for it.
func (p *captureProcess) stop() {
	_ = p.in.Close()
	if err := p.cmd.Wait(); err != nil {
		p.b.Fatalf("capture process: %v", err)
	}
}

// captureReply starts each line of the capture process's answers.
const captureReply = "capture-process: "

// TestCaptureProcess is the capturing process of BenchmarkCaptureLag, which starts it
// with the servers and the job in captureJobEnv. It says when it reads the stream, then
// answers each line "measure" on its standard input with its CPU time (ns), store
// writes and checkpoint so far, and stops at the end of its input.
func TestCaptureProcess(t *testing.T) {
	spec := os.Getenv(captureJobEnv)
	if spec == "" {
		t.Skip("the capturing process of BenchmarkCaptureLag: it needs the servers that benchmark starts, and is run by it")
	}
	var job captureJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		t.Fatal(err)
	}
	before, err := hex.DecodeString(job.Before)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	var batches func() int64
	checkpoint := func() float64 { return 0 }
	done := make(chan struct{})
	switch job.Design {
	case "collector":
		m := NewManager(prometheus.NewRegistry(), log.NewNopLogger(), testOptions())
		if err := m.Apply(benchConfig(t, job.SourceURI, job.StoreURI, job.DB, before)); err != nil {
			t.Fatal(err)
		}
		waitRunning(t, m, job.DB)
		batches = func() int64 { return int64(testutil.ToFloat64(m.metrics.batches.WithLabelValues(job.DB))) }
		checkpoint = func() float64 { return testutil.ToFloat64(m.metrics.checkpoint.WithLabelValues(job.DB)) }
		go func() { <-ctx.Done(); stopManager(m); close(done) }()
	case "old-design":
		var n atomic.Int64
		batches = n.Load
		go func() {
			oldDesign(ctx, t, testsupport.Connect(t, job.SourceURI), testsupport.Connect(t, job.StoreURI), job.DB, before, 0, &n)
			close(done)
		}()
	default:
		t.Fatalf("unknown design %q", job.Design)
	}
	fmt.Println(captureReply + "ready")
	for in := bufio.NewScanner(os.Stdin); in.Scan(); {
		fmt.Printf("%s%d %d %.3f\n", captureReply, testsupport.OwnCPU().Nanoseconds(), batches(), checkpoint())
	}
	stop()
	<-done
}

// offer inserts into db at rate documents per second for lagRun, in a write every 10 ms,
// and returns how many it inserted.
func offer(b *testing.B, client *mongo.Client, db string, rate int) int {
	target := client.Database(db).Collection("offered")
	perTick := max(1, rate/100)
	tick := time.Second * time.Duration(perTick) / time.Duration(rate)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	n := 0
	for deadline := time.Now().Add(lagRun); time.Now().Before(deadline); <-ticker.C {
		docs := make([]any, perTick)
		for i := range docs {
			docs[i] = bson.D{{Key: "_id", Value: n + i}}
		}
		if _, err := target.InsertMany(context.Background(), docs); err != nil {
			b.Fatal(err)
		}
		n += perTick
	}
	return n
}

// storeLags reads the store's change stream until n inserts into ns were stored, and
// returns each one's lag in ms.
func storeLags(b *testing.B, stored *mongo.ChangeStream, ns string, n int) []float64 {
	lags := make([]float64, 0, n)
	deadline := time.Now().Add(5 * time.Minute) // against hanging only
	for len(lags) < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d offered events stored", len(lags), n)
		}
		if !stored.TryNext(context.Background()) {
			if err := stored.Err(); err != nil {
				b.Fatal(err)
			}
			continue
		}
		doc := stored.Current.Lookup("fullDocument").Document()
		if doc.Lookup("op_type").StringValue() != "insert" || doc.Lookup("ns").StringValue() != ns {
			continue
		}
		source, ok := doc.Lookup("wall_time").DateTimeOK()
		commit, ok2 := stored.Current.Lookup("wallTime").DateTimeOK()
		if ok && ok2 {
			lags = append(lags, float64(commit-source))
		}
	}
	return lags
}

// percentile of sorted values, nearest rank.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}
