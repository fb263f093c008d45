package demo

import (
	"net/url"
	"strconv"

	"gopkg.in/yaml.v3"
)

// scrapeInterval is short, so that graphs move while one watches: the demo's
// Prometheus scrapes and evaluates the rules every 2 s (15 s is usual in production).
const scrapeInterval = "2s"

// prometheusConfig scrapes both daemons under the job names the alert rules select,
// and Prometheus and Alertmanager themselves; it loads the project's rules and sends
// alerts to alertmanager (none when empty).
func prometheusConfig(exporter, collector, self, alertmanager, rules string) ([]byte, error) {
	job := func(name, target string) map[string]any {
		return map[string]any{"job_name": name, "static_configs": []any{map[string]any{"targets": []string{target}}}}
	}
	cfg := map[string]any{
		"global": map[string]any{
			"scrape_interval":     scrapeInterval,
			"scrape_timeout":      scrapeInterval,
			"evaluation_interval": scrapeInterval,
		},
		"rule_files": []string{rules},
		"scrape_configs": []any{
			job("mongosync_exporter", exporter),
			job("oplog_collector", collector),
			job("prometheus", self),
		},
	}
	if alertmanager != "" {
		cfg["alerting"] = map[string]any{"alertmanagers": []any{map[string]any{
			"static_configs": []any{map[string]any{"targets": []string{alertmanager}}},
		}}}
		cfg["scrape_configs"] = append(cfg["scrape_configs"].([]any), job("alertmanager", alertmanager))
	}
	return yaml.Marshal(cfg)
}

// keyQueries are the graphs the demo points at first.
var keyQueries = []struct{ title, expr string }{
	{"copy progress of the migration (0 to 1)", `migration:mongosync_collection_copy_progress:ratio`},
	{"lag of each mongosync (s)", `mongosync_lag_seconds`},
	{"phase of each mongosync", `mongosync_phase == 1`},
	{"verifier generation", `migration_verifier_generation`},
	{"verifier mismatches, by kind", `migration_verifier_mismatches`},
	{"capture lag of the oplog collector (s)", `source_cluster:oplog_capture_lag:seconds`},
	{"recovery window of the oplog store (s)", `source_cluster:oplog_capture_window:seconds`},
	{"alerts pending or firing", `ALERTS`},
}

// graphURL is a Prometheus page with one graph per key query, over the last 30 minutes.
func graphURL(prometheus string) string {
	q := url.Values{}
	for i, k := range keyQueries {
		p := "g" + strconv.Itoa(i) + "."
		q.Set(p+"expr", k.expr)
		q.Set(p+"tab", "0") // the graph, not the table
		q.Set(p+"range_input", "30m")
	}
	return "http://" + prometheus + "/graph?" + q.Encode()
}
