package exporter

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	commoncfg "github.com/prometheus/common/config"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongotest"
)

// standInProcessEnv, when set to a delay such as "100ms", turns the test binary into a
// mongosync stand-in process: benchmarks run it apart so that its allocations are not
// counted as the exporter's.
const standInProcessEnv = "MONGOSYNC_EXPORTER_STANDIN_DELAY"

func TestMain(m *testing.M) {
	if delay := os.Getenv(standInProcessEnv); delay != "" {
		if err := runStandInProcess(delay); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runStandInProcess answers every .../api/v1/progress with v1.22-full.json after delay,
// prints its address, and exits when its standard input closes.
func runStandInProcess(delay string) error {
	wait, err := time.ParseDuration(delay)
	if err != nil {
		return err
	}
	body, err := os.ReadFile(filepath.Join("testdata", "mongosync", "v1.22-full.json"))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(l.Addr().String())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	return http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(wait)
		w.Write(body)
	}))
}

func startStandInProcess(b *testing.B, delay time.Duration) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), standInProcessEnv+"="+delay.String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("stand-in process gave no address: %v", err)
	}
	return "http://" + strings.TrimSpace(addr)
}

// BenchmarkScrape measures one whole scrape (HTTP handler to exposition text) of n
// mongosync instances that each answer after a delay. Instances are read concurrently,
// so 50 instances answering after 100 ms take about 100 ms, not 5 s.
// allocs/op counts the exporter's process only: the stand-in runs apart.
func BenchmarkScrape(b *testing.B) {
	for _, delay := range []time.Duration{0, 100 * time.Millisecond} {
		base := startStandInProcess(b, delay)
		for _, n := range []int{1, 10, 50} {
			b.Run(fmt.Sprintf("targets=%d/reply_after=%s", n, delay), func(b *testing.B) {
				var targets []config.Mongosync
				for i := range n {
					targets = append(targets, config.Mongosync{
						Migration: "bench", Name: fmt.Sprintf("shard%d", i),
						URL: fmt.Sprintf("%s/shard%d", base, i), Timeout: 10 * time.Second,
					})
				}
				e := New(map[string]bool{"mongosync": true}, 0, log.NewNopLogger())
				if err := e.ApplyConfig(&config.Config{Exporter: config.Exporter{Mongosync: targets}}); err != nil {
					b.Fatal(err)
				}
				h := e.Handler(prometheus.NewRegistry(), 0)
				scrapeOnce := func() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
					if want := fmt.Sprintf(`mongosync_up{migration="bench",mongosync="shard%d"} 1`, n-1); !strings.Contains(rec.Body.String(), want) {
						b.Fatalf("scrape lacks %s", want)
					}
				}
				scrapeOnce() // open the keep-alive connections outside the timing
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					scrapeOnce()
				}
			})
		}
	}
}

// BenchmarkParseAndEmit is the per-instance work once the reply is in: parse the JSON and
// build the const metrics.
func BenchmarkParseAndEmit(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "mongosync", "v1.22-full.json"))
	if err != nil {
		b.Fatal(err)
	}
	stats := &scraperStats{}
	b.ReportAllocs()
	for b.Loop() {
		p, _, err := parseProgress(body)
		if err != nil {
			b.Fatal(err)
		}
		emitProgress(emitter{out: newBatch(stats), labels: []string{"bench", "shard0"}}, p)
	}
}

// BenchmarkVerifierScrape measures one scrape of a verifier whose metadata holds 100,000
// tasks across 1,000 namespaces, in internal/mongotest (an in-process server: the figures
// bound the exporter's own cost and count its queries; a real mongod answers these
// index-backed queries differently). commands/op counts what the exporter sends.
//   - initial-check: generation 0 under way, every scrape sums its 100,000 tasks.
//   - recheck: generation 2; generation 0's totals and the namespace scan are cached.
//   - cold: a new scraper each time, nothing cached.
func BenchmarkVerifierScrape(b *testing.B) {
	uri := mongotest.URI(b)
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	for _, gen := range []int32{0, 2} {
		db := client.Database(fmt.Sprintf("bench_verifier_gen%d", gen))
		if _, err := db.Collection("generation").InsertOne(b.Context(), bson.D{{Key: "generation", Value: gen}, {Key: "metadataversion", Value: int32(7)}}); err != nil {
			b.Fatal(err)
		}
		batch := make([]any, 0, 10_000)
		for i := range 100_000 {
			status := statusCompleted
			if gen == 0 && i%10 == 0 {
				status = statusAdded
			}
			batch = append(batch, bson.D{
				{Key: "type", Value: taskVerifyDocuments}, {Key: "status", Value: status}, {Key: "generation", Value: int32(0)},
				{Key: "query_filter", Value: bson.D{{Key: "namespace", Value: fmt.Sprintf("db%d.coll%d", i%1000/100, i%1000)}}},
				{Key: "documents_count", Value: int64(0)}, {Key: "found_source_documents_count", Value: int64(1000)},
				{Key: "source_bytes_count", Value: int64(1 << 20)}, {Key: "begin_time", Value: bson.NewDateTimeFromTime(fixtureTime)},
			})
			if len(batch) == cap(batch) {
				if _, err := db.Collection("verification_tasks").InsertMany(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		if gen == 2 {
			recheck := make([]any, 0, 2000)
			for g := int32(1); g <= 2; g++ {
				for i := range 1000 {
					recheck = append(recheck, bson.D{
						{Key: "type", Value: taskVerifyDocuments}, {Key: "status", Value: statusCompleted}, {Key: "generation", Value: g},
						{Key: "query_filter", Value: bson.D{{Key: "namespace", Value: fmt.Sprintf("db%d.coll%d", i/100, i)}}},
						{Key: "documents_count", Value: int64(3)}, {Key: "found_source_documents_count", Value: int64(3)},
						{Key: "source_bytes_count", Value: int64(3000)}, {Key: "srctimestamp", Value: bson.Timestamp{T: uint32(fixtureTime.Unix()), I: uint32(i)}},
					})
				}
			}
			if _, err := db.Collection("verification_tasks").InsertMany(b.Context(), recheck); err != nil {
				b.Fatal(err)
			}
		}
	}
	commands := &commandLog{}
	previous := mongoClientOptions
	mongoClientOptions = func(o *options.ClientOptions) *options.ClientOptions { return o.SetMonitor(commands.monitor()) }
	defer func() { mongoClientOptions = previous }()

	newScraper := func(b *testing.B, database string) *verifierScraper {
		limit, eventTypes := config.DefaultNamespaceLimit, config.DefaultChangeEventTypeLimit
		s, err := newVerifierScraper(&config.Exporter{Verifiers: []config.Verifier{{
			Name: "bench", MongoURI: config.MongoURI{URI: commoncfg.Secret(uri)}, Database: database,
			Timeout: time.Minute, NamespaceLimit: &limit, NamespaceRefresh: time.Hour, ChangeEventTypeLimit: &eventTypes,
		}}}, Env{Logger: log.NewNopLogger(), Changes: NewChangeLog(log.NewNopLogger()), Stats: &scraperStats{}})
		if err != nil {
			b.Fatal(err)
		}
		return s.(*verifierScraper)
	}
	scrape := func(b *testing.B, s *verifierScraper) {
		ch := make(chan prometheus.Metric, 4096)
		if err := s.Scrape(b.Context(), ch); err != nil {
			b.Fatal(err)
		}
		close(ch)
		for m := range ch {
			if strings.Contains(m.Desc().String(), `"migration_verifier_up"`) && testutil.ToFloat64(constCollector{m}) != 1 {
				b.Fatal("migration_verifier_up is 0")
			}
		}
	}
	for _, c := range []struct {
		name, database string
		cold           bool
	}{
		{"initial-check", "bench_verifier_gen0", false},
		{"recheck", "bench_verifier_gen2", false},
		{"cold", "bench_verifier_gen2", true},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := newScraper(b, c.database)
			defer s.Close()
			scrape(b, s) // fill the caches a long-running exporter has
			before := commands.total()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if c.cold {
					b.StopTimer()
					s.Close()
					s = newScraper(b, c.database)
					b.StartTimer()
				}
				scrape(b, s)
			}
			b.ReportMetric(float64(commands.total()-before)/float64(b.N), "commands/op")
		})
	}
}
