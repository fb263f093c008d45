package exporter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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
	return "http://" + startChild(b, cmd, func() { stdin.Close() })
}

// startChild starts cmd, returns the first line it prints (its address), and has stop
// end it when the benchmark ends.
func startChild(b *testing.B, cmd *exec.Cmd, stop func()) string {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stop()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("%s printed no address: %v", cmd.Path, err)
	}
	return strings.TrimSpace(line)
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

// benchLargeEnv, set to 1, adds the 1,000,000-task case to BenchmarkVerifierScrape: it
// takes a few minutes (most of it writing the tasks), too long for every make bench.
const benchLargeEnv = "MONGOSYNC_EXPORTER_BENCH_1M"

// BenchmarkVerifierScrape measures one scrape of a verifier whose metadata holds n
// tasks, against mongotestd run as a process of its own, so that the exporter's CPU
// (exporter-ms/op) and the server's (server-ms/op) are told apart. commands/op and
// docs/op count what the exporter sends and what comes back; matched/op counts the
// documents the queries of one scrape select (a $group reads all it selects, however
// little it returns): what a server reads when an index serves each filter, as the
// verifier's indexes do for these.
//   - check: generation 0, all tasks finished but 1,000 (queued or running);
//   - recheck: generation 2, after a generation 0 of n tasks, 1,000 recheck tasks in
//     each of generations 1 and 2;
//   - cold: the recheck database read by a new scraper each time (an exporter start);
//   - restart: a new scraper with the default 5 s timeout on generation 0 with 15,000
//     tasks unfinished and 15,000 mismatches, scraped until its figures are complete (at
//     most 12 scrapes): scrapes/op is how many it took (0: never), scrape-max-ms and
//     scrape-median-ms their wall times, over-timeout/op those that timed out;
//   - changing: the same with 1,000 tasks unfinished, scraped with the default timeout
//     after the verifier changed it (100 tasks finished, 20 of them failed with 3
//     mismatches each, 100 picked, 100 inserted), by a scraper whose figures were read
//     once without a timeout: one op is one such scrape; over-timeout counts those that
//     timed out, and matched/answered is per scrape that did not.
//
// mongotestd has no query planner: every query scans its collection, so its CPU grows
// with n whatever the query. A real server answers the exporter's steady queries from
// the verifier's indexes ({generation, type, status, documents_count} and _id), so
// matched/op, not server-ms/op, is the figure that carries over to it. Between two
// scrapes of restart and changing, the benchmark waits for mongotestd to be idle: a
// query the exporter gave up on would have ended on a real server (maxTimeMS), and
// scrapes are 15 s apart.
func BenchmarkVerifierScrape(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if os.Getenv(benchLargeEnv) == "1" {
		sizes = append(sizes, 1_000_000)
	}
	server := startMongotestd(b)
	client, err := mongo.Connect(options.Client().ApplyURI(server.uri))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	commands := &commandLog{}
	previous := mongoClientOptions
	mongoClientOptions = func(o *options.ClientOptions) *options.ClientOptions { return o.SetMonitor(commands.monitor()) }
	defer func() { mongoClientOptions = previous }()

	newScraper := func(b *testing.B, database string, timeout time.Duration) *verifierScraper {
		limit, eventTypes := config.DefaultNamespaceLimit, config.DefaultChangeEventTypeLimit
		s, err := newVerifierScraper(&config.Exporter{Verifiers: []config.Verifier{{
			Name: "bench", MongoURI: config.MongoURI{URI: commoncfg.Secret(server.uri)}, Database: database,
			Timeout: timeout, NamespaceLimit: &limit, NamespaceRefresh: config.DefaultNamespaceRefresh, ChangeEventTypeLimit: &eventTypes,
		}}}, Env{Logger: log.NewNopLogger(), OnChange: NewOnChangeLogger(log.NewLogfmtLogger(os.Stderr)), Stats: &scraperStats{}})
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
	for _, n := range sizes {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) { // seeds only what the cases run need
			check, recheck := fmt.Sprintf("bench_vf_%d_check", n), fmt.Sprintf("bench_vf_%d_recheck", n)
			restart, changing := fmt.Sprintf("bench_vf_%d_restart", n), fmt.Sprintf("bench_vf_%d_changing", n)
			var seed *verifierScaleSeed
			seeded := map[string]bool{}
			ensure := func(database string) {
				if seeded[database] {
					return
				}
				seeded[database] = true
				switch database {
				case check:
					seedVerifierBench(b, client.Database(check), n, 0)
				case recheck:
					seedVerifierBench(b, client.Database(recheck), n, 2)
				case restart:
					seedVerifierScale(b, client.Database(restart), n, 15_000, 15_000)
				case changing:
					seed = seedVerifierScale(b, client.Database(changing), n, 1_000, 15_000)
				}
			}
			defer func() {
				for database := range seeded {
					if err := client.Database(database).Drop(context.Background()); err != nil {
						b.Error(err)
					}
				}
			}()
			for _, c := range []struct {
				name, database string
				cold           bool
			}{
				{"check", check, false},
				{"recheck", recheck, false},
				{"cold", recheck, true},
			} {
				b.Run(c.name, func(b *testing.B) {
					ensure(c.database)
					s := newScraper(b, c.database, 10*time.Minute)
					defer func() { s.Close() }()
					scrape(b, s) // fill what a long-running exporter keeps
					commands.mu.Lock()
					beforeCommands := len(commands.names)
					commands.returned = 0
					commands.mu.Unlock()
					exporterBefore, serverBefore := processCPU(os.Getpid()), processCPU(server.pid)
					var excluded time.Duration // CPU of making cold scrapers, not timed
					b.ResetTimer()
					for b.Loop() {
						if c.cold {
							b.StopTimer()
							start := processCPU(os.Getpid())
							s.Close()
							s = newScraper(b, c.database, 10*time.Minute)
							excluded += processCPU(os.Getpid()) - start
							b.StartTimer()
						}
						scrape(b, s)
					}
					b.StopTimer()
					perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
					b.ReportMetric(perOp(processCPU(os.Getpid())-exporterBefore-excluded), "exporter-ms/op")
					b.ReportMetric(perOp(processCPU(server.pid)-serverBefore), "server-ms/op")
					commands.mu.Lock()
					b.ReportMetric(float64(len(commands.names)-beforeCommands)/float64(b.N), "commands/op")
					b.ReportMetric(float64(commands.returned)/float64(b.N), "docs/op")
					last := slices.Clone(commands.commands[len(commands.commands)-(len(commands.commands)-beforeCommands)/b.N:])
					commands.mu.Unlock()
					b.ReportMetric(float64(matched(b, client.Database(c.database), last)), "matched/op")
				})
			}
			scaleOf := func(database string) scaleBench {
				return scaleBench{server: server, commands: commands, db: client.Database(database),
					newScraper: func(b *testing.B) *verifierScraper { return newScraper(b, database, config.DefaultMongoTimeout) }}
			}
			b.Run("restart", func(b *testing.B) { ensure(restart); scaleOf(restart).restart(b) })
			b.Run("changing", func(b *testing.B) { ensure(changing); scaleOf(changing).changing(b, seed) })
		})
	}
}

// scaleBench runs the restart and changing cases of BenchmarkVerifierScrape.
type scaleBench struct {
	server     mongotestd
	commands   *commandLog
	db         *mongo.Database
	newScraper func(b *testing.B) *verifierScraper
}

// scrapeOnce scrapes s, and tells whether its metadata database was read and whether
// its figures were complete (the documents compared among them: absent until the running
// totals are read).
func (sb scaleBench) scrapeOnce(b *testing.B, s *verifierScraper) (up, complete bool, took time.Duration) {
	ch := make(chan prometheus.Metric, 4096)
	start := time.Now()
	if err := s.Scrape(context.Background(), ch); err != nil {
		b.Fatal(err)
	}
	took = time.Since(start)
	close(ch)
	for m := range ch {
		switch desc := m.Desc().String(); {
		case strings.Contains(desc, `"migration_verifier_up"`):
			up = testutil.ToFloat64(constCollector{m}) == 1
		case strings.Contains(desc, `"migration_verifier_documents_compared"`):
			complete = true
		}
	}
	return up, up && complete, took
}

// sent runs f and returns the commands it made the exporter send.
func (sb scaleBench) sent(f func()) []bson.Raw {
	sb.commands.mu.Lock()
	from := len(sb.commands.commands)
	sb.commands.mu.Unlock()
	f()
	sb.commands.mu.Lock()
	defer sb.commands.mu.Unlock()
	return slices.Clone(sb.commands.commands[from:])
}

// waitIdle waits, up to 15 s, for mongotestd to finish what it still does for queries
// the exporter gave up on.
func (sb scaleBench) waitIdle() {
	last := processCPU(sb.server.pid)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		cpu := processCPU(sb.server.pid)
		if cpu == last {
			return
		}
		last = cpu
	}
}

const restartScrapes = 12

func (sb scaleBench) restart(b *testing.B) {
	var durations []time.Duration
	var scrapes, overTimeout int64
	for b.Loop() {
		b.StopTimer()
		s := sb.newScraper(b)
		durations, scrapes, overTimeout = nil, 0, 0
		for i := range restartScrapes {
			sb.waitIdle()
			b.StartTimer()
			up, complete, took := sb.scrapeOnce(b, s)
			b.StopTimer()
			durations = append(durations, took)
			if !up || took > config.DefaultMongoTimeout {
				overTimeout++
			}
			if complete {
				scrapes = int64(i + 1)
				break
			}
		}
		s.Close()
		b.StartTimer() // b.Loop expects it running
	}
	slices.Sort(durations)
	b.ReportMetric(float64(scrapes), "scrapes/op")
	b.ReportMetric(float64(overTimeout), "over-timeout/op")
	b.ReportMetric(float64(durations[len(durations)-1].Microseconds())/1000, "scrape-max-ms")
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "scrape-median-ms")
}

func (sb scaleBench) changing(b *testing.B, seed *verifierScaleSeed) {
	s := sb.newScraper(b)
	defer func() { s.Close() }()
	// What a long-running exporter holds: read with all the time it takes.
	s.targets[0].Timeout = 10 * time.Minute
	if _, complete, _ := sb.scrapeOnce(b, s); !complete {
		b.Fatal("the figures are not complete")
	}
	s.targets[0].Timeout = config.DefaultMongoTimeout
	var durations []time.Duration
	var overTimeout, commands, matchedDocs int64
	var exporterCPU, serverCPU time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		seed.change(b, sb.db)
		sb.waitIdle()
		exporterBefore, serverBefore := processCPU(os.Getpid()), processCPU(sb.server.pid)
		var up bool
		var took time.Duration
		b.StartTimer()
		sent := sb.sent(func() { up, _, took = sb.scrapeOnce(b, s) })
		b.StopTimer()
		exporterCPU += processCPU(os.Getpid()) - exporterBefore
		serverCPU += processCPU(sb.server.pid) - serverBefore
		durations = append(durations, took)
		commands += int64(len(sent))
		if !up || took > config.DefaultMongoTimeout {
			overTimeout++
		} else { // what a scrape that gave up selected would take mongotestd minutes to count
			matchedDocs += matched(b, sb.db, sent)
		}
		b.StartTimer()
	}
	slices.Sort(durations)
	perOp := func(v float64) float64 { return v / float64(b.N) }
	b.ReportMetric(perOp(float64(exporterCPU.Microseconds())/1000), "exporter-ms/op")
	b.ReportMetric(perOp(float64(serverCPU.Microseconds())/1000), "server-ms/op")
	b.ReportMetric(perOp(float64(commands)), "commands/op")
	if answered := int64(b.N) - overTimeout; answered > 0 {
		b.ReportMetric(float64(matchedDocs)/float64(answered), "matched/answered")
	}
	b.ReportMetric(float64(overTimeout), "over-timeout")
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "scrape-median-ms")
}

// matched counts the documents the queries among commands select: the $match of an
// aggregation (at most its $limit), the filter of a find (one document when it sorts on
// an index and takes one), the query of a count (none without one: the server answers
// from the collection's metadata).
func matched(b *testing.B, db *mongo.Database, commands []bson.Raw) int64 {
	var total int64
	for _, cmd := range commands {
		elements, _ := cmd.Elements()
		if len(elements) == 0 {
			continue
		}
		name := elements[0].Key()
		collection, ok := elements[0].Value().StringValueOK()
		if !ok {
			continue
		}
		var filter any = bson.D{}
		limit := int64(-1) // a $limit after the selection: the server reads no more
		switch name {
		case "aggregate":
			stages, _ := cmd.Lookup("pipeline").Array().Values()
			if match, ok := stages[0].Document().Lookup("$match").DocumentOK(); ok {
				filter = match
			}
			for _, stage := range stages[1:] { // the $sort and $limit right after it
				if n, ok := stage.Document().Lookup("$limit").AsInt64OK(); ok {
					limit = n
				} else if _, sorts := stage.Document().Lookup("$sort").DocumentOK(); !sorts {
					break
				}
			}
		case "find":
			if f, ok := cmd.Lookup("filter").DocumentOK(); ok {
				filter = f
			}
			if sort, ok := cmd.Lookup("sort").DocumentOK(); ok {
				if key := sort.Index(0).Key(); key == "srctimestamp" || key == "dsttimestamp" || key == "_id" {
					total++
					continue
				}
			}
		case "count":
			query, ok := cmd.Lookup("query").DocumentOK()
			if !ok { // the collection's size, from its metadata
				continue
			}
			filter = query
		default:
			continue
		}
		n, err := db.Collection(collection).CountDocuments(b.Context(), filter)
		if err != nil {
			b.Fatal(err)
		}
		if limit >= 0 {
			n = min(n, limit)
		}
		total += n
	}
	return total
}

// seedVerifierBench writes a verifier's metadata: n generation-0 verifyDocuments tasks
// over 1,000 namespaces, all finished but 1,000 when generation is 0; with generation 2,
// 1,000 finished recheck tasks in each of generations 1 and 2. The tasks were inserted
// an hour ago (their _ids say so): a steady state, not a burst of new tasks.
func seedVerifierBench(b *testing.B, db *mongo.Database, n int, generation int32) {
	ctx := b.Context()
	var counter uint64
	id := func() bson.ObjectID {
		oid := bson.NewObjectIDFromTimestamp(time.Now().Add(-time.Hour))
		counter++
		binary.BigEndian.PutUint64(oid[4:], counter)
		return oid
	}
	if _, err := db.Collection("generation").InsertOne(ctx, bson.D{{Key: "generation", Value: generation}, {Key: "metadataversion", Value: int32(7)}}); err != nil {
		b.Fatal(err)
	}
	tasks := db.Collection("verification_tasks")
	batch := make([]any, 0, 10_000)
	flush := func() {
		if len(batch) > 0 {
			if _, err := tasks.InsertMany(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	add := func(doc bson.D) {
		batch = append(batch, doc)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	add(bson.D{{Key: "_id", Value: id()}, {Key: "type", Value: taskPrimary}, {Key: "status", Value: statusCompleted}})
	for i := range n {
		status := statusCompleted
		if generation == 0 && i%(n/1000) == 0 {
			status = statusAdded
		}
		add(bson.D{
			{Key: "_id", Value: id()}, {Key: "type", Value: taskVerifyDocuments}, {Key: "status", Value: status}, {Key: "generation", Value: int32(0)},
			{Key: "query_filter", Value: bson.D{{Key: "namespace", Value: fmt.Sprintf("db%d.coll%d", i%1000/100, i%1000)}}},
			{Key: "documents_count", Value: int64(0)}, {Key: "found_source_documents_count", Value: int64(1000)},
			{Key: "source_bytes_count", Value: int64(1 << 20)}, {Key: "begin_time", Value: bson.NewDateTimeFromTime(fixtureTime)},
		})
	}
	for g := int32(1); g <= generation; g++ {
		for i := range 1000 {
			add(bson.D{
				{Key: "_id", Value: id()}, {Key: "type", Value: taskVerifyDocuments}, {Key: "status", Value: statusCompleted}, {Key: "generation", Value: g},
				{Key: "query_filter", Value: bson.D{{Key: "namespace", Value: fmt.Sprintf("db%d.coll%d", i/100, i)}}},
				{Key: "documents_count", Value: int64(3)}, {Key: "found_source_documents_count", Value: int64(3)},
				{Key: "source_bytes_count", Value: int64(3000)}, {Key: "srctimestamp", Value: bson.Timestamp{T: uint32(fixtureTime.Unix()), I: uint32(i)}},
			})
		}
	}
	flush()
}

// verifierScaleSeed is the unfinished tasks of a database seedVerifierScale wrote, for
// change to move on as a verifier would.
type verifierScaleSeed struct {
	added, processing []bson.ObjectID
	round             int
}

// seedVerifierScale writes a verifier's metadata in generation 0: n verifyDocuments
// tasks over 1,000 namespaces (and their 1,000 verifyCollection tasks), of which
// `unfinished` are added or (one in ten) processing, and `mismatches` mismatches, three
// per failed task. The tasks were inserted an hour ago.
func seedVerifierScale(b *testing.B, db *mongo.Database, n, unfinished, mismatches int) *verifierScaleSeed {
	ctx := b.Context()
	hourAgo := time.Now().Add(-time.Hour)
	var counter uint64
	id := func() bson.ObjectID {
		oid := bson.NewObjectIDFromTimestamp(hourAgo)
		counter++
		binary.BigEndian.PutUint64(oid[4:], counter)
		return oid
	}
	if _, err := db.Collection("generation").InsertOne(ctx, bson.D{{Key: "generation", Value: int32(0)}, {Key: "metadataversion", Value: int32(7)}}); err != nil {
		b.Fatal(err)
	}
	seed := &verifierScaleSeed{}
	var tasks, found []any
	tasks = append(tasks, bson.D{{Key: "_id", Value: id()}, {Key: "type", Value: taskPrimary}, {Key: "status", Value: statusCompleted}})
	namespace := func(i int) string { return fmt.Sprintf("db%d.coll%d", i%1000/100, i%1000) }
	for i := range 1000 {
		tasks = append(tasks, bson.D{{Key: "_id", Value: id()}, {Key: "type", Value: taskVerifyCollection}, {Key: "status", Value: statusCompleted},
			{Key: "generation", Value: int32(0)}, {Key: "query_filter", Value: bson.D{{Key: "namespace", Value: namespace(i)}}},
			{Key: "documents_count", Value: int64(n)}, {Key: "source_bytes_count", Value: int64(n) << 20}})
	}
	failed := mismatches / 3
	for i := range n {
		taskID, status := id(), statusCompleted
		doc := bson.D{{Key: "_id", Value: taskID}, {Key: "type", Value: taskVerifyDocuments}, {Key: "generation", Value: int32(0)},
			{Key: "query_filter", Value: bson.D{{Key: "namespace", Value: namespace(i)}}}, {Key: "documents_count", Value: int64(0)}}
		switch {
		case i*unfinished/n != (i+1)*unfinished/n && (len(seed.added)+len(seed.processing))%10 == 9:
			status = statusProcessing
			seed.processing = append(seed.processing, taskID)
			doc = append(doc, bson.E{Key: "begin_time", Value: bson.NewDateTimeFromTime(time.Now())})
		case i*unfinished/n != (i+1)*unfinished/n:
			status = statusAdded
			seed.added = append(seed.added, taskID)
		case i*failed/n != (i+1)*failed/n:
			status = statusFailed
			found = append(found, benchMismatches(taskID, namespace(i), 3, hourAgo)...)
		}
		if status == statusCompleted || status == statusFailed {
			doc = append(doc, bson.E{Key: "found_source_documents_count", Value: int64(1000)}, bson.E{Key: "source_bytes_count", Value: int64(1 << 20)},
				bson.E{Key: "begin_time", Value: bson.NewDateTimeFromTime(hourAgo)})
		}
		tasks = append(tasks, append(doc, bson.E{Key: "status", Value: status}))
	}
	for _, docs := range []struct {
		collection string
		docs       []any
	}{{"verification_tasks", tasks}, {"mismatches", found}} {
		for start := 0; start < len(docs.docs); start += 10_000 {
			if _, err := db.Collection(docs.collection).InsertMany(ctx, docs.docs[start:min(start+10_000, len(docs.docs))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	return seed
}

// benchMismatches makes the mismatch documents a verifyDocuments task of generation 0
// records at a time: missing on the destination, extra on it, or differing in content.
func benchMismatches(taskID bson.ObjectID, namespace string, n int, at time.Time) []any {
	var out []any
	for i := range n {
		id := bson.NewObjectID()
		binary.BigEndian.PutUint32(id[:4], uint32(at.Unix()))
		details, field, cluster := []string{"Missing", "Missing", "Different"}[i%3], []string{"", "", "total"}[i%3], []string{"dstClient", "srcClient", "dstClient"}[i%3]
		out = append(out, bson.D{{Key: "_id", Value: id}, {Key: "generation", Value: int32(0)}, {Key: "taskType", Value: taskVerifyDocuments},
			{Key: "taskID", Value: taskID}, {Key: "detail", Value: bson.D{{Key: "id", Value: i}, {Key: "field", Value: field}, {Key: "details", Value: details},
				{Key: "namespace", Value: namespace}, {Key: "cluster", Value: cluster}}}})
	}
	return out
}

// change does what a verifier does between two scrapes: 100 processing tasks finish (20
// of them failed, with 3 mismatches each), 100 added ones are picked, 100 are inserted.
func (seed *verifierScaleSeed) change(b *testing.B, db *mongo.Database) {
	ctx := b.Context()
	tasks := db.Collection("verification_tasks")
	seed.round++
	done := seed.processing[:min(100, len(seed.processing))]
	seed.processing = seed.processing[len(done):]
	var found []any
	var failed, completed bson.A
	for i, taskID := range done {
		if i < 20 {
			failed = append(failed, taskID)
			found = append(found, benchMismatches(taskID, "db0.coll0", 3, time.Now())...)
		} else {
			completed = append(completed, taskID)
		}
	}
	if len(found) > 0 {
		if _, err := db.Collection("mismatches").InsertMany(ctx, found); err != nil {
			b.Fatal(err)
		}
	}
	for status, ids := range map[string]bson.A{statusFailed: failed, statusCompleted: completed} {
		if _, err := tasks.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, bson.D{{Key: "$set", Value: bson.D{
			{Key: "status", Value: status}, {Key: "found_source_documents_count", Value: int64(1000)}, {Key: "source_bytes_count", Value: int64(1 << 20)}}}}); err != nil {
			b.Fatal(err)
		}
	}
	picked := seed.added[:min(100, len(seed.added))]
	seed.added = seed.added[len(picked):]
	seed.processing = append(seed.processing, picked...)
	if _, err := tasks.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: picked}}}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "status", Value: statusProcessing}, {Key: "begin_time", Value: bson.NewDateTimeFromTime(time.Now())}}}}); err != nil {
		b.Fatal(err)
	}
	var inserted []any
	for i := range 100 {
		taskID := bson.NewObjectID()
		seed.added = append(seed.added, taskID)
		inserted = append(inserted, bson.D{{Key: "_id", Value: taskID}, {Key: "type", Value: taskVerifyDocuments}, {Key: "status", Value: statusAdded},
			{Key: "generation", Value: int32(0)}, {Key: "query_filter", Value: bson.D{{Key: "namespace", Value: fmt.Sprintf("db0.coll%d", i)}}}, {Key: "documents_count", Value: int64(0)}})
	}
	if _, err := tasks.InsertMany(ctx, inserted); err != nil {
		b.Fatal(err)
	}
}

// mongotestd is the test server run as a process of its own.
type mongotestd struct {
	uri string
	pid int
}

// startMongotestd builds and starts mongotestd; it stops with the benchmark.
func startMongotestd(b *testing.B) mongotestd {
	binary := filepath.Join(b.TempDir(), "mongotestd")
	build := exec.Command("go", "build", "-o", binary, "../internal/mongotest/cmd/mongotestd")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatalf("building mongotestd: %v", err)
	}
	cmd := exec.Command(binary)
	uri := startChild(b, cmd, func() { _ = cmd.Process.Signal(os.Interrupt) })
	return mongotestd{uri: uri, pid: cmd.Process.Pid}
}

// processCPU is the user and system CPU time a process has used so far, from
// /proc/<pid>/stat (in clock ticks of 10 ms).
func processCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
