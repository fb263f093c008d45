package exporter

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// emitter sends const metrics that share their leading label values (such as the
// migration and instance names) to one channel.
type emitter struct {
	ch     chan<- prometheus.Metric
	labels []string
}

func (e emitter) with(extra ...string) []string {
	return append(slices.Clip(e.labels), extra...)
}

// gauge sends value when the source reported it: a null or absent field gives no series,
// never a made-up 0.
func (e emitter) gauge(desc *prometheus.Desc, value *float64, extra ...string) {
	if value != nil {
		e.ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, *value, e.with(extra...)...)
	}
}

func (e emitter) counter(desc *prometheus.Desc, value *float64, extra ...string) {
	if value != nil {
		e.ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, *value, e.with(extra...)...)
	}
}

// flag sends 1 for true and 0 for false or unknown.
func (e emitter) flag(desc *prometheus.Desc, value *bool, extra ...string) {
	e.ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, boolValue(value != nil && *value), e.with(extra...)...)
}

// stateSet sends one series per known state (1 for current, 0 for the others), plus one
// for current when the source reports a state this exporter does not know yet, so a new
// state is visible rather than lost. The state label is the last label of desc.
func (e emitter) stateSet(desc *prometheus.Desc, known []string, current *string, extra ...string) {
	for _, state := range known {
		e.ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue,
			boolValue(current != nil && *current == state), e.with(append(extra, state)...)...)
	}
	if current != nil && !slices.Contains(known, *current) {
		e.ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, 1, e.with(append(extra, *current)...)...)
	}
}
