package collector

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"

	hbdoc "github.com/mongomigrate/observability/internal/heartbeat"
)

// States of a source, as written to the heartbeat document's collector_status.status
// (the values of package heartbeat, the old collector's and this one's additions) and
// exported as the oplog_capture_state state-set.
const (
	stateStarting            = hbdoc.StatusStarting
	stateRunning             = hbdoc.StatusRunning
	stateRetryingConnection  = hbdoc.StatusRetryingConnection
	stateError               = hbdoc.StatusError
	stateResumeTokenLost     = hbdoc.StatusResumeTokenLost
	stateStopping            = hbdoc.StatusStopping
	stateStopped             = hbdoc.StatusStopped
	stateResettingOplogStore = hbdoc.StatusResettingOplogStore
	// Another instance holds the source's lease; a store write has gone unacknowledged
	// for longer than store_stall_after.
	stateStandby          = hbdoc.StatusStandby
	stateStoreUnavailable = hbdoc.StatusStoreUnavailable
	// A process that holds no lease writes into the source's store (foreign.go).
	stateForeignWriter = hbdoc.StatusForeignWriter
)

// states are those this collector takes: the state-set's series.
var states = []string{
	stateStarting, stateRunning, stateRetryingConnection, stateError,
	stateResumeTokenLost, stateStopping, stateStopped, stateResettingOplogStore,
	stateStandby, stateStoreUnavailable, stateForeignWriter,
}

// metrics are the collector's own series (docs/metrics.md, "oplog_collector's own
// metrics"). A daemon updates them as it works; they are not read at scrape time.
type metrics struct {
	state          *prometheus.GaugeVec
	events         *prometheus.CounterVec
	bytes          *prometheus.CounterVec
	batches        *prometheus.CounterVec
	batchWrite     *prometheus.HistogramVec
	lastEvent      *prometheus.GaugeVec
	checkpoint     *prometheus.GaugeVec
	storeOldest    *prometheus.GaugeVec
	retention      *prometheus.GaugeVec
	bufferEvents   *prometheus.GaugeVec
	bufferCapacity *prometheus.GaugeVec
	writePending   *prometheus.GaugeVec
	retries        *prometheus.CounterVec
	errors         *prometheus.CounterVec
	foreign        *prometheus.CounterVec
	// What a restore can reach (recoverable.go).
	gaps, openGaps, recoverableSince *prometheus.GaugeVec
	// How far back the source's oplog reaches (headroom.go).
	sourceOplogOldest *prometheus.GaugeVec
	lag               *lagCollector
}

// Reasons of oplog_capture_retries_total and kinds of oplog_capture_errors_total.
const (
	retrySource = "source"
	retryStore  = "store"

	errSourceRead      = "source_read"
	errStoreWrite      = "store_write"
	errTokenSave       = "token_save"
	errHeartbeat       = "heartbeat"
	errResumeTokenLost = "resume_token_lost"
	errIdentity        = "source_identity" // the source is not the cluster the store's history comes from
	errLease           = "lease"           // the lease could not be read, taken or renewed, or the store refused a write: it moved on
)

func newMetrics(reg prometheus.Registerer) *metrics {
	src := []string{"source_cluster"}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "oplog_capture", Name: name, Help: help}, append(src, labels...))
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "oplog_capture", Name: name, Help: help}, append(src, labels...))
	}
	m := &metrics{
		state:   gauge("state", "State of the source's capture (state-set: 1 for the current state).", "state"),
		events:  counter("events_total", "Change events persisted in the store, acknowledged by a majority, by operation type.", "op_type"),
		bytes:   counter("bytes_total", "BSON bytes of the change events persisted."),
		batches: counter("batches_total", "Batches acknowledged by the store."),
		batchWrite: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "oplog_capture", Name: "batch_write_duration_seconds",
			Help:    "Time from sending a batch to the store until its majority acknowledgement, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1 ms to about 4 min
		}, src),
		lastEvent:      gauge("last_event_timestamp_seconds", "Time of the newest change event persisted: its wallTime (MongoDB 6.0+, to the millisecond), else its cluster time."),
		checkpoint:     gauge("checkpoint_timestamp_seconds", "Time up to which the store holds every event the source committed (majority), to the millisecond: the newest stored event's wallTime, or on a quiet source when the source last answered that nothing more had come."),
		storeOldest:    gauge("store_oldest_timestamp_seconds", "Cluster time of the oldest event in the store: the recovery window is last_event - this."),
		retention:      gauge("retention_seconds", "Configured retention of the store (TTL on wall); absent when events are kept for ever."),
		bufferEvents:   gauge("buffer_events", "Change events read from the source and not yet persisted."),
		bufferCapacity: gauge("buffer_capacity", "The most change events the buffer holds before reading waits."),
		writePending:   gauge("store_write_pending_seconds", "Age of the oldest store write (events or resume token) not yet acknowledged by a majority, retries included; 0 when none is pending."),
		retries:        counter("retries_total", "Attempts to reach the source (reopening the change stream) or the store (rewriting a batch or a token) after a failure.", "reason"),
		errors:         counter("errors_total", "Failures by kind; each is retried, except resume_token_lost, which stops the source until it is reset.", "kind"),
		foreign:        counter("foreign_writes_total", "Writes found in the source's store that no holder of its lease made (another collector, the old tool restarted by its manager): documents with ObjectId _ids, and position saves.", "kind"),
		gaps:           gauge("gaps", "Gaps recorded in the captured history (capture_gaps_<source>): stretches the store may not hold."),
		openGaps:       gauge("open_gaps", "Recorded gaps that capture has not closed yet (it has not started again since)."),
		recoverableSince: gauge("recoverable_since_timestamp_seconds",
			"Cluster time from which the store holds every event up to the checkpoint (after the last gap): a restore can reach any time from this to the checkpoint."),
		sourceOplogOldest: newSourceOplogGauge(),
		lag:               newLagCollector(),
	}
	reg.MustRegister(m.state, m.events, m.bytes, m.batches, m.batchWrite, m.lastEvent, m.checkpoint,
		m.storeOldest, m.retention, m.bufferEvents, m.bufferCapacity, m.writePending, m.retries, m.errors, m.foreign,
		m.gaps, m.openGaps, m.recoverableSince, m.sourceOplogOldest, m.lag)
	return m
}

// forget removes every series of a source that is no longer captured.
func (m *metrics) forget(source string) {
	labels := prometheus.Labels{"source_cluster": source}
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.state, m.events, m.bytes, m.batches, m.batchWrite, m.lastEvent, m.checkpoint,
		m.storeOldest, m.retention, m.bufferEvents, m.bufferCapacity, m.writePending, m.retries, m.errors, m.foreign,
		m.gaps, m.openGaps, m.recoverableSince, m.sourceOplogOldest} {
		v.DeletePartialMatch(labels)
	}
	m.lag.forget(source)
}

// setState sets the state-set: 1 for state, 0 for the others.
func (m *metrics) setState(source, state string) {
	for _, s := range states {
		v := 0.0
		if s == state {
			v = 1
		}
		m.state.WithLabelValues(source, s).Set(v)
	}
}

// zero creates a new source's counters at 0, so that rate() sees their first increase.
func (m *metrics) zero(source string) {
	m.bytes.WithLabelValues(source)
	m.batches.WithLabelValues(source)
	for _, reason := range []string{retrySource, retryStore} {
		m.retries.WithLabelValues(source, reason)
	}
	for _, kind := range []string{errSourceRead, errStoreWrite, errTokenSave, errHeartbeat, errResumeTokenLost, errIdentity, errLease, errSourceOplog} {
		m.errors.WithLabelValues(source, kind)
	}
	for _, kind := range []string{foreignDocument, foreignPosition} {
		m.foreign.WithLabelValues(source, kind)
	}
}

func seconds(ts bson.Timestamp) float64 { return float64(ts.T) }

// unixSeconds is t as a gauge's value, to the millisecond.
func unixSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// lagCollector exports oplog_capture_lag_seconds: at each scrape, now less each
// source's checkpoint. It is computed when scraped, not updated as capture goes, so it
// is exact at the scrape's time and keeps growing while capture stalls; time() -
// oplog_capture_checkpoint_timestamp_seconds in a rule is evaluated after the scrape,
// and reads up to one scrape interval high.
type lagCollector struct {
	desc *prometheus.Desc
	now  func() time.Time

	mu          sync.Mutex
	checkpoints map[string]time.Time
}

func newLagCollector() *lagCollector {
	return &lagCollector{
		desc: prometheus.NewDesc("oplog_capture_lag_seconds",
			"How far capture is behind the source, at the scrape: its time less the checkpoint (oplog_capture_checkpoint_timestamp_seconds); 0 when the source's clock is ahead of this host's.",
			[]string{"source_cluster"}, nil),
		now:         time.Now,
		checkpoints: map[string]time.Time{},
	}
}

func (c *lagCollector) set(source string, checkpoint time.Time) {
	c.mu.Lock()
	c.checkpoints[source] = checkpoint
	c.mu.Unlock()
}

func (c *lagCollector) forget(source string) {
	c.mu.Lock()
	delete(c.checkpoints, source)
	c.mu.Unlock()
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for source, checkpoint := range c.checkpoints {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, max(0, now.Sub(checkpoint).Seconds()), source)
	}
}
