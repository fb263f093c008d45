package exporter

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
)

// maxLabelValueBytes bounds a label value taken from a source: a namespace or a source
// cluster's name is short, a hostile document's field need not be.
const maxLabelValueBytes = 256

// labelValue makes v a valid label value: invalid UTF-8 replaced by U+FFFD, cut to
// maxLabelValueBytes at a character boundary. changed tells whether it had to.
func labelValue(v string) (clean string, changed bool) {
	if len(v) <= maxLabelValueBytes && utf8.ValidString(v) {
		return v, false
	}
	v = strings.ToValidUTF8(v, "\uFFFD")
	if len(v) > maxLabelValueBytes {
		cut := maxLabelValueBytes
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	return v, true
}

// scraperStats counts, across scrapes and reloads, what a scraper had to repair or
// could not survive; the exporter exports them as counters labelled with the scraper.
type scraperStats struct {
	labelsReplaced atomic.Uint64
	panics         atomic.Uint64
}

// batch holds the series of one target until the target is done, so a target that
// fails half way (a panic on a document nobody foresaw) sends none of its series rather
// than half of them. Label values are made valid, and a series sent twice (two values
// that became the same label value) is sent once.
type batch struct {
	stats   *scraperStats
	metrics []prometheus.Metric
	seen    map[seriesKey]struct{}
}

type seriesKey struct {
	desc   *prometheus.Desc
	labels string
}

func newBatch(stats *scraperStats) *batch {
	return &batch{stats: stats, seen: map[seriesKey]struct{}{}}
}

// add makes one const metric. A label value count that does not match desc is a bug of
// this program: it panics, and the target's runner turns that into a failed read.
func (b *batch) add(desc *prometheus.Desc, kind prometheus.ValueType, value float64, labels ...string) {
	labels = slices.Clone(labels)
	for i, l := range labels {
		if clean, changed := labelValue(l); changed {
			labels[i] = clean
			b.stats.labelsReplaced.Add(1)
		}
	}
	key := seriesKey{desc: desc, labels: strings.Join(labels, "\xff")}
	if _, dup := b.seen[key]; dup {
		return
	}
	b.seen[key] = struct{}{}
	m, err := prometheus.NewConstMetric(desc, kind, value, labels...)
	if err != nil {
		panic(err)
	}
	b.metrics = append(b.metrics, m)
}

func (b *batch) send(ch chan<- prometheus.Metric) {
	for _, m := range b.metrics {
		ch <- m
	}
}

// target reads one target into a batch and sends the batch. When read panics, the
// target's series are dropped and down sends what says it failed (its _up 0); the panic
// is counted, and logged with its stack when it differs from the last one of the target.
func (env Env) target(ch chan<- prometheus.Metric, key string, ids []any, read func(out *batch), down func(out *batch)) {
	err := guard(func() error {
		b := newBatch(env.Stats)
		read(b)
		b.send(ch)
		return nil
	})
	if env.OnChange.Failure(key+"/internal", err, ids...) {
		if p, ok := errors.AsType[*panicError](err); ok {
			level.Error(env.Logger).Log(append(slices.Clip(ids), "msg", "Stack of the internal error above", "stack", p.stack)...)
		}
	}
	if err != nil {
		env.Stats.panics.Add(1)
		b := newBatch(env.Stats)
		down(b)
		b.send(ch)
	}
}

// panicError is a recovered panic: the value and where it happened, in words that are
// the same every time the same bug strikes (so it is logged once), and the stack.
type panicError struct {
	value any
	site  string
	stack []byte
}

func (p *panicError) Error() string {
	return fmt.Sprintf("internal error (please report it): panic: %v at %s", p.value, p.site)
}

// guard runs f and turns a panic into a *panicError. Every goroutine that handles what a
// source sent runs under it: a panic in a goroutine cannot be recovered anywhere else
// and would end the process.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, site: panicSite(), stack: debug.Stack()}
		}
	}()
	return f()
}

// panicSite is the file and line that panicked: the first frame below the runtime's.
func panicSite() string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	for {
		frame, more := frames.Next()
		if !strings.HasPrefix(frame.Function, "runtime.") {
			return fmt.Sprintf("%s:%d", filepath.Base(frame.File), frame.Line)
		}
		if !more {
			return "an unknown place"
		}
	}
}

// emitter sends const metrics that share their leading label values (such as the
// migration and instance names) to one batch.
type emitter struct {
	out    *batch
	labels []string
}

func (e emitter) with(extra ...string) []string {
	return append(slices.Clip(e.labels), extra...)
}

// gauge sends value when the source reported it: a null or absent field gives no series,
// never a made-up 0.
func (e emitter) gauge(desc *prometheus.Desc, value *float64, extra ...string) {
	if value != nil {
		e.out.add(desc, prometheus.GaugeValue, *value, e.with(extra...)...)
	}
}

func (e emitter) counter(desc *prometheus.Desc, value *float64, extra ...string) {
	if value != nil {
		e.out.add(desc, prometheus.CounterValue, *value, e.with(extra...)...)
	}
}

// flag sends 1 for true and 0 for false or unknown.
func (e emitter) flag(desc *prometheus.Desc, value *bool, extra ...string) {
	e.out.add(desc, prometheus.GaugeValue, boolValue(value != nil && *value), e.with(extra...)...)
}

// otherValue stands for every value of an enumeration that the exporter does not know:
// a series per unknown value would let a source create series without bound.
const otherValue = "other"

// known maps a value from a source to itself when it is one of known, else to "other".
func known(value string, known []string) string {
	if slices.Contains(known, value) {
		return value
	}
	return otherValue
}

// stateSet sends one series per known state (1 for the current one, 0 for the others)
// and one for "other", 1 when the source reports a state this exporter does not know
// (the caller logs which). The state label is the last label of desc.
func (e emitter) stateSet(desc *prometheus.Desc, states []string, current *string, extra ...string) {
	for _, state := range states {
		e.out.add(desc, prometheus.GaugeValue, boolValue(current != nil && *current == state), e.with(append(extra, state)...)...)
	}
	e.out.add(desc, prometheus.GaugeValue, boolValue(current != nil && !slices.Contains(states, *current)), e.with(append(extra, otherValue)...)...)
}
