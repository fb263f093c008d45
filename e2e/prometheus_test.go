package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

const (
	alertsFile    = "../alerts/alerts.yml"
	recordingFile = "../alerts/recording.yml"
	// compressedFor replaces every alert's `for` (minutes in alerts.yml), so that the
	// faults fire in seconds with Prometheus evaluating every second.
	compressedFor = "2s"
	// timeScale divides the ranges and offsets of the alerts' expressions: a minute of
	// history in alerts.yml is a second here, where Prometheus scrapes every second.
	timeScale = 60
)

// ruleFile is a Prometheus rule file; rules keep every key they have.
type ruleFile struct {
	Groups []struct {
		Name     string           `yaml:"name"`
		Interval string           `yaml:"interval,omitempty"`
		Limit    int              `yaml:"limit,omitempty"`
		Rules    []map[string]any `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(path string) (*ruleFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f ruleFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// alertRule is what the test reads of one alerting rule of alerts.yml.
type alertRule struct {
	name, expr, severity string
}

// writeCompressedAlerts writes alerts.yml to dir with every `for` set to compressedFor
// and every range and offset divided by timeScale, thresholds, labels and annotations
// unchanged, and returns its path and its alerting rules.
func writeCompressedAlerts(dir string) (string, []alertRule, error) {
	f, err := readRules(alertsFile)
	if err != nil {
		return "", nil, err
	}
	var rules []alertRule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			name, ok := r["alert"].(string)
			if !ok {
				continue
			}
			if _, ok := r["for"]; !ok {
				return "", nil, fmt.Errorf("%s: alert %s has no `for`", alertsFile, name)
			}
			r["for"] = compressedFor
			raw, _ := r["expr"].(string)
			expr, err := compressDurations(raw)
			if err != nil {
				return "", nil, fmt.Errorf("%s: alert %s: %w", alertsFile, name, err)
			}
			r["expr"] = expr
			labels, _ := r["labels"].(map[string]any)
			severity, _ := labels["severity"].(string)
			rules = append(rules, alertRule{name: name, expr: expr, severity: severity})
		}
	}
	data, err := yaml.Marshal(f)
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, "alerts-compressed.yml")
	return path, rules, os.WriteFile(path, data, 0o644)
}

func countRecordingRules(path string) (int, error) {
	f, err := readRules(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if _, ok := r["record"]; ok {
				n++
			}
		}
	}
	return n, nil
}

// lookBack finds the ranges and offsets of an expression.
var lookBack = regexp.MustCompile(`(\[|offset\s+)(\d+[smhdwy])\b`)

// compressDurations divides the ranges and offsets of expr by timeScale (at least a
// second).
func compressDurations(expr string) (string, error) {
	var bad error
	out := lookBack.ReplaceAllStringFunc(expr, func(m string) string {
		parts := lookBack.FindStringSubmatch(m)
		d, err := model.ParseDuration(parts[2])
		if err != nil {
			bad = err
			return m
		}
		return parts[1] + model.Duration(max(time.Duration(d)/timeScale, time.Second)).String()
	})
	return out, bad
}

func prometheusConfig(exporter, collector string, collectorLogin *login, alertmanager string, ruleFiles ...string) ([]byte, error) {
	cfg := map[string]any{
		"global": map[string]any{
			"scrape_interval":     "1s",
			"scrape_timeout":      "1s",
			"evaluation_interval": "1s",
		},
		"rule_files": ruleFiles,
		"alerting": map[string]any{
			"alertmanagers": []any{map[string]any{
				"static_configs": []any{map[string]any{"targets": []string{alertmanager}}},
			}},
		},
		// The job names are the ones alerts.yml's *Down alerts name.
		"scrape_configs": []any{
			map[string]any{"job_name": "mongosync_exporter", "static_configs": []any{map[string]any{"targets": []string{exporter}}}},
			map[string]any{"job_name": "oplog_collector", "static_configs": []any{map[string]any{"targets": []string{collector}}},
				"basic_auth": map[string]any{"username": collectorLogin.user, "password": collectorLogin.password}},
		},
	}
	return yaml.Marshal(cfg)
}

// alertmanagerConfig routes every alert, each in its own group (group_by: ['...']), to
// the test's webhook, with short waits, and sends resolutions.
func alertmanagerConfig(webhook string) ([]byte, error) {
	cfg := map[string]any{
		"route": map[string]any{
			"receiver":        "test",
			"group_by":        []string{"..."},
			"group_wait":      "1s",
			"group_interval":  "1s",
			"repeat_interval": "1h",
		},
		"receivers": []any{map[string]any{
			"name": "test",
			"webhook_configs": []any{map[string]any{
				"url":           webhook,
				"send_resolved": true,
			}},
		}},
	}
	return yaml.Marshal(cfg)
}

// promAPI queries Prometheus' HTTP API.
type promAPI struct{ base string }

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (p promAPI) get(ctx context.Context, path string, params url.Values, data any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var envelope struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil {
		return fmt.Errorf("%s: %s: %v", path, resp.Status, err)
	}
	if envelope.Status != "success" {
		return fmt.Errorf("%s: %s", path, envelope.Error)
	}
	return json.Unmarshal(envelope.Data, data)
}

// query runs an instant query and returns its samples (a scalar counts as one).
func (p promAPI) query(ctx context.Context, q string) ([]promSample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var out []promSample
		return out, json.Unmarshal(data.Result, &out)
	case "scalar", "string":
		var v [2]any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, err
		}
		return []promSample{{Value: v}}, nil
	default:
		return nil, fmt.Errorf("unexpected result type %q", data.ResultType)
	}
}

type promRule struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

func (p promAPI) rules(ctx context.Context) ([]promRule, error) {
	var data struct {
		Groups []struct {
			Rules []promRule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get(ctx, "/api/v1/rules", url.Values{}, &data); err != nil {
		return nil, err
	}
	var out []promRule
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

type promTarget struct {
	Labels    map[string]string `json:"labels"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
}

func (p promAPI) targets(ctx context.Context) ([]promTarget, error) {
	var data struct {
		ActiveTargets []promTarget `json:"activeTargets"`
	}
	err := p.get(ctx, "/api/v1/targets", url.Values{}, &data)
	return data.ActiveTargets, err
}
