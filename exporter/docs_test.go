package exporter

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mongomigrate/observability/internal/testsupport"

	"github.com/prometheus/client_golang/prometheus"
)

const metricsDoc = "../docs/metrics.md"

// docTableRows returns the cells of the markdown table rows under the heading that
// starts with heading, up to the next heading.
func docTableRows(t *testing.T, heading string) [][]string {
	t.Helper()
	data, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			in = strings.HasPrefix(strings.TrimLeft(line, "# "), heading)
			continue
		}
		if !in || !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") {
			continue
		}
		rows = append(rows, testsupport.TableRow(line))
	}
	if len(rows) < 2 {
		t.Fatalf("%s has no table under %q", metricsDoc, heading)
	}
	return rows[1:] // without the header row
}

var (
	fqName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	codeSpan = regexp.MustCompile("`([^`]+)`")
)

// The metrics of each scraper, as docs/metrics.md must list them.
var (
	mongosyncDescs = []*prometheus.Desc{
		mongosyncUp, mongosyncInfo, mongosyncState, mongosyncPhase, mongosyncCEAStage, mongosyncCanCommit,
		mongosyncCanWrite, mongosyncLag, mongosyncCRUDLag, mongosyncDDLLag, mongosyncCopyTotal, mongosyncCopied,
		mongosyncEvents, mongosyncCatchup, mongosyncOplogLeft, mongosyncWarnings, mongosyncPing, mongosyncPingFail,
		mongosyncIdxBuilt, mongosyncIdxTotal, mongosyncIdxCollsDone, mongosyncIdxCollsTotal, mongosyncVerifPhase,
		mongosyncVerifHashed, mongosyncVerifEstimate, mongosyncVerifScanned, mongosyncVerifTotal, mongosyncVerifLag,
	}
	verifierDescs = []*prometheus.Desc{
		verifierUp, verifierAPIUp, verifierTotalsRead, verifierMetadataVersion, verifierGeneration, verifierPhase, verifierDone, verifierTasks, verifierMalformed,
		verifierDocsCompared, verifierDocsToCompare, verifierBytesCompared, verifierBytesToCompare,
		verifierInitDocsDone, verifierInitDocsToDo, verifierInitBytesDone, verifierInitBytesToDo,
		verifierMismatches, verifierNamespaceCounts, verifierGenerationCount, verifierNamespaces, verifierNamespaceBad, verifierNamespacesLeft,
		verifierChangeEvents, verifierChangeTypesLeft, verifierChangeLag, verifierChangeBuffer, verifierChangeRate, verifierRechecks,
		verifierLastRechecked, verifierLastChange, verifierOldestTask, verifierLongestMismatch,
	}
	heartbeatDescs = []*prometheus.Desc{heartbeatMetadataUp, heartbeatOmitted, heartbeatStatus, heartbeatLastReport, heartbeatLastOplog, heartbeatFirstOplog, heartbeatSourceOplogOldest, heartbeatError}
)

// docs/metrics.md is the contract: each scraper's section lists exactly its metrics.
func TestMetricsDocListsEveryMetric(t *testing.T) {
	for heading, descs := range map[string][]*prometheus.Desc{
		"mongosync (":            mongosyncDescs,
		"migration-verifier (":   verifierDescs,
		"Collector heartbeats (": heartbeatDescs,
	} {
		var documented []string
		for _, row := range docTableRows(t, heading) {
			for _, name := range strings.Split(row[0], ",") {
				documented = append(documented, strings.Trim(strings.TrimSpace(name), "`"))
			}
		}
		var emitted []string
		for _, d := range descs {
			emitted = append(emitted, fqName.FindStringSubmatch(d.String())[1])
		}
		slices.Sort(documented)
		slices.Sort(emitted)
		if !slices.Equal(documented, emitted) {
			t.Errorf("docs/metrics.md section %q lists\n%v\nthe scraper has\n%v", heading, documented, emitted)
		}
	}
}

// The migration-wide queries of docs/metrics.md, evaluated by the real Prometheus engine
// (promtool test rules) on a two-shard migration: shard0 is the coordinator, copied 300 of
// 1000 bytes, lags 5 s, can commit and write; shard1 copied 100, lags 40 s, cannot commit,
// and reports canWrite 0 (not valid on a non-first instance).
func TestMetricsDocAggregationQueries(t *testing.T) {
	promtool := testsupport.Promtool(t, "evaluating the documented PromQL")
	recording, err := os.ReadFile("../alerts/recording.yml")
	if err != nil {
		t.Fatal(err)
	}
	queries := map[string]string{}
	for _, row := range docTableRows(t, "Migration-wide figures") {
		spans := codeSpan.FindAllStringSubmatch(row[1], -1)
		if len(spans) == 0 {
			t.Fatalf("figure %q has no query", row[0])
		}
		queries[row[0]] = spans[0][1]
		// A recording rule named next to the query must exist.
		if len(spans) > 1 && !strings.Contains(string(recording), "record: "+spans[1][1]) {
			t.Errorf("figure %q names recording rule %s, which alerts/recording.yml lacks", row[0], spans[1][1])
		}
	}
	expected := map[string]string{
		"copy progress (0-1)":                          `{migration="orders"}: 0.4`,
		"lag of the migration":                         `{migration="orders"}: 40`,
		"can the migration commit":                     `{migration="orders"}: 0`,
		"can the application write to the destination": `{migration="orders"}: 1`,
		"events applied per second":                    `{migration="orders"}: 3`,
		"instances down":                               `{migration="orders"}: 1`,
		"state of the migration":                       `{migration="orders",state="RUNNING"}: 2`,
	}
	var tests strings.Builder
	for name, want := range expected {
		query, ok := queries[name]
		if !ok {
			t.Fatalf("docs/metrics.md has no figure %q", name)
		}
		labels, value, _ := strings.Cut(want, ": ")
		fmt.Fprintf(&tests, "  - expr: '%s'\n    eval_time: 10m\n    exp_samples:\n    - labels: '%s'\n      value: %s\n",
			strings.ReplaceAll(query, "'", "''"), labels, value)
	}
	if len(queries) != len(expected) {
		t.Fatalf("docs/metrics.md has %d figures, the test checks %d: add the new one here", len(queries), len(expected))
	}
	shard := func(name string) string { return fmt.Sprintf(`migration="orders",mongosync="%s"`, name) }
	input := []string{
		`mongosync_collection_copy_estimated_copied_bytes{` + shard("shard0") + `}`, "300x10",
		`mongosync_collection_copy_estimated_copied_bytes{` + shard("shard1") + `}`, "100x10",
		`mongosync_collection_copy_estimated_total_bytes{` + shard("shard0") + `}`, "1000x10",
		`mongosync_collection_copy_estimated_total_bytes{` + shard("shard1") + `}`, "1000x10",
		`mongosync_lag_seconds{` + shard("shard0") + `}`, "5x10",
		`mongosync_lag_seconds{` + shard("shard1") + `}`, "40x10",
		`mongosync_can_commit{` + shard("shard0") + `}`, "1x10",
		`mongosync_can_commit{` + shard("shard1") + `}`, "0x10",
		`mongosync_can_write{` + shard("shard0") + `}`, "1x10",
		`mongosync_can_write{` + shard("shard1") + `}`, "0x10",
		`mongosync_info{` + shard("shard0") + `,mongosync_id="shard0",coordinator_id="shard0",source="s",destination="d"}`, "1x10",
		`mongosync_info{` + shard("shard1") + `,mongosync_id="shard1",coordinator_id="shard0",source="s",destination="d"}`, "1x10",
		`mongosync_events_applied_total{` + shard("shard0") + `}`, "0+60x10",
		`mongosync_events_applied_total{` + shard("shard1") + `}`, "0+120x10",
		`mongosync_up{` + shard("shard0") + `}`, "1x10",
		`mongosync_up{` + shard("shard1") + `}`, "1x10",
		`mongosync_up{migration="orders",mongosync="shard2"}`, "0x10",
		`mongosync_state{` + shard("shard0") + `,state="RUNNING"}`, "1x10",
		`mongosync_state{` + shard("shard1") + `,state="RUNNING"}`, "1x10",
		`mongosync_state{` + shard("shard1") + `,state="PAUSED"}`, "0x10",
	}
	var file strings.Builder
	file.WriteString("rule_files: []\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  input_series:\n")
	for i := 0; i < len(input); i += 2 {
		fmt.Fprintf(&file, "  - series: '%s'\n    values: '%s'\n", input[i], input[i+1])
	}
	file.WriteString("  promql_expr_test:\n" + tests.String())
	path := filepath.Join(t.TempDir(), "aggregation_test.yml")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "test", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s\n%s", err, out, file.String())
	}
}
