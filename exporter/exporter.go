package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/logging"
)

var (
	collectorSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "collector", "success"),
		"Whether the scraper finished within the scrape deadline (1) or not (0). Unreachable targets do not count: see their own _up metrics.",
		[]string{"collector"}, nil)
	collectorDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "collector", "duration_seconds"),
		"How long the scraper took in this scrape.",
		[]string{"collector"}, nil)
)

// Exporter holds the scrapers built from the current config and serves scrapes.
type Exporter struct {
	enabled       map[string]bool
	timeoutOffset time.Duration
	logger        log.Logger
	changes       *ChangeLog
	scrapers      atomic.Pointer[[]namedScraper] // swapped whole by ApplyConfig
}

type namedScraper struct {
	name string
	Scraper
}

// New returns an Exporter running the scrapers whose names are true in enabled.
// timeoutOffset is taken off Prometheus' scrape timeout to leave time for the reply.
func New(enabled map[string]bool, timeoutOffset time.Duration, logger log.Logger) *Exporter {
	e := &Exporter{enabled: enabled, timeoutOffset: timeoutOffset, logger: logger, changes: NewChangeLog(logger)}
	e.scrapers.Store(&[]namedScraper{})
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
		s, err := r.New(&cfg.Exporter, Env{Logger: log.With(e.logger, "collector", r.Name), Changes: e.changes})
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
	closeScrapers(*e.scrapers.Swap(&built))
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
// followed by a fresh scrape of every enabled scraper, bounded by the scrape deadline.
func (e *Exporter) Handler(base prometheus.Gatherer) http.Handler {
	opts := promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logging.Slog(e.logger).Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := e.scrapeContext(r)
		defer cancel()
		reg := prometheus.NewRegistry()
		reg.MustRegister(&scrape{ctx: ctx, scrapers: *e.scrapers.Load(), changes: e.changes})
		promhttp.HandlerFor(prometheus.Gatherers{base, reg}, opts).ServeHTTP(w, r)
	})
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
		level.Warn(e.logger).Log("msg", "Ignoring an invalid X-Prometheus-Scrape-Timeout-Seconds header", "value", header)
		return context.WithCancel(r.Context())
	}
	timeout := time.Duration(seconds * float64(time.Second))
	if timeout > e.timeoutOffset {
		timeout -= e.timeoutOffset
	}
	return context.WithTimeout(r.Context(), timeout)
}

// scrape is the prometheus.Collector of one scrape: it runs every scraper at once.
type scrape struct {
	ctx      context.Context
	scrapers []namedScraper
	changes  *ChangeLog
}

func (s *scrape) Describe(ch chan<- *prometheus.Desc) {
	ch <- collectorSuccessDesc
	ch <- collectorDurationDesc
	for _, sc := range s.scrapers {
		sc.Describe(ch)
	}
}

func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	for _, sc := range s.scrapers {
		wg.Go(func() {
			start := time.Now()
			err := sc.Scrape(s.ctx, ch)
			ch <- prometheus.MustNewConstMetric(collectorDurationDesc, prometheus.GaugeValue, time.Since(start).Seconds(), sc.name)
			ch <- prometheus.MustNewConstMetric(collectorSuccessDesc, prometheus.GaugeValue, boolValue(err == nil), sc.name)
			s.changes.Failure("collector/"+sc.name, err, "collector", sc.name)
		})
	}
	wg.Wait()
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
