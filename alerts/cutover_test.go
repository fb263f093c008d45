package alerts

import (
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// cutoverBlockers are the blockers of migration:cutover_blockers, as docs/runbook.md's
// cutover checklist lists them in order.
var cutoverBlockers = []string{
	"unreadable", "cannot_commit", "lag_high", "warnings", "index_builds_pending",
	"embedded_verifier_not_ready", "verifier_mismatches", "verifier_not_done",
}

// The cutover blockers are exactly the known ones, one rule each, every one seen present
// and then cleared in a promtool test, and migration:cutover_ready is seen 1 at an
// evaluation where no blocker is expected.
func TestCutoverBlockersAreTested(t *testing.T) {
	var defined []string
	for _, rs := range rules(t) {
		for _, r := range rs {
			if r.Record == "migration:cutover_blockers" {
				defined = append(defined, r.Labels["blocker"])
			}
		}
	}
	if got, want := slices.Sorted(slices.Values(defined)), slices.Sorted(slices.Values(cutoverBlockers)); !slices.Equal(got, want) {
		t.Fatalf("migration:cutover_blockers rules have blockers %v, want one each of %v", defined, cutoverBlockers)
	}
	present, cleared := map[string]bool{}, map[string]bool{}
	readyWithout := false
	for _, path := range testFiles(t) {
		var f testFile
		decodeFile(t, path, &f)
		for _, tc := range f.Tests {
			// Per evaluation time: the blockers expected, and the verdicts.
			blockers := map[time.Duration][]string{}
			evaluated := map[time.Duration]bool{}
			ready := map[time.Duration][]float64{}
			for _, e := range tc.PromQLExprTest {
				at, err := time.ParseDuration(e.EvalTime)
				if err != nil {
					t.Fatalf("%s: eval_time %q: %v", path, e.EvalTime, err)
				}
				switch strings.TrimSpace(e.Expr) {
				case "migration:cutover_blockers":
					evaluated[at] = true
					for _, s := range e.ExpSamples {
						blockers[at] = append(blockers[at], labelValue(t, s.Labels, "blocker"))
					}
				case "migration:cutover_ready":
					for _, s := range e.ExpSamples {
						ready[at] = append(ready[at], s.Value)
					}
				}
			}
			times := make([]time.Duration, 0, len(evaluated))
			for at := range evaluated {
				times = append(times, at)
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			seen := map[string]bool{}
			for _, at := range times {
				for _, b := range blockers[at] {
					present[b], seen[b] = true, true
				}
				for b := range seen {
					if !slices.Contains(blockers[at], b) {
						cleared[b] = true
					}
				}
				if len(blockers[at]) == 0 && slices.Equal(ready[at], []float64{1}) {
					readyWithout = true
				}
			}
		}
	}
	for _, b := range cutoverBlockers {
		if !present[b] || !cleared[b] {
			t.Errorf("blocker %s: seen present %v, seen cleared %v in alerts/tests/; want both", b, present[b], cleared[b])
		}
	}
	if !readyWithout {
		t.Error("no promtool test sees migration:cutover_ready 1 at an evaluation where every blocker has cleared")
	}
}

func labelValue(t *testing.T, series, label string) string {
	t.Helper()
	m, err := parser.NewParser(parser.Options{}).ParseMetric(series)
	if err != nil {
		t.Fatalf("exp_samples labels %q: %v", series, err)
	}
	return m.Get(label)
}

// No alert selects a scrape job by name, but the *Down alerts' `up`, which has nothing
// else to tell the daemons apart: a renamed job must not silence the rest.
func TestAlertsNameNoJob(t *testing.T) {
	for path, rs := range rules(t) {
		for _, r := range rs {
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %s%s: %v", path, r.Alert, r.Record, err)
				continue
			}
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				vs, ok := node.(*parser.VectorSelector)
				if !ok || vs.Name == "up" {
					return nil
				}
				for _, m := range vs.LabelMatchers {
					if m.Name == "job" {
						t.Errorf("%s: %s%s selects job %s in %s", path, r.Alert, r.Record, m, vs)
					}
				}
				return nil
			})
		}
	}
}

// Each daemon has a critical alert on the absence of its series, so that a scrape job
// renamed or dropped cannot silence paging.
func TestEveryDaemonHasAnAbsentAlert(t *testing.T) {
	for _, series := range []string{"mongosync_exporter_build_info", "oplog_capture_build_info"} {
		found := false
		for _, rs := range rules(t) {
			for _, r := range rs {
				if r.Alert != "" && strings.HasPrefix(strings.TrimSpace(r.Expr), "absent("+series+")") && r.Labels["severity"] == "critical" {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no critical alert fires on absent(%s)", series)
		}
	}
}

// Lag alerts fire on a lag that grows, not during a catch-up: each one's expression
// holds a deriv() of what it watches.
func TestLagAlertsNeedAGrowingLag(t *testing.T) {
	lagAlerts := 0
	for _, rs := range rules(t) {
		for _, r := range rs {
			if !strings.HasSuffix(r.Alert, "LagHigh") {
				continue
			}
			lagAlerts++
			if !strings.Contains(r.Expr, "deriv(") {
				t.Errorf("%s (%s) fires on the lag's level alone: it must also need the lag to grow (deriv)", r.Alert, r.Labels["severity"])
			}
		}
	}
	if lagAlerts == 0 {
		t.Fatal("no lag alert found")
	}
}
