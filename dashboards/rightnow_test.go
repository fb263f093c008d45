package dashboards

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mongomigrate/observability/internal/dashboardtest"
	hbdoc "github.com/mongomigrate/observability/internal/heartbeat"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// rightNow are the panel types that show the present: a stat, a gauge, a bar gauge or a
// table reduces its data to one value per series.
var rightNow = map[string]bool{"stat": true, "gauge": true, "bargauge": true, "table": true}

// Every right-now panel asks for the present (instant queries: a range query reduced
// to its last value keeps showing it after its source is gone), and says "No data" in
// red when there is none (a panel that needs configuration says which, after "No data",
// in its noValue); a stat colours its value or background, so that the red shows.
func TestRightNowPanelsShowNoDataInRed(t *testing.T) {
	for _, d := range load(t) {
		for _, p := range d.AllPanels() {
			if !rightNow[p.Type] {
				continue
			}
			where := d.File + ": " + p.Type + " " + strconv.Quote(p.Title)
			for _, tg := range p.Targets {
				if !tg.Instant || tg.Range {
					t.Errorf("%s: query %s is a range query; a right-now panel needs an instant one", where, tg.RefID)
				}
			}
			noData := false
			noValue := p.FieldConfig.Defaults.NoValue
			for _, m := range p.FieldConfig.Defaults.Mappings {
				match, res := m.Special()
				if match == "null" && res.Color == "red" &&
					(res.Text == "No data" && noValue == "" || res.Text == "" && strings.HasPrefix(noValue, "No data")) {
					noData = true
				}
			}
			if !noData {
				t.Errorf("%s: no special mapping of null to \"No data\" in red (or to red, with a noValue that starts with \"No data\")", where)
			}
			if p.Type == "stat" && p.Options.ColorMode != "background" && p.Options.ColorMode != "value" {
				t.Errorf("%s: colorMode %q shows no colour, so No data would not be red", where, p.Options.ColorMode)
			}
		}
	}
}

// stateSets are the state-set metrics (and the cutover blockers) with every value they
// take, per docs/metrics.md. A panel showing one maps each value to a colour.
var stateSets = map[string][]string{
	"mongosync_state":              {"INITIALIZING", "IDLE", "RUNNING", "PAUSED", "COMMITTING", "COMMITTED", "REVERSING", "other"},
	"mongosync_phase":              {"collection copy", "change event application", "waiting for commit to complete", "commit completed", "other"},
	"mongosync_cea_stage":          {"collection copy drain", "steady state", "other"},
	"mongosync_verification_phase": {"not started", "initial hashing", "stream hashing", "other"},
	"migration_verifier_phase":     {"not_started", "initializing", "check", "recheck", "idle"},
	"oplog_capture_state": {"starting", "running", "retrying_connection", "error", "error_resume_token_lost",
		"stopping", "stopped", "resetting_oplog_store", "standby", "store_unavailable", "foreign_writer"},
	// Every status a heartbeat document may hold, as the exporter reads them.
	"oplog_collector_status": append(slices.Clone(hbdoc.Statuses), "other"),
	"migration:cutover_blockers": {"unreadable", "cannot_commit", "lag_high", "warnings", "index_builds_pending",
		"embedded_verifier_not_ready", "verifier_mismatches", "verifier_not_done"},
}

// Colour by meaning: every panel showing a state-set maps each of its values to a text
// and a colour, and the colours say what the value means: errors, a store refusing
// writes and every cutover blocker red, never neutral.
func TestStatePanelsMapEveryState(t *testing.T) {
	mustNotBeNeutral := map[string]bool{"error": true, "error_resume_token_lost": true, "store_unavailable": true, "foreign_writer": true, "PAUSED": true}
	for metric, states := range stateSets {
		panels := 0
		for _, d := range load(t) {
			for _, p := range d.AllPanels() {
				if !panelSelects(t, p, metric) {
					continue
				}
				panels++
				where := fmt.Sprintf("%s: panel %q (%s)", d.File, p.Title, metric)
				mapped := map[string]dashboardtest.MappingResult{}
				for _, m := range p.AllMappings() {
					for v, res := range m.Values() {
						mapped[v] = res
					}
				}
				for _, s := range states {
					res, ok := mapped[s]
					switch {
					case !ok || res.Text == "" || res.Color == "":
						t.Errorf("%s: no value mapping to a text and a colour for %q", where, s)
					case mustNotBeNeutral[s] && (res.Color == "text" || res.Color == "blue" || res.Color == "green"):
						t.Errorf("%s: %q is coloured %s, as if it were normal", where, s, res.Color)
					case metric == "migration:cutover_blockers" && res.Color != "red":
						t.Errorf("%s: blocker %q is coloured %s, not red", where, s, res.Color)
					}
				}
			}
		}
		if panels == 0 {
			t.Errorf("no panel shows %s", metric)
		}
	}
}

// What is normal is not red: "Can commit: No" before the cutover, and mismatches of the
// initial check (generation 0), which include documents in flight.
func TestNormalValuesAreNotRed(t *testing.T) {
	initialCheck := regexp.MustCompile(`migration_verifier_generation\{[^}]*\}\s*==\s*0`)
	canCommit, initial := 0, 0
	for _, d := range load(t) {
		for _, p := range d.AllPanels() {
			where := fmt.Sprintf("%s: panel %q", d.File, p.Title)
			if panelSelects(t, p, "mongosync_can_commit") || panelSelects(t, p, "migration:mongosync_can_commit:min") {
				mappings := p.FieldConfig.Defaults.Mappings
				for _, o := range p.FieldConfig.Overrides { // a table's column
					if o.Matcher.Options == "Can commit" {
						mappings = o.Mappings()
					}
				}
				for _, m := range mappings {
					if res, ok := m.Values()["0"]; ok && res.Text == "No" {
						canCommit++
						if res.Color == "red" {
							t.Errorf("%s: \"Can commit: No\" is red; it is normal until the cutover", where)
						}
					}
				}
			}
			for _, tg := range p.Targets {
				if !initialCheck.MatchString(tg.Expr) {
					continue
				}
				initial++
				if c := initialCheckColour(p, tg.RefID); c == "" || c == "red" {
					t.Errorf("%s: the initial check's mismatches (query %s) are coloured %q; give them a colour of their own, not red", where, tg.RefID, c)
				}
			}
		}
	}
	if canCommit == 0 || initial == 0 {
		t.Errorf("found %d Can commit mappings and %d initial-check mismatch queries; want both", canCommit, initial)
	}
}

// initialCheckColour is the colour a panel gives the initial check's figures of query
// ref: a fixed colour of an override on the query, or on the series or column named for
// the initial check.
func initialCheckColour(p dashboardtest.Panel, ref string) string {
	for _, o := range p.FieldConfig.Overrides {
		byQuery := o.Matcher.ID == "byFrameRefID" && o.Matcher.Options == ref
		byName := (o.Matcher.ID == "byName" || o.Matcher.ID == "byRegexp") && strings.Contains(strings.ToLower(o.Matcher.Options), "initial check")
		if !byQuery && !byName {
			continue
		}
		for _, prop := range o.Properties {
			var v struct {
				FixedColor string `json:"fixedColor"`
				Steps      []struct {
					Color string `json:"color"`
				} `json:"steps"`
			}
			if json.Unmarshal(prop.Value, &v) != nil {
				continue
			}
			switch {
			case prop.ID == "color" && v.FixedColor != "":
				return v.FixedColor
			case prop.ID == "thresholds" && len(v.Steps) == 1:
				return v.Steps[0].Color
			}
		}
	}
	return ""
}

// panelSelects reports whether one of the panel's queries selects metric.
func panelSelects(t *testing.T, p dashboardtest.Panel, metric string) bool {
	t.Helper()
	for _, tg := range p.Targets {
		q, err := parseQuery(tg.Expr)
		if err != nil {
			continue // TestQueries reports it
		}
		for _, s := range q.selectors {
			if slices.Contains(selectorNames(s), metric) {
				return true
			}
		}
	}
	return false
}

// The overview opens with the cutover verdict: a Go / no-go stat (GO green, NO GO red)
// and the table of blockers, before anything else.
func TestCutoverVerdictOnTop(t *testing.T) {
	d := dashboard(t, "mongo-migration-overview")
	if len(d.Panels) < 3 || d.Panels[0].Type != "row" || d.Panels[0].Repeat != "" || d.Panels[0].Collapsed {
		t.Fatalf("%s: the first panel must be an open row that does not repeat", d.File)
	}
	var top []dashboardtest.Panel
	for _, p := range d.Panels[1:] {
		if p.Type == "row" {
			break
		}
		top = append(top, p)
	}
	goNoGo := slices.IndexFunc(top, func(p dashboardtest.Panel) bool {
		return p.Type == "stat" && panelSelects(t, p, "migration:cutover_ready")
	})
	blockers := slices.IndexFunc(top, func(p dashboardtest.Panel) bool {
		return p.Type == "table" && panelSelects(t, p, "migration:cutover_blockers")
	})
	if goNoGo != 0 || blockers < 0 {
		t.Fatalf("%s: the first row must open with a stat on migration:cutover_ready and hold a table of migration:cutover_blockers (found them at %d and %d)", d.File, goNoGo, blockers)
	}
	want := map[string]dashboardtest.MappingResult{"0": {Text: "NO GO", Color: "red"}, "1": {Text: "GO", Color: "green"}}
	got := map[string]dashboardtest.MappingResult{}
	for _, m := range top[goNoGo].AllMappings() {
		for v, res := range m.Values() {
			got[v] = res
		}
	}
	for v, res := range want {
		if got[v] != res {
			t.Errorf("%s: Go / no-go maps %s to %+v, want %+v", d.File, v, got[v], res)
		}
	}
}

// Each dashboard shows whether its own sources are scraped: a stat of `up` for the
// dashboard's job and instance, Down in red.
func TestEveryDashboardShowsItsScrape(t *testing.T) {
	for _, d := range load(t) {
		found := false
		for _, p := range d.AllPanels() {
			if p.Type != "stat" || !panelSelects(t, p, "up") {
				continue
			}
			for _, m := range p.AllMappings() {
				if res := m.Values()["0"]; res.Text == "Down" && res.Color == "red" {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s: no stat of up mapping 0 to Down in red", d.File)
		}
	}
}

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
