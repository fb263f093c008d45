package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
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

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// mixinDir holds the monitoring mixin, the jsonnet sources of the dashboards and rules.
const mixinDir = "deploy/mongo-migration-mixin"

// renderMixin runs `make mixin` into a new directory, with the _config overrides of
// config (jsonnet) when it is not empty, and returns the directory.
func renderMixin(t *testing.T, config string) string {
	t.Helper()
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skipf("rendering the mixin needs make: %v", err)
	}
	out := t.TempDir()
	args := []string{"--no-print-directory", "-C", root, "mixin", "MIXIN_OUT=" + out}
	if config != "" {
		file := filepath.Join(t.TempDir(), "config.libsonnet")
		if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "MIXIN_CONFIG="+file)
	}
	if res, err := exec.Command(makeBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("make mixin: %v\n%s", err, res)
	}
	return out
}

// generatedFiles are the files of the repository that the mixin generates.
func generatedFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{"dashboards/*.json", "alerts/*.yml"} {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			rel, err := filepath.Rel(root, m)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, filepath.ToSlash(rel))
		}
	}
	slices.Sort(out)
	return out
}

// filesUnder returns the files under dir, as slash-separated paths relative to it.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// The committed dashboards and rule files are exactly what the mixin renders, byte for
// byte, and the mixin renders no file the repository lacks.
func TestMixinRendersTheCommittedFiles(t *testing.T) {
	out := renderMixin(t, "")
	rendered, committed := filesUnder(t, out), generatedFiles(t)
	if !slices.Equal(rendered, committed) {
		t.Fatalf("the mixin renders %v; the repository has %v: add the file to the mixin (or remove it), then run make mixin", rendered, committed)
	}
	for _, name := range rendered {
		want, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what %s renders (%s): edit the mixin, not the file, and run make mixin", name, mixinDir, firstDifference(got, want))
		}
	}
}

// firstDifference names the first line where got and want differ.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			return fmt.Sprintf("line %d is %q, the render has %q", i+1, gl, wl)
		}
	}
	return "no line differs"
}

// jsonnet runs go-jsonnet, the version the Makefile pins, on a program and returns its
// JSON output.
func jsonnet(t *testing.T, program string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^JSONNET\s*\?=\s*(\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("the Makefile sets no JSONNET ?= <module>@<version>")
	}
	file := filepath.Join(t.TempDir(), "program.jsonnet")
	if err := os.WriteFile(file, []byte(program), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("go", "run", string(m[1]), file)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run %s: %v\n%s", m[1], err, stderr.String())
	}
	return out
}

// The YAML and JSON the repository writes (lib/manifest.libsonnet) hold the same data as
// the mixin's prometheusAlerts, prometheusRules and grafanaDashboards: what a vendoring
// user renders with std.manifestYamlDoc or any other writer is what the files say.
func TestMixinFilesHoldTheMixinsData(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join(root, mixinDir))
	if err != nil {
		t.Fatal(err)
	}
	out := jsonnet(t, fmt.Sprintf(`local mixin = import %q;
{
  'alerts/alerts.yml': mixin.prometheusAlerts,
  'alerts/recording.yml': mixin.prometheusRules,
} + { ['dashboards/' + name]: mixin.grafanaDashboards[name] for name in std.objectFields(mixin.grafanaDashboards) }
`, filepath.Join(dir, "mixin.libsonnet")))
	var data map[string]any
	if err := json.Unmarshal(out, &data); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(data)), generatedFiles(t); !slices.Equal(got, want) {
		t.Fatalf("the mixin holds %v, the repository %v", got, want)
	}
	for name, want := range data {
		raw, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		var got any
		if strings.HasSuffix(name, ".json") {
			err = json.Unmarshal(raw, &got)
		} else {
			err = yaml.Unmarshal(raw, &got)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Through JSON, so that both sides hold the same Go types.
		normal, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(normal, &got); err != nil {
			t.Fatal(err)
		}
		if diff := firstDataDifference("", got, want); diff != "" {
			t.Errorf("%s does not hold the mixin's data: %s", name, diff)
		}
	}
}

// firstDataDifference returns where two decoded JSON values first differ, or "".
func firstDataDifference(path string, got, want any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: %T, want an object", path, got)
		}
		for _, k := range slices.Sorted(maps.Keys(w)) {
			if _, ok := g[k]; !ok {
				return fmt.Sprintf("%s/%s: missing", path, k)
			}
			if d := firstDataDifference(path+"/"+k, g[k], w[k]); d != "" {
				return d
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				return fmt.Sprintf("%s/%s: not in the mixin", path, k)
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: %v, want %d elements", path, got, len(w))
		}
		for i := range w {
			if d := firstDataDifference(fmt.Sprintf("%s[%d]", path, i), g[i], w[i]); d != "" {
				return d
			}
		}
	default:
		if got != want {
			return fmt.Sprintf("%s: %#v, want %#v", path, got, want)
		}
	}
	return ""
}

// anotherConfig overrides every kind of _config setting: the job selectors, the cluster
// label, the runbook, the dashboards' tags and a threshold.
const anotherConfig = `{
  mongosyncExporterSelector: 'job="mse",env="prod"',
  oplogCollectorSelector: 'job=~"oplog-.*"',
  showMultiCluster: true,
  clusterLabel: 'k8s_cluster',
  runbookURLPattern: 'https://runbooks.example.com/mongo#%s',
  dashboardTags: ['our-tag'],
  mongosyncLagWarningSeconds: 120,
}`

// Rendered with another _config, the rules are valid for promtool and carry it: `up` is
// selected by the configured selectors and no job is named elsewhere, every aggregation
// and join keeps the cluster label, the runbook links follow the pattern, the threshold
// moves with its description; the dashboards filter every series on the cluster
// variable, keep the label in their aggregations, and link by the configured tags.
func TestMixinWithAnotherConfig(t *testing.T) {
	promtool := testsupport.Promtool(t, "checking the rules rendered with another _config")
	out := renderMixin(t, anotherConfig)
	alertsFile, recordingFile := filepath.Join(out, "alerts/alerts.yml"), filepath.Join(out, "alerts/recording.yml")
	if res, err := exec.Command(promtool, "check", "rules", alertsFile, recordingFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, res)
	}

	exporterUp := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "mse"), labels.MustNewMatcher(labels.MatchEqual, "env", "prod")}
	collectorUp := []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "job", "oplog-.*")}
	ups := map[string]int{}
	var groupings int
	for _, file := range []string{alertsFile, recordingFile} {
		var rf struct {
			Groups []struct {
				Rules []struct {
					Alert       string            `yaml:"alert"`
					Record      string            `yaml:"record"`
					Expr        string            `yaml:"expr"`
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		decodeYAML(t, file, &rf)
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				name := r.Alert + r.Record
				expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				groupings += checkClusterGroupings(t, name, expr, "k8s_cluster")
				parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
					vs, ok := node.(*parser.VectorSelector)
					if !ok {
						return nil
					}
					jobs := slices.DeleteFunc(slices.Clone(vs.LabelMatchers), func(m *labels.Matcher) bool { return m.Name == model.MetricNameLabel })
					switch {
					case vs.Name == "up" && sameMatchers(jobs, exporterUp):
						ups["exporter"]++
					case vs.Name == "up" && sameMatchers(jobs, collectorUp):
						ups["collector"]++
					case vs.Name == "up":
						t.Errorf("%s: %s is not selected by either configured selector", name, vs)
					default:
						for _, m := range vs.LabelMatchers {
							if m.Name == "job" {
								t.Errorf("%s: %s names a job", name, vs)
							}
						}
					}
					return nil
				})
				if url := r.Annotations["runbook_url"]; r.Alert != "" && url != "https://runbooks.example.com/mongo#"+strings.ToLower(r.Alert) {
					t.Errorf("%s: runbook_url %q does not follow the configured pattern", name, url)
				}
				if r.Alert == "MongosyncLagHigh" && (!strings.Contains(r.Expr, "mongosync_lag_seconds > 120") || !strings.Contains(r.Annotations["description"], "warning above 2m")) {
					t.Errorf("MongosyncLagHigh does not follow mongosyncLagWarningSeconds: %s / %s", r.Expr, r.Annotations["description"])
				}
			}
		}
	}
	if ups["exporter"] < 2 || ups["collector"] < 2 {
		t.Errorf("up selected by the configured selectors %v times; want the Down and the Absent alert of each daemon", ups)
	}
	if groupings < 30 {
		t.Errorf("only %d groupings checked in the rules", groupings)
	}

	checkClusteredDashboards(t, out, promtool)
}

// checkClusterGroupings fails the test for every `by (...)` and `on (...)` of expr
// without the cluster label (`on ()`, which joins on nothing, and `without (...)`, which
// keeps it, need none), and returns how many it checked.
func checkClusterGroupings(t *testing.T, where string, expr parser.Node, cluster string) int {
	t.Helper()
	checked := 0
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.AggregateExpr:
			if !n.Without && len(n.Grouping) > 0 {
				checked++
				if !slices.Contains(n.Grouping, cluster) {
					t.Errorf("%s: by (%s) lacks %s", where, strings.Join(n.Grouping, ", "), cluster)
				}
			}
		case *parser.BinaryExpr:
			if m := n.VectorMatching; m != nil && m.On && len(m.MatchingLabels) > 0 {
				checked++
				if !slices.Contains(m.MatchingLabels, cluster) {
					t.Errorf("%s: on (%s) lacks %s", where, strings.Join(m.MatchingLabels, ", "), cluster)
				}
			}
		}
		return nil
	})
	return checked
}

func sameMatchers(got, want []*labels.Matcher) bool {
	return len(got) == len(want) && !slices.ContainsFunc(want, func(w *labels.Matcher) bool {
		return !slices.ContainsFunc(got, func(g *labels.Matcher) bool { return g.String() == w.String() })
	})
}

// timeVariables stand for Grafana's time variables, so that dashboard queries parse.
var timeVariables = map[string]string{"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}

// checkClusteredDashboards checks the dashboards of a multi-cluster render (cluster label
// k8s_cluster, tag our-tag, runbooks under https://runbooks.example.com/mongo#).
func checkClusteredDashboards(t *testing.T, out, promtool string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(out, "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards rendered in %s: %v", out, err)
	}
	type rec struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var queries []rec
	for _, file := range files {
		var d dashboardtest.Dashboard
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		name := filepath.Base(file)
		vars := d.Templating.List
		if len(vars) < 3 || vars[1].Name != "cluster" || !strings.HasSuffix(vars[1].QueryString(), ", k8s_cluster)") {
			t.Fatalf("%s: the second variable is not cluster, of label k8s_cluster: %+v", name, vars[1])
		}
		for _, v := range vars[2:] {
			if !strings.Contains(v.QueryString(), `k8s_cluster=~"$cluster"`) {
				t.Errorf("%s: variable %s is not filtered on the cluster: %s", name, v.Name, v.QueryString())
			}
		}
		if !slices.Contains(d.Tags, "our-tag") || len(d.Links) != 1 || !slices.Equal(d.Links[0].Tags, []string{"our-tag"}) {
			t.Errorf("%s: tags %v, links %+v; want our-tag, and one link by it", name, d.Tags, d.Links)
		}
		var exprs []string
		for _, a := range d.Annotations.List {
			if a.Expr != "" {
				exprs = append(exprs, a.Expr)
			}
		}
		for _, p := range d.AllPanels() {
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
			for _, l := range p.Links {
				if strings.HasPrefix(l.Title, "Runbook: ") && !strings.HasPrefix(l.URL, "https://runbooks.example.com/mongo#") {
					t.Errorf("%s: panel %q links %s", name, p.Title, l.URL)
				}
			}
		}
		for _, e := range exprs {
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(dashboardtest.Expand(e, timeVariables))
			if err != nil {
				t.Errorf("%s: %v\n%s", name, err, e)
				continue
			}
			checkClusterGroupings(t, name, expr, "k8s_cluster")
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				if vs, ok := node.(*parser.VectorSelector); ok && !slices.ContainsFunc(vs.LabelMatchers, func(m *labels.Matcher) bool {
					return m.Name == "k8s_cluster" && m.Type == labels.MatchRegexp && m.Value == "$cluster"
				}) {
					t.Errorf("%s: %s is not filtered on the cluster", name, vs)
				}
				return nil
			})
			all := maps.Clone(timeVariables)
			for _, v := range vars {
				all[v.Name] = ".*"
			}
			queries = append(queries, rec{fmt.Sprintf("dashboard_query_%d", len(queries)), dashboardtest.Expand(e, all)})
		}
	}
	// The queries, every variable on All, are valid PromQL for promtool.
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": queries}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "queries.yml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if res, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboards' queries: %v\n%s", err, res)
	}
}
