package exporter

import (
	"context"
	"fmt"
	"os"
	"slices"
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

	for _, n := range sizes {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) { // seeds only what the cases run need
			check, recheck := fmt.Sprintf("bench_vf_%d_check", n), fmt.Sprintf("bench_vf_%d_recheck", n)
			restart, changing := fmt.Sprintf("bench_vf_%d_restart", n), fmt.Sprintf("bench_vf_%d_changing", n)
			var seed *verifierScaleSeed
			seeded := map[string]bool{}
			seeding := func(database string, timeout time.Duration) scaleBench {
				if !seeded[database] {
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
				return scaleBench{server: server, commands: commands, db: client.Database(database), timeout: timeout}
			}
			defer func() {
				for database := range seeded {
					if err := client.Database(database).Drop(context.Background()); err != nil {
						b.Error(err)
					}
				}
			}()
			b.Run("check", func(b *testing.B) { seeding(check, 10*time.Minute).steady(b, false) })
			b.Run("recheck", func(b *testing.B) { seeding(recheck, 10*time.Minute).steady(b, false) })
			b.Run("cold", func(b *testing.B) { seeding(recheck, 10*time.Minute).steady(b, true) })
			b.Run("restart", func(b *testing.B) { seeding(restart, config.DefaultMongoTimeout).restart(b) })
			b.Run("changing", func(b *testing.B) { seeding(changing, config.DefaultMongoTimeout).changing(b, seed) })
		})
	}
}

// scaleBench is one case of BenchmarkVerifierScrape: a metadata database in mongotestd,
// read by scrapers with the timeout given.
type scaleBench struct {
	server   mongotestd
	commands *commandLog
	db       *mongo.Database
	timeout  time.Duration
}

// newScraper makes a scraper of the verifier, as a starting exporter does.
func (sb scaleBench) newScraper(b *testing.B) *verifierScraper {
	limit, eventTypes := config.DefaultNamespaceLimit, config.DefaultChangeEventTypeLimit
	s, err := newVerifierScraper(&config.Exporter{Verifiers: []config.Verifier{{
		Name: "bench", MongoURI: config.MongoURI{URI: commoncfg.Secret(sb.server.uri)}, Database: sb.db.Name(),
		Timeout: sb.timeout, NamespaceLimit: &limit, NamespaceRefresh: config.DefaultNamespaceRefresh, ChangeEventTypeLimit: &eventTypes,
	}}}, Env{Logger: log.NewNopLogger(), OnChange: NewOnChangeLogger(log.NewLogfmtLogger(os.Stderr)), Stats: &scraperStats{}})
	if err != nil {
		b.Fatal(err)
	}
	return s.(*verifierScraper)
}

// steady measures the scrapes of one scraper after its first (check, recheck), or of a
// new scraper each time (cold).
func (sb scaleBench) steady(b *testing.B, cold bool) {
	s := sb.newScraper(b)
	defer func() { s.Close() }()
	sb.mustScrape(b, s) // fill what a long-running exporter keeps
	sb.commands.mu.Lock()
	beforeCommands := len(sb.commands.names)
	sb.commands.returned = 0
	sb.commands.mu.Unlock()
	exporterBefore, serverBefore := processCPU(os.Getpid()), processCPU(sb.server.pid)
	var excluded time.Duration // CPU of making cold scrapers, not timed
	b.ResetTimer()
	for b.Loop() {
		if cold {
			b.StopTimer()
			start := processCPU(os.Getpid())
			s.Close()
			s = sb.newScraper(b)
			excluded += processCPU(os.Getpid()) - start
			b.StartTimer()
		}
		sb.mustScrape(b, s)
	}
	b.StopTimer()
	perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(perOp(processCPU(os.Getpid())-exporterBefore-excluded), "exporter-ms/op")
	b.ReportMetric(perOp(processCPU(sb.server.pid)-serverBefore), "server-ms/op")
	sb.commands.mu.Lock()
	b.ReportMetric(float64(len(sb.commands.names)-beforeCommands)/float64(b.N), "commands/op")
	b.ReportMetric(float64(sb.commands.returned)/float64(b.N), "docs/op")
	last := slices.Clone(sb.commands.commands[len(sb.commands.commands)-(len(sb.commands.commands)-beforeCommands)/b.N:])
	sb.commands.mu.Unlock()
	b.ReportMetric(float64(matched(b, sb.db, last)), "matched/op")
}

// mustScrape scrapes s, which must read its metadata database.
func (sb scaleBench) mustScrape(b *testing.B, s *verifierScraper) {
	if up, _, _ := sb.scrapeOnce(b, s); !up {
		b.Fatal("migration_verifier_up is 0")
	}
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
