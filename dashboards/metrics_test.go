package dashboards

// The dashboards against what they query: the metrics docs/metrics.md lists, the
// recording rules, and the thresholds of the alerts.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mongomigrate/observability/internal/dashboardtest"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// The lag panels colour the thresholds the alerts fire at.
func TestThresholdsFollowTheAlerts(t *testing.T) {
	alerts := alertThresholds(t)
	checks := []struct {
		metrics []string
		want    []float64
	}{
		// 30 s: mongosync 1.21+ refuses to commit; then MongosyncLagHigh's warning and critical.
		{[]string{"migration:mongosync_lag_seconds:max", "mongosync_lag_seconds"}, append([]float64{30}, alerts["MongosyncLagHigh"]...)},
		{[]string{"source_cluster:oplog_capture_lag:seconds"}, alerts["OplogCaptureLagHigh"]},
		{[]string{"mongosync_oplog_time_remaining_seconds", "migration:mongosync_oplog_time_remaining_seconds:min"}, alerts["MongosyncOplogTimeRemainingLow"]},
		{[]string{"source_cluster:oplog_capture_resume_headroom:seconds"}, alerts["OplogCaptureResumeHeadroomLow"]},
	}
	for _, c := range checks {
		if len(c.want) < 2 {
			t.Fatalf("could not read the thresholds of the alerts for %v: %v", c.metrics, c.want)
		}
		found := 0
		for _, d := range load(t) {
			for _, p := range d.AllPanels() {
				if len(p.Targets) == 0 || !slices.ContainsFunc(c.metrics, func(m string) bool {
					return regexp.MustCompile(`(^|[^\w:])` + regexp.QuoteMeta(m) + `\{`).MatchString(p.Targets[0].Expr)
				}) {
					continue
				}
				found++
				var steps []float64
				if th := p.FieldConfig.Defaults.Thresholds; th != nil {
					for _, s := range th.Steps {
						if s.Value != nil {
							steps = append(steps, *s.Value)
						}
					}
				}
				for _, w := range c.want {
					if !slices.Contains(steps, w) {
						t.Errorf("%s: panel %q: thresholds %v lack %v, where the alerts fire", d.File, p.Title, steps, w)
					}
				}
			}
		}
		if found == 0 {
			t.Errorf("no panel shows %v", c.metrics)
		}
	}
}

// alertThresholds returns, per alert name, the numbers its expressions compare with.
func alertThresholds(t *testing.T) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	cmp := regexp.MustCompile(`[<>]=?\s*([0-9.]+)\b`)
	for _, r := range rules(t) {
		if r.Alert == "" {
			continue
		}
		if m := cmp.FindStringSubmatch(r.Expr); m != nil {
			v, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			out[r.Alert] = append(out[r.Alert], v)
		}
	}
	return out
}

// pendingMetrics are metrics the rules and dashboards are written against before the
// exporter or the collector exports them, with who will: each leaves this list when
// docs/metrics.md documents it (the test below fails until it does).
var pendingMetrics = map[string]string{}

// queryableMetrics are the names a dashboard query may use: documented metrics,
// Prometheus' own `up`, and the pending ones.
func queryableMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := knownMetrics(t)
	names["up"] = true
	for name := range pendingMetrics {
		names[name] = true
	}
	return names
}

func TestPendingMetrics(t *testing.T) {
	known := knownMetrics(t)
	for name, who := range pendingMetrics {
		if known[name] {
			t.Errorf("%s is documented in docs/metrics.md now: remove it from pendingMetrics (%s)", name, who)
		}
	}
}

// Every query, variables expanded, is valid PromQL for the real Prometheus parser
// (promtool check rules on a rule file made of them).
func TestQueriesParseWithPromtool(t *testing.T) {
	bin := testsupport.Promtool(t, "parsing the queries")
	type rec struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var recs []rec
	vars := expansion()
	for _, d := range load(t) {
		for _, p := range d.AllPanels() {
			for _, tg := range p.Targets {
				recs = append(recs, rec{"dashboard_query_" + strconv.Itoa(len(recs)), dashboardtest.Expand(tg.Expr, vars)})
			}
		}
		for _, v := range d.Templating.List[1:] {
			m := regexp.MustCompile(`^label_values\((.+), *\w+\)$`).FindStringSubmatch(v.QueryString())
			if m != nil {
				recs = append(recs, rec{"dashboard_variable_" + strconv.Itoa(len(recs)), dashboardtest.Expand(m[1], vars)})
			}
		}
	}
	file := map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": recs}}}
	data, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "queries.yml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the dashboard queries: %v\n%s\n%s", err, out, data)
	}
}

// knownMetrics returns the metric names of docs/metrics.md's tables (the first column of
// every table whose header starts with "metric"), with the series names of histograms.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	metricName := regexp.MustCompile("^`([a-z_][a-z0-9_]*)`$")
	inMetricTable := false
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "|") {
			inMetricTable = false
			continue
		}
		cells := testsupport.TableRow(line)
		if strings.HasPrefix(line, "|---") {
			continue
		}
		if len(cells) > 0 && (cells[0] == "metric" || cells[0] == "figure") {
			inMetricTable = cells[0] == "metric"
			continue
		}
		if !inMetricTable {
			continue
		}
		histogram := len(cells) > 1 && cells[1] == "histogram"
		for _, n := range strings.Split(cells[0], ",") {
			m := metricName.FindStringSubmatch(strings.TrimSpace(n))
			if m == nil {
				continue
			}
			names[m[1]] = true
			if histogram {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					names[m[1]+suffix] = true
				}
			}
		}
	}
	if len(names) < 50 {
		t.Fatalf("read only %d metric names from %s", len(names), metricsDoc)
	}
	return names
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	Annotations map[string]string `yaml:"annotations"`
}

func rules(t *testing.T) []rule {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(alertsDir, "*.yml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no rule files in %s: %v", alertsDir, err)
	}
	var out []rule
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Groups []struct {
				Rules []rule `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(data, &f); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, g := range f.Groups {
			out = append(out, g.Rules...)
		}
	}
	return out
}

func recordingRules(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, r := range rules(t) {
		if r.Record != "" {
			out[r.Record] = true
		}
	}
	if len(out) == 0 {
		t.Fatal("no recording rules in alerts/")
	}
	return out
}
