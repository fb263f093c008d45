package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/singleflight"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/logging"
)

func selfDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, []string{"collector"}, nil)
}

var (
	collectorSuccessDesc = selfDesc("collector_success",
		"Whether the scraper finished within the scrape deadline (1) or not (0). Unreachable targets do not count: see their own _up metrics.")
	collectorDurationDesc = selfDesc("collector_duration_seconds", "How long the scraper took in this scrape.")
	labelsReplacedDesc    = selfDesc("label_values_replaced_total",
		"Label values taken from a source that were not valid UTF-8 (invalid bytes replaced by U+FFFD) or longer than 256 bytes (cut).")
	panicsDesc = selfDesc("target_panics_total",
		"Reads of a target that ended in an internal error (a panic, logged with its stack): the target's series were dropped and its _up set to 0. Please report them.")
)

// Exporter holds the scrapers built from the current config and serves scrapes.
type Exporter struct {
	enabled       map[string]bool
	timeoutOffset time.Duration
	logger        log.Logger
	onChange      *OnChangeLogger
	stats         map[string]*scraperStats
	scrapers      []namedScraper // replaced whole by ApplyConfig
	mu            sync.RWMutex   // guards scrapers
	flight        singleflight.Group
}

type namedScraper struct {
	name string
	Scraper
}

// New returns an Exporter running the scrapers whose names are true in enabled.
// timeoutOffset is taken off Prometheus' scrape timeout to leave time for the reply.
func New(enabled map[string]bool, timeoutOffset time.Duration, logger log.Logger) *Exporter {
	e := &Exporter{enabled: enabled, timeoutOffset: timeoutOffset, logger: logger, onChange: NewOnChangeLogger(logger), stats: map[string]*scraperStats{}}
	for _, r := range Registrations() {
		e.stats[r.Name] = &scraperStats{}
	}
	return e
}

// ApplyConfig builds the enabled scrapers from cfg and puts them in force for the next
// scrape. When any fails to build, nothing changes and the error says which and why.
func (e *Exporter) ApplyConfig(cfg *config.Config) error {
	var built []namedScraper
	var errs []error
	for _, r := range Registrations() {
		if !e.enabled[r.Name] {
			continue
		}
		s, err := r.New(&cfg.Exporter, Env{Logger: log.With(e.logger, "collector", r.Name), OnChange: e.onChange, Stats: e.stats[r.Name]})
		if err != nil {
			errs = append(errs, fmt.Errorf("collector %s: %w", r.Name, err))
			continue
		}
		built = append(built, namedScraper{name: r.Name, Scraper: s})
	}
	if err := errors.Join(errs...); err != nil {
		closeScrapers(built)
		return err
	}
	e.mu.Lock()
	old := e.scrapers
	e.scrapers = built
	e.mu.Unlock()
	closeScrapers(old)
	return nil
}

// closer is a scraper holding connections (a MongoDB client) to release when a reload
// replaces it.
type closer interface{ Close() }

func closeScrapers(scrapers []namedScraper) {
	for _, s := range scrapers {
		if c, ok := s.Scraper.(closer); ok {
			c.Close()
		}
	}
}

// Handler serves /metrics: the metrics of base (the process, build info, reload state)
// followed by a scrape of every enabled scraper, bounded by the scrape deadline.
//
// Concurrent requests share one scrape in flight: ten Prometheus servers scraping at
// once cost the mongosyncs and databases one read each, not ten. At most maxRequests
// requests are served at once (0: no limit); the others get 503 at once, as
// node_exporter's --web.max-requests does.
func (e *Exporter) Handler(base prometheus.Gatherer, maxRequests int) http.Handler {
	opts := promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logging.Slog(e.logger).Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}
	var inFlight chan struct{}
	if maxRequests > 0 {
		inFlight = make(chan struct{}, maxRequests)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inFlight != nil {
			select {
			case inFlight <- struct{}{}:
				defer func() { <-inFlight }()
			default:
				http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", maxRequests), http.StatusServiceUnavailable)
				return
			}
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(collected(e.collect(r)))
		promhttp.HandlerFor(prometheus.Gatherers{base, reg}, opts).ServeHTTP(w, r)
	})
}

// collected is a scrape's metrics, gathered again for each request that shares it.
type collected []prometheus.Metric

func (c collected) Describe(chan<- *prometheus.Desc) {} // unchecked: the scrapers decide what exists

func (c collected) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}

// collect returns the metrics of the scrape in flight, or of a new one. The scrape keeps
// the deadline of the request that started it, but not its cancellation: a Prometheus
// that gives up does not fail the others waiting on the same scrape.
func (e *Exporter) collect(r *http.Request) []prometheus.Metric {
	ctx, cancel := e.scrapeContext(r)
	defer cancel()
	deadline, bounded := ctx.Deadline()
	result := e.flight.DoChan("scrape", func() (any, error) {
		scrapeCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		if bounded {
			scrapeCtx, cancel = context.WithDeadline(context.WithoutCancel(ctx), deadline)
		}
		defer cancel()
		e.mu.RLock()
		s := &scrape{ctx: scrapeCtx, scrapers: e.scrapers, onChange: e.onChange, stats: e.stats}
		e.mu.RUnlock()
		return s.run(), nil
	})
	select {
	case res := <-result:
		return res.Val.([]prometheus.Metric)
	case <-r.Context().Done(): // the client went away
		return nil
	}
}

// scrapeContext ends at Prometheus' scrape timeout (X-Prometheus-Scrape-Timeout-Seconds)
// less the offset; without the header, only each target's own timeout bounds the scrape.
func (e *Exporter) scrapeContext(r *http.Request) (context.Context, context.CancelFunc) {
	header := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")
	if header == "" {
		return context.WithCancel(r.Context())
	}
	seconds, err := strconv.ParseFloat(header, 64)
	if err != nil || seconds <= 0 {
		level.Warn(e.logger).Log("msg", "Ignoring an invalid X-Prometheus-Scrape-Timeout-Seconds header", "value", truncate(header))
		return context.WithCancel(r.Context())
	}
	timeout := time.Duration(seconds * float64(time.Second))
	if timeout > e.timeoutOffset {
		timeout -= e.timeoutOffset
	}
	return context.WithTimeout(r.Context(), timeout)
}

// scrape is one scrape: it runs every scraper at once.
type scrape struct {
	ctx      context.Context
	scrapers []namedScraper
	onChange *OnChangeLogger
	stats    map[string]*scraperStats
}

// run collects the scrape into a slice, to share among the requests waiting on it.
func (s *scrape) run() []prometheus.Metric {
	ch := make(chan prometheus.Metric, 256)
	var metrics []prometheus.Metric
	done := make(chan struct{})
	go func() {
		for m := range ch {
			metrics = append(metrics, m)
		}
		close(done)
	}()
	s.collect(ch)
	close(ch)
	<-done
	return metrics
}

// collect sends the series of every scraper, then the exporter's own about them.
func (s *scrape) collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	for _, sc := range s.scrapers {
		wg.Go(func() {
			start := time.Now()
			err := guard(func() error { return sc.Scrape(s.ctx, ch) })
			ch <- prometheus.MustNewConstMetric(collectorDurationDesc, prometheus.GaugeValue, time.Since(start).Seconds(), sc.name)
			ch <- prometheus.MustNewConstMetric(collectorSuccessDesc, prometheus.GaugeValue, boolValue(err == nil), sc.name)
			s.onChange.Failure("collector/"+sc.name, err, "collector", sc.name)
		})
	}
	wg.Wait()
	for _, sc := range s.scrapers {
		stats := s.stats[sc.name]
		ch <- prometheus.MustNewConstMetric(labelsReplacedDesc, prometheus.CounterValue, float64(stats.labelsReplaced.Load()), sc.name)
		ch <- prometheus.MustNewConstMetric(panicsDesc, prometheus.CounterValue, float64(stats.panics.Load()), sc.name)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
