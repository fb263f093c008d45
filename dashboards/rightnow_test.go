package dashboards

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mongomigrate/observability/internal/dashboardtest"
	hbdoc "github.com/mongomigrate/observability/internal/heartbeat"
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
