package dashboards

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/mongomigrate/observability/internal/dashboardtest"
)

// timeVariables stand for Grafana's time variables while a query is parsed: durations no
// query writes by hand, so a range of one of these lengths was written as the variable.
var timeVariables = map[string]time.Duration{
	"__rate_interval": 7777777 * time.Millisecond,
	"__interval":      8888888 * time.Millisecond,
	"__range":         9999999 * time.Millisecond,
}

// query is what the tests read of a PromQL expression: its vector selectors, and the
// ranges of its range selectors and subqueries.
type query struct {
	selectors []*parser.VectorSelector
	ranges    []time.Duration
}

// parseQuery parses a dashboard query with the Prometheus PromQL parser, its time
// variables replaced by their stand-ins. The other variables ($job, ...) stay as
// written: the dashboards use them only inside label matchers.
func parseQuery(expr string) (query, error) {
	vars := map[string]string{}
	for name, d := range timeVariables {
		vars[name] = model.Duration(d).String()
	}
	e, err := parser.NewParser(parser.Options{}).ParseExpr(dashboardtest.Expand(expr, vars))
	if err != nil {
		return query{}, err
	}
	var q query
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			q.selectors = append(q.selectors, n)
		case *parser.MatrixSelector:
			q.ranges = append(q.ranges, n.Range)
		case *parser.SubqueryExpr:
			q.ranges = append(q.ranges, n.Range)
		}
		return nil
	})
	return q, nil
}

// rangeName returns how a range was written: $variable for a stand-in, else the duration.
func rangeName(d time.Duration) string {
	for name, v := range timeVariables {
		if d == v {
			return "$" + name
		}
	}
	return model.Duration(d).String()
}

// selectorNames returns the metric names a selector can match: its name, or the
// alternatives of a __name__ matcher.
func selectorNames(vs *parser.VectorSelector) []string {
	if vs.Name != "" {
		return []string{vs.Name}
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			return strings.Split(strings.Trim(m.Value, "()"), "|")
		}
	}
	return nil
}

// matchedLabels returns the label names a selector matches on, besides the name.
func matchedLabels(vs *parser.VectorSelector) []string {
	var out []string
	for _, m := range vs.LabelMatchers {
		if m.Name != model.MetricNameLabel {
			out = append(out, m.Name)
		}
	}
	return out
}

// filtersOn reports whether a selector filters label on a dashboard variable, as
// label=~"$variable" (variables are multi-value, so the matcher is a regular expression).
func filtersOn(vs *parser.VectorSelector, label, variable string) bool {
	for _, m := range vs.LabelMatchers {
		if m.Name == label && m.Type == labels.MatchRegexp && m.Value == "$"+variable {
			return true
		}
	}
	return false
}

// What the tests read of a query: the parser's selectors, the time variables recognised
// in ranges and subqueries, the names of a __name__ selector.
func TestParseQuery(t *testing.T) {
	q, err := parseQuery(`sum by (le) (rate(x_bucket{job=~"$job",le!="+Inf"}[$__rate_interval])) / ignoring(a) max_over_time(y[$__range:5m]) or {__name__=~"a|b",instance=~"$instance"} offset 5m`)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.selectors) != 3 {
		t.Fatalf("found %d selectors, want 3: %v", len(q.selectors), q.selectors)
	}
	x, y, ab := q.selectors[0], q.selectors[1], q.selectors[2]
	if !filtersOn(x, "job", "job") || filtersOn(x, "job", "instance") || filtersOn(x, "le", "le") || filtersOn(y, "job", "job") || !filtersOn(ab, "instance", "instance") {
		t.Errorf("filtersOn is wrong for %v %v %v", x, y, ab)
	}
	if got := strings.Join(selectorNames(ab), ","); got != "a,b" {
		t.Errorf("selectorNames(%v) = %s, want a,b", ab, got)
	}
	if got := strings.Join(matchedLabels(x), ","); got != "job,le" {
		t.Errorf("matchedLabels(%v) = %s, want job,le", x, got)
	}
	var ranges []string
	for _, r := range q.ranges {
		ranges = append(ranges, rangeName(r))
	}
	if got := strings.Join(ranges, ","); got != "$__rate_interval,$__range" {
		t.Errorf("ranges %s, want $__rate_interval,$__range", got)
	}
	if _, err := parseQuery(`x{a="b"`); err == nil {
		t.Error("parseQuery accepted an unbalanced brace")
	}
	if _, err := parseQuery(`rate(x)`); err == nil {
		t.Error("parseQuery accepted rate() of an instant vector")
	}
}
