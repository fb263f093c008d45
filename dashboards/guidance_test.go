package dashboards

// What the dashboards tell their reader beyond the figures: linked variables that mean
// the same, the runbook of an alert, the configuration a panel needs, state changes.

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mongomigrate/observability/internal/dashboardtest"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// The link by tag carries every variable by name (includeVars), so a variable two
// dashboards both have must mean the same on both: the same label of the same daemon's
// series, with the same All. Then what a user picked on one selects the same on the other.
func TestLinkedVariablesMeanTheSame(t *testing.T) {
	type meaning struct{ label, daemons, all string }
	type first struct {
		meaning
		file string
	}
	seen := map[string]first{}
	shared := 0
	for _, d := range load(t) {
		for _, v := range d.Templating.List {
			m := labelValuesQuery.FindStringSubmatch(v.QueryString())
			if v.Type != "query" || m == nil {
				continue
			}
			q, err := parseQuery(m[1])
			if err != nil || len(q.selectors) != 1 {
				t.Errorf("%s: variable %s: cannot read %q: %v", d.File, v.Name, m[1], err)
				continue
			}
			var daemons []string
			for _, name := range selectorNames(q.selectors[0]) {
				daemons = append(daemons, daemonOf(name))
			}
			slices.Sort(daemons)
			got := meaning{m[2], strings.Join(slices.Compact(daemons), "+"), v.AllValue}
			prev, ok := seen[v.Name]
			if !ok {
				seen[v.Name] = first{got, d.File}
				continue
			}
			shared++
			if prev.meaning != got {
				t.Errorf("variable %s is %+v on %s and %+v on %s: a link would carry it across; give one of them another name", v.Name, prev.meaning, prev.file, got, d.File)
			}
		}
	}
	if shared == 0 {
		t.Error("no variable is shared between dashboards: the links carry nothing")
	}
}

var labelValuesQuery = regexp.MustCompile(`^label_values\((.+), *(\w+)\)$`)

// daemonOf names the daemon whose /metrics holds a metric.
func daemonOf(metric string) string {
	if strings.HasPrefix(metric, "oplog_capture_") {
		return "oplog_collector"
	}
	return "mongosync_exporter"
}

// A panel whose description names an alert links to the alert's runbook section, the
// runbook_url of the alert's rule.
func TestAlertBackedPanelsLinkTheirRunbook(t *testing.T) {
	runbooks := map[string]string{}
	for _, r := range rules(t) {
		if r.Alert != "" {
			runbooks[r.Alert] = r.Annotations["runbook_url"]
		}
	}
	backed := 0
	for _, d := range load(t) {
		for _, p := range d.AllPanels() {
			var urls []string
			for _, l := range p.Links {
				urls = append(urls, l.URL)
			}
			for alert, url := range runbooks {
				if !regexp.MustCompile(`\b` + alert + `\b`).MatchString(p.Description) {
					continue
				}
				backed++
				if url == "" || !slices.Contains(urls, url) {
					t.Errorf("%s: panel %q names %s but does not link its runbook %q (links: %v)", d.File, p.Title, alert, url, urls)
				}
			}
		}
	}
	if backed < 20 {
		t.Errorf("only %d panels name an alert", backed)
	}
}

// needsConfiguration are the metrics that exist only when a configuration key is set,
// with that key; the heartbeats' need collector_metadata.
var needsConfiguration = map[string]string{
	"migration_verifier_api_up":                            "api_url",
	"migration_verifier_change_lag_seconds":                "api_url",
	"migration_verifier_change_buffer_saturation_ratio":    "api_url",
	"migration_verifier_change_events_per_second":          "api_url",
	"migration_verifier_longest_mismatch_duration_seconds": "api_url",
	"oplog_capture_retention_seconds":                      "retention",
}

func configurationOf(metric string) string {
	if strings.HasPrefix(metric, "oplog_collector_") || strings.HasPrefix(metric, "source_cluster:oplog_collector_") {
		return "collector_metadata"
	}
	return needsConfiguration[metric]
}

// A panel whose every query needs the same configuration key says so when it has no data
// (its noValue names the key), rather than a bare "No data".
func TestPanelsThatNeedConfigurationSayWhich(t *testing.T) {
	found := map[string]int{}
	for _, d := range load(t) {
		for _, p := range d.AllPanels() {
			if p.Type == "row" || p.Type == "table" || len(p.Targets) == 0 {
				continue
			}
			keys := map[string]bool{}
			for _, tg := range p.Targets {
				q, err := parseQuery(tg.Expr)
				if err != nil {
					continue // TestQueries reports it
				}
				for _, s := range q.selectors {
					for _, name := range selectorNames(s) {
						keys[configurationOf(name)] = true
					}
				}
			}
			if len(keys) != 1 || keys[""] {
				continue
			}
			key := slices.Collect(maps.Keys(keys))[0]
			found[key]++
			if noValue := p.FieldConfig.Defaults.NoValue; !strings.HasPrefix(noValue, "No data") || !strings.Contains(noValue, key) {
				t.Errorf("%s: panel %q needs %s, but without data says %q; want a noValue that starts with \"No data\" and names %s", d.File, p.Title, key, noValue, key)
			}
		}
	}
	for _, key := range []string{"api_url", "collector_metadata", "retention"} {
		if found[key] == 0 {
			t.Errorf("no panel needs %s: is the list of metrics right?", key)
		}
	}
}

func dashboard(t *testing.T, uid string) dashboardtest.Dashboard {
	t.Helper()
	for _, d := range load(t) {
		if d.UID == uid {
			return d
		}
	}
	t.Fatalf("no dashboard %s", uid)
	return dashboardtest.Dashboard{}
}

// The overview marks every state and phase change of an instance with an annotation:
// its query, run by promtool on series that change, returns a sample exactly at each
// change and none in between.
func TestAnnotationsMarkStateChanges(t *testing.T) {
	bin := testsupport.Promtool(t, "evaluating the annotation queries")
	d := dashboard(t, "mongo-migration-overview")
	type change struct{ label, before, after string }
	series := map[string]change{
		"mongosync_state": {"state", "RUNNING", "COMMITTING"},
		"mongosync_phase": {"phase", "change event application", "waiting for commit to complete"},
	}
	var tests strings.Builder
	found := 0
	for _, a := range d.Annotations.List {
		if a.Expr == "" {
			continue
		}
		if a.Datasource == nil || a.Datasource.UID != "${datasource}" {
			t.Errorf("%s: annotation %q must use the ${datasource} variable", d.File, a.Name)
		}
		q, err := parseQuery(a.Expr)
		if err != nil || len(q.selectors) == 0 {
			t.Errorf("%s: annotation %q: %v", d.File, a.Name, err)
			continue
		}
		metric := q.selectors[0].Name
		s, ok := series[metric]
		if !ok {
			t.Errorf("%s: annotation %q marks %s, which this test does not know", d.File, a.Name, metric)
			continue
		}
		found++
		for _, sel := range q.selectors {
			for _, label := range append([]string{"job", "instance"}, areaLabels(sel.Name)...) {
				if !filtersOn(sel, label, variableFor(d.UID, label)) {
					t.Errorf("%s: annotation %q: %s does not filter on $%s", d.File, a.Name, sel, label)
				}
			}
		}
		// The value changes at 10m; one sample there, none before or after.
		fmt.Fprintf(&tests, `  - interval: 1m
    input_series:
      - series: '%[1]s{job="e",instance="e",migration="m",mongosync="s",%[2]s=%[3]q}'
        values: '1x9 0x10'
      - series: '%[1]s{job="e",instance="e",migration="m",mongosync="s",%[2]s=%[4]q}'
        values: '0x9 1x10'
    promql_expr_test:
      - expr: %[5]q
        eval_time: 10m
        exp_samples:
          - labels: '%[1]s{job="e",instance="e",migration="m",mongosync="s",%[2]s=%[4]q}'
            value: 1
      - expr: %[5]q
        eval_time: 9m
        exp_samples: []
      - expr: %[5]q
        eval_time: 11m
        exp_samples: []
`, metric, s.label, s.before, s.after, dashboardtest.Expand(a.Expr, expansion()))
	}
	if found != len(series) {
		t.Fatalf("%s: %d annotations mark state or phase changes, want %d", d.File, found, len(series))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "none.yml"), []byte("groups: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "annotations_test.yml")
	if err := os.WriteFile(file, []byte("rule_files: [none.yml]\nevaluation_interval: 1m\ntests:\n"+tests.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "test", "rules", file).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules on the annotation queries: %v\n%s\n%s", err, out, tests.String())
	}
}
