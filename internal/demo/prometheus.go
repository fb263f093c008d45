package demo

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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

// startPrometheus starts Alertmanager and Prometheus when they are installed, and waits
// until Prometheus has scraped both daemons.
func (d *demo) startPrometheus(ctx context.Context) error {
	prometheus, err := exec.LookPath("prometheus")
	if err != nil {
		d.printf("  Prometheus: not installed (Debian: apt-get install prometheus prometheus-alertmanager; or https://prometheus.io/download/).\n" +
			"    Without it the demo runs the rest; scrape the two daemons below yourself.\n")
		return nil
	}
	alertmanager, err := lookPathAny("prometheus-alertmanager", "alertmanager") // Debian's name, then upstream's
	if err != nil {
		d.printf("  Alertmanager: not installed (Debian: apt-get install prometheus-alertmanager); alerts show in Prometheus only.\n")
	} else {
		if d.alertmgr, err = d.startChild("alertmanager", alertmanager,
			"--config.file="+filepath.Join(d.opts.RepoDir, "deploy", "alertmanager", "alertmanager.yml"),
			"--storage.path="+filepath.Join(d.dir, "alertmanager"), "--web.listen-address="+d.opts.AlertmanagerAddress,
			"--cluster.listen-address="); err != nil {
			return err
		}
		d.alertmgrAddr = d.alertmgr.addr()
	}
	rules, err := filepath.Abs(filepath.Join(d.opts.RepoDir, "alerts", "*.yml"))
	if err != nil {
		return err
	}
	if matches, _ := filepath.Glob(rules); len(matches) == 0 {
		return fmt.Errorf("no rule files %s: give --repo the repository's directory", rules)
	}
	// Prometheus scrapes itself, so it must know its address before it starts: take a
	// free port when asked for any.
	promAddr, err := resolvePort(d.opts.PrometheusAddress)
	if err != nil {
		return err
	}
	cfg, err := prometheusConfig(d.exporter.addr(), d.collector.addr(), promAddr, d.alertmgrAddr, rules)
	if err != nil {
		return err
	}
	configFile := filepath.Join(d.dir, "prometheus.yml")
	if err := os.WriteFile(configFile, cfg, 0o600); err != nil {
		return err
	}
	if d.prometheus, err = d.startChild("prometheus", prometheus, "--config.file="+configFile,
		"--storage.tsdb.path="+filepath.Join(d.dir, "prometheus"), "--web.listen-address="+promAddr); err != nil {
		return err
	}
	d.promAddr = promAddr
	if err := d.awaitReady(ctx, d.prometheus); err != nil {
		return err
	}
	return d.awaitScraped(ctx)
}

func lookPathAny(names ...string) (string, error) {
	var err error
	for _, name := range names {
		var path string
		if path, err = exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", err
}

// resolvePort replaces port 0 with a free port.
func resolvePort(address string) (string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil || port != "0" {
		return address, err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// awaitScraped waits until Prometheus has scraped both daemons successfully.
func (d *demo) awaitScraped(ctx context.Context) error {
	url := "http://" + d.promAddr + `/api/v1/query?query=count(up{job=~"mongosync_exporter|oplog_collector"}==1)`
	deadline := time.Now().Add(time.Minute)
	for {
		status, body := get(ctx, url)
		if status == http.StatusOK && strings.Contains(body, `"2"]`) {
			return nil
		}
		if d.prometheus.exited() {
			return d.prometheus.failure()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the demo's Prometheus has not scraped both daemons within a minute (see its targets page, http://%s/targets): %s", d.promAddr, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
