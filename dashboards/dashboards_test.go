package dashboards

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mongomigrate/observability/internal/dashboardtest"
)

const (
	metricsDoc = "../docs/metrics.md"
	alertsDir  = "../alerts"
)

func load(t *testing.T) []dashboardtest.Dashboard {
	t.Helper()
	ds, err := dashboardtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != len(dashboardtest.UIDs) {
		t.Fatalf("found %d dashboards, want %d (%v)", len(ds), len(dashboardtest.UIDs), dashboardtest.UIDs)
	}
	return ds
}

// The uids are fixed: links, bookmarks and the provisioned demo depend on them.
func TestUIDsAreStable(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range load(t) {
		if seen[d.UID] {
			t.Errorf("%s: uid %q used twice", d.File, d.UID)
		}
		seen[d.UID] = true
		if !slices.Contains(dashboardtest.UIDs, d.UID) {
			t.Errorf("%s: uid %q is not one of %v", d.File, d.UID, dashboardtest.UIDs)
		}
		if d.File != d.UID+".json" {
			t.Errorf("%s: the file should be named after its uid, %s.json", d.File, d.UID)
		}
		if d.Title == "" {
			t.Errorf("%s: no title", d.File)
		}
	}
}

// targetVariables name, per dashboard, the variables of the job and instance labels that
// are not named after their label: the capture dashboard's list collectors and exporters,
// the overview's and the verification's exporters only, and the links between dashboards
// carry variables by name.
var targetVariables = map[string]map[string]string{
	"mongo-oplog-capture": {"job": "capture_job", "instance": "capture_instance"},
}

// variableFor returns the name of the variable that filters label on dashboard uid.
func variableFor(uid, label string) string {
	if v, ok := targetVariables[uid][label]; ok {
		return v
	}
	return label
}

// labelOf returns the label that variable filters on dashboard uid.
func labelOf(uid, variable string) string {
	for label, v := range targetVariables[uid] {
		if v == variable {
			return label
		}
	}
	return variable
}

// areaVariables are the per-area variables each dashboard must have after job and instance.
var areaVariables = map[string][]string{
	"mongo-migration-overview":     {"migration", "mongosync"},
	"mongo-migration-verification": {"migration", "verifier"},
	"mongo-oplog-capture":          {"source_cluster", "metadata"},
}

func TestVariables(t *testing.T) {
	known := knownMetrics(t)
	for _, d := range load(t) {
		vars := d.Templating.List
		want := append([]string{"datasource", variableFor(d.UID, "job"), variableFor(d.UID, "instance")}, areaVariables[d.UID]...)
		var names []string
		for _, v := range vars {
			names = append(names, v.Name)
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s: variables %v, want %v", d.File, names, want)
			continue
		}
		if vars[0].Type != "datasource" || vars[0].QueryString() != "prometheus" {
			t.Errorf("%s: the first variable must be a prometheus datasource variable, got type %q query %q", d.File, vars[0].Type, vars[0].QueryString())
		}
		for _, v := range vars[1:] {
			where := d.File + ": variable " + v.Name
			label := labelOf(d.UID, v.Name)
			if v.Type != "query" {
				t.Errorf("%s: type %q, want query", where, v.Type)
			}
			if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
				t.Errorf("%s: must use the ${datasource} variable", where)
			}
			// job and instance: All is the values their query finds, so that a query of
			// `up` selects the dashboard's own targets; the others: All = .* (queries use =~).
			wantAll := ".*"
			if label == "job" || label == "instance" {
				wantAll = ""
			}
			if !v.Multi || !v.IncludeAll || v.AllValue != wantAll {
				t.Errorf("%s: must be multi-value with All = %q, got %q", where, wantAll, v.AllValue)
			}
			q := v.QueryString()
			m := regexp.MustCompile(`^label_values\((.+), *(\w+)\)$`).FindStringSubmatch(q)
			if m == nil || m[2] != label {
				t.Errorf("%s: query %q is not label_values(<selector>, %s)", where, q, label)
				continue
			}
			parsed, err := parseQuery(m[1])
			if err != nil || len(parsed.selectors) != 1 {
				t.Errorf("%s: cannot read the selector of %q: %v", where, q, err)
				continue
			}
			sel := parsed.selectors[0]
			for _, name := range selectorNames(sel) {
				if !known[name] {
					t.Errorf("%s: metric %s is not in docs/metrics.md", where, name)
				}
			}
			// Each variable is filtered by the ones before it (job is the first).
			for _, prev := range vars[1:] {
				if prev.Name == v.Name {
					break
				}
				prevLabel := labelOf(d.UID, prev.Name)
				if prevLabel != "job" && prevLabel != "instance" && !slices.Contains(matchedLabels(sel), prevLabel) {
					continue // an area variable may not apply to the metric of another
				}
				if !filtersOn(sel, prevLabel, prev.Name) {
					t.Errorf("%s: query %q does not filter on $%s", where, q, prev.Name)
				}
			}
		}
	}
}

func TestPanels(t *testing.T) {
	for _, d := range load(t) {
		ids := map[int]bool{}
		vars := map[string]bool{}
		for _, v := range d.Templating.List {
			vars[v.Name] = true
		}
		panels := d.AllPanels()
		if len(panels) < 10 {
			t.Errorf("%s: only %d panels", d.File, len(panels))
		}
		rows := 0
		for _, p := range panels {
			where := d.File + ": panel " + strconv.Quote(p.Title)
			if ids[p.ID] {
				t.Errorf("%s: id %d used twice", where, p.ID)
			}
			ids[p.ID] = true
			if p.Repeat != "" && !vars[p.Repeat] {
				t.Errorf("%s: repeats on unknown variable %q", where, p.Repeat)
			}
			if p.Title == "" {
				t.Errorf("%s: no title", where)
			}
			if p.Type == "row" {
				rows++
				continue
			}
			if p.Type == "text" {
				continue
			}
			if strings.TrimSpace(p.Description) == "" {
				t.Errorf("%s: no description", where)
			}
			if !grafanaUnits[p.FieldConfig.Defaults.Unit] {
				t.Errorf("%s: unit %q is not set or not a Grafana unit this project uses", where, p.FieldConfig.Defaults.Unit)
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
				t.Errorf("%s: datasource must be {type: prometheus, uid: ${datasource}}", where)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", where)
			}
			for _, tg := range p.Targets {
				if tg.Datasource != nil && tg.Datasource.UID != "${datasource}" {
					t.Errorf("%s: target %s: datasource %q, want ${datasource}", where, tg.RefID, tg.Datasource.UID)
				}
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s: target %s: empty expr", where, tg.RefID)
				}
			}
		}
		if rows < 2 {
			t.Errorf("%s: group the panels in rows", d.File)
		}
	}
}

// grafanaUnits are the Grafana unit ids the dashboards may use.
var grafanaUnits = map[string]bool{
	"none": true, "short": true, "percentunit": true, "bytes": true, "Bps": true, "s": true,
	"dtdurations": true, "eps": true, "ops": true, "cps": true, "dateTimeAsIso": true,
	"dateTimeFromNow": true,
}

// Every query parses (Prometheus' PromQL parser), uses documented metrics or recording
// rules, filters on job, instance and the area variables that apply to its metric, and
// uses $__rate_interval for every range.
func TestQueries(t *testing.T) {
	known := queryableMetrics(t)
	records := recordingRules(t)
	for _, d := range load(t) {
		for _, p := range d.AllPanels() {
			for _, tg := range p.Targets {
				where := d.File + ": panel " + strconv.Quote(p.Title) + " " + tg.RefID
				q, err := parseQuery(tg.Expr)
				if err != nil {
					t.Errorf("%s: %v\n%s", where, err, tg.Expr)
					continue
				}
				if len(q.selectors) == 0 {
					t.Errorf("%s: no metric in %q", where, tg.Expr)
				}
				for _, s := range q.selectors {
					if s.Name == "" {
						t.Errorf("%s: name the metric in %q", where, tg.Expr)
						continue
					}
					if !known[s.Name] && !records[s.Name] {
						t.Errorf("%s: %s is neither in docs/metrics.md nor a recording rule in alerts/", where, s.Name)
					}
					for _, label := range append([]string{"job", "instance"}, areaLabels(s.Name)...) {
						if !filtersOn(s, label, variableFor(d.UID, label)) {
							t.Errorf("%s: %s does not filter on %s=~\"$%s\"", where, s, label, variableFor(d.UID, label))
						}
						if !slices.Contains(append([]string{"job", "instance"}, areaVariables[d.UID]...), label) {
							t.Errorf("%s: %s needs a $%s variable the dashboard does not have", where, s.Name, label)
						}
					}
				}
				// rate(), increase() and deriv() without a range do not parse.
				for _, r := range q.ranges {
					if r != timeVariables["__rate_interval"] {
						t.Errorf("%s: range [%s] in %q; use [$__rate_interval]", where, rangeName(r), tg.Expr)
					}
				}
			}
		}
	}
}

// areaLabels are the labels, beyond job and instance, whose dashboard variable a query of
// the metric must filter on.
func areaLabels(metric string) []string {
	switch {
	case strings.HasPrefix(metric, "mongosync_exporter_"):
		return nil
	case strings.HasPrefix(metric, "mongosync_"):
		return []string{"migration", "mongosync"}
	case strings.HasPrefix(metric, "migration:"):
		return []string{"migration"}
	case strings.HasPrefix(metric, "migration_verifier_"):
		return []string{"migration", "verifier"}
	case metric == "oplog_capture_build_info", strings.HasPrefix(metric, "oplog_capture_config_"):
		return nil
	case strings.HasPrefix(metric, "oplog_capture_"), strings.HasPrefix(metric, "source_cluster:oplog_capture_"):
		return []string{"source_cluster"}
	case metric == "oplog_collector_metadata_up":
		return []string{"metadata"}
	case strings.HasPrefix(metric, "oplog_collector_"), strings.HasPrefix(metric, "source_cluster:oplog_collector_"):
		return []string{"source_cluster", "metadata"}
	}
	return nil
}

// Each dashboard links to every other by their common tags (a link of type "dashboards"),
// keeping the time range and carrying the variables.
func TestLinks(t *testing.T) {
	ds := load(t)
	for _, d := range ds {
		var tagLinks []dashboardtest.Link
		for _, l := range d.Links {
			if l.Type == "dashboards" {
				tagLinks = append(tagLinks, l)
			}
		}
		if len(tagLinks) != 1 {
			t.Errorf("%s: %d links by tag, want 1", d.File, len(tagLinks))
			continue
		}
		l := tagLinks[0]
		if len(l.Tags) == 0 || !l.KeepTime || !l.IncludeVars {
			t.Errorf("%s: the link by tag has tags %v, keepTime %v, includeVars %v; want tags, both on", d.File, l.Tags, l.KeepTime, l.IncludeVars)
		}
		for _, other := range ds {
			for _, tag := range l.Tags {
				if !slices.Contains(other.Tags, tag) {
					t.Errorf("%s links by tag %q, which %s lacks", d.File, tag, other.File)
				}
			}
		}
	}
}

// The helper the end-to-end test uses: every panel query, expandable to plain PromQL.
func TestQueriesAndExpand(t *testing.T) {
	qs, err := dashboardtest.Queries()
	if err != nil {
		t.Fatal(err)
	}
	panels := 0
	for _, d := range load(t) {
		for _, p := range d.AllPanels() {
			panels += len(p.Targets)
		}
	}
	if len(qs) != panels || len(qs) == 0 {
		t.Fatalf("Queries returned %d queries, the dashboards have %d", len(qs), panels)
	}
	vars := expansion()
	for _, q := range qs {
		if q.Dashboard == "" || q.Panel == "" || q.RefID == "" {
			t.Errorf("incomplete query %+v", q)
		}
		if e := dashboardtest.Expand(q.Expr, vars); strings.Contains(e, "$") && !strings.Contains(e, `"$1"`) {
			t.Errorf("%s/%s: variables left after Expand: %s", q.Dashboard, q.Panel, e)
		}
	}
	got := dashboardtest.Expand(`rate(x{job=~"$job",a="${instance}",b="[[migration]]",c="${mongosync:regex}"}[$__rate_interval]) $unknown`,
		map[string]string{"job": "j", "instance": "i", "migration": "m", "mongosync": "s", "__rate_interval": "1m"})
	if want := `rate(x{job=~"j",a="i",b="m",c="s"}[1m]) $unknown`; got != want {
		t.Errorf("Expand = %s\nwant     %s", got, want)
	}
}

func expansion() map[string]string {
	vars := map[string]string{"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
	for _, v := range []string{"datasource", "job", "instance", "capture_job", "capture_instance", "migration", "mongosync", "verifier", "source_cluster", "metadata"} {
		vars[v] = ".*"
	}
	return vars
}
