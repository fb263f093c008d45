package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mongomigrate/observability/internal/testsupport"

	"gopkg.in/yaml.v3"
)

const (
	runbookPath   = "../docs/runbook.md"
	runbookPrefix = "https://github.com/mongomigrate/observability/blob/main/docs/runbook.md#"
)

// ruleFile is the part of a Prometheus rule file these checks read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// testFile is the part of a promtool test file these checks read.
type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTest []struct {
			Expr       string `yaml:"expr"`
			EvalTime   string `yaml:"eval_time"`
			ExpSamples []struct {
				Labels string  `yaml:"labels"`
				Value  float64 `yaml:"value"`
			} `yaml:"exp_samples"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

func ruleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("expected the alerting and recording rule files in alerts/, found %v", files)
	}
	return files
}

func testFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("tests", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no promtool test files in alerts/tests/")
	}
	return files
}

func decodeFile(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// rules returns every rule of every rule file, with the file it came from.
func rules(t *testing.T) map[string][]rule {
	t.Helper()
	all := map[string][]rule{}
	for _, path := range ruleFiles(t) {
		var f ruleFile
		decodeFile(t, path, &f)
		if len(f.Groups) == 0 {
			t.Fatalf("%s has no rule groups", path)
		}
		for _, g := range f.Groups {
			all[path] = append(all[path], g.Rules...)
		}
	}
	return all
}

// promtool returns the path of promtool. Without it the test fails in CI (CI must install
// the Debian package) and is skipped elsewhere, by name.
func promtool(t *testing.T) string {
	t.Helper()
	return testsupport.Promtool(t, "checking the rules")
}

func TestPromtoolCheckRules(t *testing.T) {
	bin := promtool(t)
	out, err := exec.Command(bin, append([]string{"check", "rules"}, ruleFiles(t)...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	bin := promtool(t)
	out, err := exec.Command(bin, append([]string{"test", "rules"}, testFiles(t)...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

var (
	alertName = regexp.MustCompile(`^(MongosyncExporter|Mongosync|MigrationVerifier|OplogCollector|OplogCapture)[A-Z][A-Za-z]+$`)
	// level:metric:operations, or level:verdict for the cutover verdicts.
	recordName    = regexp.MustCompile(`^[a-z_]+:[a-z0-9_]+(:[a-z0-9_]+)?$`)
	severities    = []string{"critical", "warning", "info"}
	templateUse   = regexp.MustCompile(`\{\{[^}]*\$labels\.[a-z_]+[^}]*\}\}`)
	durationValue = regexp.MustCompile(`\$value\s*\|\s*humanizeDuration`)
	recordRef     = regexp.MustCompile(`[a-z_]+:[a-z0-9_]+(:[a-z0-9_]+)?`)
)

// Every alert follows the conventions: a name with an area prefix, a `for`, a severity,
// a static summary, a templated description and a runbook link to an existing section.
func TestAlertConventions(t *testing.T) {
	anchors := runbookAnchors(t)
	seen := map[string]bool{} // alert name + severity
	alerts := 0
	for path, rs := range rules(t) {
		for _, r := range rs {
			if r.Alert == "" {
				continue
			}
			alerts++
			where := path + ": " + r.Alert
			if !alertName.MatchString(r.Alert) {
				t.Errorf("%s: the name must be CamelCase with an area prefix (Mongosync, MigrationVerifier, OplogCollector, OplogCapture)", where)
			}
			if r.For == "" {
				t.Errorf("%s: no `for`", where)
			} else if d, err := time.ParseDuration(r.For); err != nil || d <= 0 {
				t.Errorf("%s: `for: %s` is not a positive duration", where, r.For)
			}
			sev := r.Labels["severity"]
			if !slices.Contains(severities, sev) {
				t.Errorf("%s: severity %q is not one of %v", where, sev, severities)
			}
			if seen[r.Alert+"/"+sev] {
				t.Errorf("%s: two rules with severity %s", where, sev)
			}
			seen[r.Alert+"/"+sev] = true
			summary, desc, url := r.Annotations["summary"], r.Annotations["description"], r.Annotations["runbook_url"]
			if summary == "" || strings.Contains(summary, "{{") {
				t.Errorf("%s: the summary must be a static sentence, got %q", where, summary)
			}
			// An absent() alert has no labels to template: its description names the series.
			if absent := strings.HasPrefix(strings.TrimSpace(r.Expr), "absent("); !absent && !templateUse.MatchString(desc) {
				t.Errorf("%s: the description must be templated with $labels, got %q", where, desc)
			} else if absent && !strings.Contains(desc, strings.TrimSuffix(strings.SplitN(strings.TrimPrefix(strings.TrimSpace(r.Expr), "absent("), ")", 2)[0], "{")) {
				t.Errorf("%s: the description must name the absent series, got %q", where, desc)
			}
			if strings.Contains(desc, "$value") && strings.Contains(strings.ToLower(r.Alert), "lag") && !durationValue.MatchString(desc) {
				t.Errorf("%s: a lag in the description must go through humanizeDuration", where)
			}
			anchor, ok := strings.CutPrefix(url, runbookPrefix)
			if !ok {
				t.Errorf("%s: runbook_url %q does not start with %s", where, url, runbookPrefix)
			} else if !anchors[anchor] {
				t.Errorf("%s: runbook_url anchor #%s is not a heading of %s", where, anchor, runbookPath)
			} else if anchor != strings.ToLower(r.Alert) {
				t.Errorf("%s: runbook_url anchor #%s is not the alert's own section", where, anchor)
			}
		}
	}
	if alerts == 0 {
		t.Fatal("no alerting rules found")
	}
}

// Every recording rule is named level:metric:operations and is evaluated by a
// promql_expr_test.
func TestRecordingRules(t *testing.T) {
	tested := map[string]bool{}
	for _, path := range testFiles(t) {
		var f testFile
		decodeFile(t, path, &f)
		for _, tc := range f.Tests {
			for _, e := range tc.PromQLExprTest {
				for _, name := range recordRef.FindAllString(e.Expr, -1) {
					tested[name] = true
				}
			}
		}
	}
	records := 0
	for path, rs := range rules(t) {
		for _, r := range rs {
			if r.Record == "" {
				continue
			}
			records++
			if !recordName.MatchString(r.Record) {
				t.Errorf("%s: %s is not named level:metric:operations", path, r.Record)
			}
			if !tested[r.Record] {
				t.Errorf("%s: %s has no promql_expr_test in alerts/tests/", path, r.Record)
			}
		}
	}
	if records == 0 {
		t.Fatal("no recording rules found")
	}
}

// Every alert has promtool cases: one where it fires (for each of its severities, with
// labels and annotations) and one where it must not.
func TestEveryAlertIsTested(t *testing.T) {
	type coverage struct {
		firing   map[string]bool // severities seen firing
		silent   bool
		annotate bool
	}
	cov := map[string]*coverage{}
	for _, path := range testFiles(t) {
		var f testFile
		decodeFile(t, path, &f)
		if len(f.RuleFiles) == 0 {
			t.Errorf("%s: no rule_files", path)
		}
		for _, rf := range f.RuleFiles {
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), rf)); err != nil {
				t.Errorf("%s: rule file %s: %v", path, rf, err)
			}
		}
		for _, tc := range f.Tests {
			for _, at := range tc.AlertRuleTest {
				c := cov[at.Alertname]
				if c == nil {
					c = &coverage{firing: map[string]bool{}}
					cov[at.Alertname] = c
				}
				if len(at.ExpAlerts) == 0 {
					c.silent = true
				}
				for _, exp := range at.ExpAlerts {
					c.firing[exp.ExpLabels["severity"]] = true
					if exp.ExpAnnotations["summary"] != "" && exp.ExpAnnotations["description"] != "" && exp.ExpAnnotations["runbook_url"] != "" {
						c.annotate = true
					}
				}
			}
		}
	}
	defined := map[string]bool{}
	for _, rs := range rules(t) {
		for _, r := range rs {
			if r.Alert == "" {
				continue
			}
			defined[r.Alert] = true
			c := cov[r.Alert]
			switch {
			case c == nil:
				t.Errorf("%s has no promtool test in alerts/tests/", r.Alert)
			case !c.firing[r.Labels["severity"]]:
				t.Errorf("%s (severity %s) is never expected to fire in alerts/tests/", r.Alert, r.Labels["severity"])
			case !c.silent:
				t.Errorf("%s has no case where it must not fire (below the `for`, resolved, absent data)", r.Alert)
			case !c.annotate:
				t.Errorf("%s: no firing case checks summary, description and runbook_url", r.Alert)
			}
		}
	}
	for name := range cov {
		if !defined[name] {
			t.Errorf("alerts/tests/ tests %s, which no rule file defines", name)
		}
	}
}

// Every alert and severity has its row in the runbook's table of knobs.
func TestKnobsAreDocumented(t *testing.T) {
	data, err := os.ReadFile(runbookPath)
	if err != nil {
		t.Fatal(err)
	}
	_, knobs, ok := strings.Cut(string(data), "\n## Knobs\n")
	if !ok {
		t.Fatalf("%s has no \"## Knobs\" section", runbookPath)
	}
	knobs, _, _ = strings.Cut(knobs, "\n## ")
	rows := map[string]bool{}
	for _, line := range strings.Split(knobs, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		rows[name+"/"+strings.TrimSpace(cells[2])] = true
	}
	for _, rs := range rules(t) {
		for _, r := range rs {
			if r.Alert != "" && !rows[r.Alert+"/"+r.Labels["severity"]] {
				t.Errorf("%s (%s) has no row in the Knobs table of %s", r.Alert, r.Labels["severity"], runbookPath)
			}
		}
	}
}

// runbookAnchors returns the GitHub anchors of the runbook's headings.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(runbookPath)
	if err != nil {
		t.Fatal(err)
	}
	return testsupport.HeadingAnchors(string(data))
}
