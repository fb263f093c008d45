package e2e

import (
	"context"
	"fmt"
	"maps"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/dashboardtest"
	vf "github.com/mongomigrate/observability/internal/verifierfixture"
)

// TestEndToEnd runs the whole project as a user would: mongotestd (the test MongoDB
// server) holding a migration-verifier's metadata, the collectors' heartbeats, a source
// under a steady write load and the oplog store; a mongosync stand-in answering with
// recorded progress replies; mongosync_exporter and oplog_collector on one config.yml;
// a real Prometheus scraping both every second with the project's recording rules and a
// time-compressed copy of its alerting rules (every `for` cut to seconds, every range and
// offset from minutes to seconds); a real Alertmanager notifying a webhook served by the
// test. It proves that both /metrics pass `promtool check metrics`, that every dashboard
// panel query returns data, that each scripted fault makes its alert reach the webhook
// firing, with the right labels, and then resolved once the fault is cleared, and that the
// overview's go/no-go turns GO only once every blocker has cleared and shows No data, never
// a stale GO, when the exporter is killed.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a full run (-short was given): it builds both binaries and runs Prometheus and Alertmanager for a minute or two, too slow for -short; run go test without -short")
	}
	tools := requireTools(t)
	s := startStack(t, tools)

	t.Run("targets", s.testTargets)
	t.Run("rules", s.testRules)
	t.Run("dashboards", s.testDashboards)
	t.Run("promtool check metrics", func(t *testing.T) { s.testCheckMetrics(t, tools["promtool"]) })
	t.Run("faults", func(t *testing.T) {
		t.Run("mongosync lag raised", s.faultMongosyncLag)
		t.Run("verifier mismatch written", s.faultVerifierMismatch)
		t.Run("collector killed", s.faultCollectorKilled)
		t.Run("resume headroom used up on a shard", s.faultHeadroomLow)
		t.Run("resume token made unrecoverable", s.faultResumeTokenLost)
	})
	t.Run("cutover", func(t *testing.T) {
		t.Cleanup(func() {
			s.mongosync.reset()
			s.verifier.setPhase("recheck")
		})
		t.Run("go/no-go through every blocker", s.testGoNoGo)
		t.Run("exporter killed: no stale GO", s.faultExporterKilled)
		t.Run("commit hangs", s.faultCommitHangs)
		t.Run("committed, not writable", s.faultCommittedNotWritable)
		t.Run("target down is silent once committed", s.testTargetDownAfterCommit)
	})
	t.Run("nothing unexpected", s.testNothingUnexpected)
}

// Both binaries are scraped successfully.
func (s *stack) testTargets(t *testing.T) {
	eventually(t, waitTimeout, "Prometheus to scrape both binaries successfully", func() (bool, string) {
		targets, err := s.prom.targets(t.Context())
		if err != nil {
			return false, err.Error()
		}
		up := map[string]bool{}
		var states []string
		for _, tg := range targets {
			up[tg.Labels["job"]] = tg.Health == "up"
			states = append(states, fmt.Sprintf("%s %s: %s %s", tg.Labels["job"], tg.Labels["instance"], tg.Health, tg.LastError))
		}
		return up["mongosync_exporter"] && up["oplog_collector"], strings.Join(states, "; ")
	})
}

// Prometheus loaded every rule of alerts.yml and recording.yml, and each evaluates
// without error.
func (s *stack) testRules(t *testing.T) {
	records, err := countRecordingRules(recordingFile)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, waitTimeout, "every rule to evaluate without error", func() (bool, string) {
		rules, err := s.prom.rules(t.Context())
		if err != nil {
			return false, err.Error()
		}
		var alerting, recording int
		var bad []string
		for _, r := range rules {
			if r.Type == "alerting" {
				alerting++
			} else {
				recording++
			}
			if r.Health != "ok" {
				bad = append(bad, fmt.Sprintf("%s: %s %s", r.Name, r.Health, r.LastError))
			}
		}
		if alerting != len(s.alertRules) || recording != records {
			return false, fmt.Sprintf("Prometheus has %d alerting and %d recording rules, the files %d and %d", alerting, recording, len(s.alertRules), records)
		}
		return len(bad) == 0, strings.Join(bad, "; ")
	})
}

// dashboardVarSets are the values given to the dashboards' variables, as a user would
// pick them: every variable is used as a regular expression, and ".*" is what Grafana
// sends for "All" (job and instance, which have no custom all value, are set apart by
// allVars); then one value each where one value feeds every panel (the capture
// dashboard's source is this project's collector, so the heartbeat panels must not be fed
// by the old collector's document alone; the verifiers are labelled with no migration,
// so the verification dashboard's migration is All). $__rate_interval is Grafana's
// max(4 × scrape interval, step + scrape interval): a few seconds here.
var dashboardVarSets = []struct {
	name string
	vars map[string]string
	// byDashboard overrides vars on one dashboard (by uid).
	byDashboard map[string]map[string]string
}{
	{"All", map[string]string{
		"migration": ".*", "mongosync": ".*", "verifier": ".*",
		"source_cluster": ".*", "metadata": ".*", "__rate_interval": "10s",
	}, nil},
	{"one value", map[string]string{
		"migration": migration, "mongosync": "shard0", "verifier": ".*",
		"source_cluster": sourceName, "metadata": "central", "__rate_interval": "10s",
	}, map[string]map[string]string{"mongo-migration-verification": {"migration": ".*"}}},
}

// varsFor returns the variables of set for dashboard uid, with job and instance on All
// (all, from allVars).
func varsFor(set map[string]string, byDashboard map[string]map[string]string, uid string, all map[string]string) map[string]string {
	vars := maps.Clone(set)
	maps.Copy(vars, byDashboard[uid])
	maps.Copy(vars, all)
	return vars
}

// allVars returns the job and instance variables of dashboard uid (those without custom
// all value, whatever their names) as Grafana sends them on All: the regular expression
// of the values their queries find over the dashboard's time range (the last hour here),
// those of a target that has just died included.
func (s *stack) allVars(t *testing.T, uid string) map[string]string {
	t.Helper()
	ds, err := dashboardtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	vars := maps.Clone(dashboardVarSets[0].vars)
	all := map[string]string{}
	for _, d := range ds {
		if d.UID != uid {
			continue
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" || v.AllValue != "" {
				continue
			}
			m := labelValues.FindStringSubmatch(strings.TrimSpace(v.QueryString()))
			if m == nil {
				t.Fatalf("%s: variable %s: query %q is not label_values(selector, label)", uid, v.Name, v.QueryString())
			}
			samples, err := s.prom.query(context.Background(), fmt.Sprintf("count by (%s) (last_over_time(%s[1h]))", m[2], dashboardtest.Expand(m[1], vars)))
			if err != nil {
				t.Fatalf("%s: values of variable %s: %v", uid, v.Name, err)
			}
			var values []string
			for _, sample := range samples {
				// Escaped as a regular expression, then for a PromQL string, as Grafana does.
				values = append(values, strings.ReplaceAll(regexp.QuoteMeta(sample.Metric[m[2]]), `\`, `\\`))
			}
			slices.Sort(values)
			vars[v.Name] = "(" + strings.Join(values, "|") + ")"
			all[v.Name] = vars[v.Name]
		}
	}
	return all
}

// notExported are the dashboard queries ("dashboard uid / panel / refId") that read a
// metric the binaries may not export yet (the rules and dashboards are written against it
// first), by that metric.
var notExported = map[string]string{
	"mongo-migration-verification / Verifiers / E":                 "migration_verifier_done",
	"mongo-migration-verification / Done / A":                      "migration_verifier_done",
	"mongo-migration-verification / Namespaces / B":                "migration_verifier_namespace_mismatches",
	"mongo-migration-verification / Mismatches per generation / A": "migration_verifier_generation_mismatches",
	"mongo-migration-verification / Newest change seen / A":        "migration_verifier_last_change_timestamp_seconds",
}

// noDataExpected lists the dashboard queries that cannot return data in this setup, with
// the reason: those of notExported whose metric Prometheus has no series of. A query
// listed here that returns data fails the test, so the list stays true.
func (s *stack) noDataExpected(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for key, metric := range notExported {
		samples, err := s.prom.query(t.Context(), "count("+metric+")")
		if err != nil {
			t.Fatal(err)
		}
		if len(samples) == 0 {
			out[key] = metric + ": not exported by this build"
		}
	}
	return out
}

var unexpanded = regexp.MustCompile(`\$\{?[A-Za-z_]\w*|\[\[\w+\]\]`)

// Every panel query of every dashboard returns at least one sample once data has flowed,
// and every template variable's query finds values.
func (s *stack) testDashboards(t *testing.T) {
	queries, err := dashboardtest.Queries()
	if err != nil {
		t.Fatal(err)
	}
	if len(queries) == 0 {
		t.Fatal("no dashboard queries")
	}
	all := map[string]map[string]string{}
	for _, uid := range dashboardtest.UIDs {
		all[uid] = s.allVars(t, uid)
	}
	var checks []check
	for _, set := range dashboardVarSets {
		for _, q := range queries {
			key := queryKey(q)
			expr := dashboardtest.Expand(q.Expr, varsFor(set.vars, set.byDashboard, q.Dashboard, all[q.Dashboard]))
			if m := unexpanded.FindString(expr); m != "" {
				t.Errorf("%s: variable %s is not one the test knows (add it to dashboardVarSets): %s", key, m, expr)
				continue
			}
			checks = append(checks, check{key: key, set: set.name, expr: expr})
		}
	}
	noDataExpected := s.noDataExpected(t)
	for key := range noDataExpected {
		if !slices.ContainsFunc(queries, func(q dashboardtest.Query) bool { return queryKey(q) == key }) {
			t.Errorf("noDataExpected lists %q, which is no dashboard query", key)
		}
	}
	checks = append(checks, s.variableChecks(t, all)...)

	empty := map[string][]string{} // key -> why, for each set of variables without data
	eventually(t, waitTimeout, "every dashboard query to return data", func() (bool, string) {
		clear(empty)
		for _, c := range checks {
			samples, err := s.prom.query(t.Context(), c.expr)
			switch {
			case err != nil && strings.Contains(err.Error(), "parse error"):
				t.Fatalf("%s: %v\n%s", c.key, err, c.expr)
			case err != nil:
				empty[c.key] = append(empty[c.key], err.Error())
			case len(samples) == 0:
				empty[c.key] = append(empty[c.key], fmt.Sprintf("(variables: %s) %s", c.set, c.expr))
			}
		}
		var missing []string
		for key, why := range empty {
			if _, ok := noDataExpected[key]; !ok {
				missing = append(missing, key+": "+strings.Join(why, "; "))
			}
		}
		slices.Sort(missing)
		return len(missing) == 0, fmt.Sprintf("%d queries (of %d checked) return no data:\n  %s", len(missing), len(checks), strings.Join(missing, "\n  "))
	})
	for key, reason := range noDataExpected {
		if len(empty[key]) < len(dashboardVarSets) {
			t.Errorf("%s returns data, yet noDataExpected says it cannot (%s): remove it from the list", key, reason)
		} else {
			t.Logf("no data, as expected: %s: %s", key, reason)
		}
	}
	t.Logf("%d dashboard panel queries and variable queries checked, with %d sets of variables", len(checks), len(dashboardVarSets))
}

func queryKey(q dashboardtest.Query) string {
	return fmt.Sprintf("%s / %s / %s", q.Dashboard, q.Panel, q.RefID)
}

// check is one query the dashboards run, named "dashboard uid / panel / refId", with the
// variables of set substituted.
type check struct{ key, set, expr string }

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// variableChecks turns every query variable (label_values(selector, label)) into a
// PromQL query that returns one sample per value the variable offers.
func (s *stack) variableChecks(t *testing.T, all map[string]map[string]string) []check {
	ds, err := dashboardtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	var out []check
	for _, d := range ds {
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			m := labelValues.FindStringSubmatch(strings.TrimSpace(v.QueryString()))
			if m == nil {
				t.Errorf("%s: variable %s: query %q is not label_values(selector, label)", d.UID, v.Name, v.QueryString())
				continue
			}
			for _, set := range dashboardVarSets {
				out = append(out, check{
					key:  fmt.Sprintf("%s / variable %s", d.UID, v.Name),
					set:  set.name,
					expr: fmt.Sprintf("count by (%s) (%s)", m[2], dashboardtest.Expand(m[1], varsFor(set.vars, set.byDashboard, d.UID, all[d.UID]))),
				})
			}
		}
	}
	return out
}

// promtool check metrics passes on both binaries' /metrics, once data has flowed.
func (s *stack) testCheckMetrics(t *testing.T, promtool string) {
	for name, target := range map[string]struct {
		addr string
		as   *login
	}{"mongosync_exporter": {s.exporterAddr, nil}, "oplog_collector": {s.collectorAddr, s.collectorLogin}} {
		text, err := scrape(t.Context(), target.addr, target.as)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics on %s's /metrics: %v\n%s", name, err, out)
		}
		if strings.Contains(text, "hunter2") {
			t.Errorf("%s's /metrics shows the password of a connection string in the heartbeat documents", name)
		}
	}
}

// The fault script covers MongosyncLagHigh, MigrationVerifierMismatchesFound,
// OplogCaptureDown, OplogCaptureResumeHeadroomLow, OplogCollectorResumeTokenLost (and the
// window alert after its reset),
// MongosyncExporterDown, MongosyncCommittingTooLong and MongosyncCommittedNotWritable.
// Every alert has its promtool unit tests (alerts/tests/).

// fault is one scripted fault: inject makes the alerts fire, clear resolves them.
type fault struct {
	alerts        []map[string]string // exact label sets of the alerts that must fire
	inject, clear func(t *testing.T)
}

// run checks the alerts exist in alerts.yml and are not firing, injects the fault,
// waits for every alert to reach the webhook firing (with its annotations filled in),
// clears the fault and waits for each to reach the webhook resolved.
func (s *stack) run(t *testing.T, f fault) {
	t.Helper()
	for _, labels := range f.alerts {
		s.checkRuleUsable(t, labels["alertname"], labels["severity"])
		if s.firing(t, labels) {
			t.Fatalf("%v is firing before the fault: a fault must make it fire, not find it firing", labels)
		}
	}
	since := s.webhook.mark()
	// Should the test fail before the fault is cleared, clear it anyway, so that the
	// next faults start from a sound stack (such as a running collector). Clearing runs
	// after t.Context() is canceled then: it must not use it.
	cleared := false
	t.Cleanup(func() {
		if !cleared {
			cleared = true
			f.clear(t)
		}
	})
	f.inject(t)
	for _, labels := range f.alerts {
		n := s.webhook.await(t, since, "firing", labels, waitTimeout)
		checkAnnotations(t, n)
		t.Logf("fired: %s", n)
	}
	// Still firing when the fault is cleared, so the resolution that follows is the
	// clearing's doing (not a glitch's, such as a failed scrape).
	for _, labels := range f.alerts {
		eventually(t, waitTimeout, fmt.Sprintf("Prometheus to have %v firing", labels), func() (bool, string) {
			return s.firing(t, labels), "not firing"
		})
	}
	since = s.webhook.mark()
	cleared = true
	f.clear(t)
	for _, labels := range f.alerts {
		n := s.webhook.await(t, since, "resolved", labels, waitTimeout)
		t.Logf("resolved: %s", n)
	}
}

// firing says whether Prometheus has the alert with exactly these labels firing.
func (s *stack) firing(t *testing.T, labels map[string]string) bool {
	t.Helper()
	var sel []string
	for k, v := range labels {
		sel = append(sel, fmt.Sprintf("%s=%q", k, v))
	}
	samples, err := s.prom.query(t.Context(), fmt.Sprintf(`ALERTS{alertstate="firing",%s}`, strings.Join(sel, ",")))
	if err != nil {
		t.Fatal(err)
	}
	for _, sample := range samples {
		delete(sample.Metric, "__name__")
		delete(sample.Metric, "alertstate")
		if maps.Equal(sample.Metric, labels) {
			return true
		}
	}
	return false
}

// checkRuleUsable fails when alerts.yml has no such alert.
func (s *stack) checkRuleUsable(t *testing.T, name, severity string) {
	t.Helper()
	for _, r := range s.alertRules {
		if r.name == name && r.severity == severity {
			return
		}
	}
	t.Fatalf("alerts.yml has no alert %s with severity %s", name, severity)
}

func checkAnnotations(t *testing.T, n notification) {
	t.Helper()
	name := n.Labels["alertname"]
	for _, key := range []string{"summary", "description", "runbook_url"} {
		v := n.Annotations[key]
		if v == "" || strings.Contains(v, "{{") || strings.Contains(v, "<no value>") {
			t.Errorf("%s: annotation %s is %q", name, key, v)
		}
	}
	if want := "#" + strings.ToLower(name); !strings.HasSuffix(n.Annotations["runbook_url"], want) {
		t.Errorf("%s: runbook_url %q does not point at the runbook's section %s", name, n.Annotations["runbook_url"], want)
	}
}

// mongosync lag raised above the threshold (60 s) on one instance in change event
// application, and growing: MongosyncLagHigh fires for that instance; the lag back to 5 s
// resolves it.
func (s *stack) faultMongosyncLag(t *testing.T) {
	s.run(t, fault{
		alerts: []map[string]string{{
			"alertname": "MongosyncLagHigh", "severity": "warning",
			"job": "mongosync_exporter", "instance": s.exporterAddr,
			"migration": migration, "mongosync": "shard0",
		}},
		inject: func(t *testing.T) { s.mongosync.setLag("shard0", 120) },
		clear:  func(t *testing.T) { s.mongosync.setLag("shard0", 0) },
	})
}

// The recheck of generation 2 found mismatches (written while the verifier is in
// generation 3): MigrationVerifierMismatchesFound fires for each kind; deleting them
// resolves it.
func (s *stack) faultVerifierMismatch(t *testing.T) {
	labels := func(kind string) map[string]string {
		l := map[string]string{
			"alertname": "MigrationVerifierMismatchesFound", "severity": "warning",
			"job": "mongosync_exporter", "instance": s.exporterAddr,
			"verifier": "recheck", "kind": kind,
		}
		if s.verifierMigration {
			l["migration"] = migration
		}
		return l
	}
	mismatches := s.client.Database(verifierRecheckDB).Collection("mismatches")
	s.run(t, fault{
		alerts: []map[string]string{labels("missing_on_destination"), labels("content")},
		inject: func(t *testing.T) {
			f := vf.Fixture{DB: s.client.Database(verifierRecheckDB), Now: time.Now()}
			if err := f.Mismatches(t.Context(), recheckMismatches...); err != nil {
				t.Fatal(err)
			}
		},
		clear: func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := mismatches.DeleteMany(ctx, bson.D{{Key: "generation", Value: int32(2)}})
			if err != nil {
				t.Fatal(err)
			}
			if res.DeletedCount != int64(len(recheckMismatches)) {
				t.Fatalf("deleted %d mismatches, wrote %d", res.DeletedCount, len(recheckMismatches))
			}
		},
	})
}

// oplog_collector killed (SIGKILL): Prometheus cannot scrape it and OplogCaptureDown
// fires; started again on the same address, it resolves.
func (s *stack) faultCollectorKilled(t *testing.T) {
	s.run(t, fault{
		alerts: []map[string]string{{
			"alertname": "OplogCaptureDown", "severity": "critical",
			"job": "oplog_collector", "instance": s.collectorAddr,
		}},
		inject: func(t *testing.T) {
			s.collector.kill()
			if !s.collector.exited() {
				t.Fatal("oplog_collector is still running after SIGKILL")
			}
			if ws, ok := s.collector.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("oplog_collector ended with %v, not by SIGKILL", s.collector.waitErr)
			}
		},
		clear: func(t *testing.T) {
			s.startCollector(t, s.collectorAddr)
			s.awaitCollectorState(t, "running")
		},
	})
}

// oplog_collector stopped (SIGTERM: it saves its resume token), then more events written
// than mongotestd's history holds, then started again: its token is gone from the
// history, the source goes to error_resume_token_lost and OplogCollectorResumeTokenLost
// fires. `oplog_collector reset` recovers the source, and the alert resolves; the reset
// is a gap, so the restore window starts after it and OplogCaptureWindowBelowRetention
// fires (the store refills for the retention's length).
func (s *stack) faultResumeTokenLost(t *testing.T) {
	since := s.webhook.mark()
	var reset time.Time
	s.run(t, fault{
		alerts: []map[string]string{{
			"alertname": "OplogCollectorResumeTokenLost", "severity": "critical",
			"job": "oplog_collector", "instance": s.collectorAddr,
			"source_cluster": sourceName, "state": "error_resume_token_lost",
		}},
		inject: func(t *testing.T) {
			s.awaitCollectorState(t, "running")
			if err := s.collector.stop(syscall.SIGTERM, time.Minute); err != nil {
				t.Fatalf("oplog_collector on SIGTERM: %v", err)
			}
			if err := burst(t.Context(), s.client, 3*mongoHistory); err != nil {
				t.Fatal(err)
			}
			s.startCollector(t, s.collectorAddr)
			s.awaitCollectorState(t, "error_resume_token_lost")
		},
		clear: func(t *testing.T) {
			reset = time.Now().Truncate(time.Second)
			out, err := exec.Command(s.bin["oplog_collector"], "reset", "--source", sourceName, "--yes",
				"--collector.url", "http://"+s.collectorAddr, "--http.config.file", s.collectorLogin.httpConfig).CombinedOutput()
			if err != nil {
				t.Fatalf("oplog_collector reset: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "done by the collector at") {
				t.Errorf("oplog_collector reset did not go through the running collector:\n%s", out)
			}
			s.awaitCollectorState(t, "running")
			before := s.capturedEvents(t)
			eventually(t, waitTimeout, "the source to be captured again after the reset", func() (bool, string) {
				after := s.capturedEvents(t)
				return after > before, fmt.Sprintf("inserts persisted: %v once running again, %v now", before, after)
			})
		},
	})
	// The lost token, then the reset, left a gap: a restore reaches back to where capture
	// started again only, and the window alert says so.
	window := map[string]string{
		"alertname": "OplogCaptureWindowBelowRetention", "severity": "warning",
		"job": "oplog_collector", "instance": s.collectorAddr, "source_cluster": sourceName,
	}
	checkAnnotations(t, s.webhook.await(t, since, "firing", window, waitTimeout))
	restoreFrom := s.panelQuery(t, "mongo-oplog-capture", "Restore from", "A")
	eventually(t, waitTimeout, "Restore from to be after the reset, with the window alert firing", func() (bool, string) {
		v, ok := s.single(t, restoreFrom)
		firing := s.firing(t, window)
		return ok && v >= float64(reset.UnixMilli()) && firing, fmt.Sprintf("Restore from %v ms, reset at %d ms; alert firing %v", v, reset.UnixMilli(), firing)
	})
}

// capturedEvents is the collector's count of inserts persisted for the source (0 while
// the series does not exist).
func (s *stack) capturedEvents(t *testing.T) float64 {
	t.Helper()
	text, err := scrape(context.Background(), s.collectorAddr, s.collectorLogin)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := metricValue(text, fmt.Sprintf(`oplog_capture_events_total{op_type="insert",source_cluster=%q}`, sourceName))
	if !ok {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatalf("oplog_capture_events_total: %v", err)
	}
	return f
}

// No alert reached the webhook where none belongs, the stand-ins only ever received
// GET /api/v1/progress, and the write load ran without error.
func (s *stack) testNothingUnexpected(t *testing.T) {
	names := map[string]int{}
	for _, n := range s.webhook.all() {
		names[n.Labels["alertname"]+" "+n.Status]++
		switch {
		case n.Labels["alertname"] == "MongosyncLagHigh" && n.Labels["mongosync"] != "shard0":
			t.Errorf("MongosyncLagHigh for an instance whose lag stayed low: %s", n)
		case n.Labels["alertname"] == "MigrationVerifierMismatchesFound" && n.Labels["verifier"] != "recheck":
			t.Errorf("MigrationVerifierMismatchesFound for a verifier in its initial check (generation 0): %s", n)
		case strings.HasSuffix(n.Labels["alertname"], "Absent"):
			t.Errorf("%s although both daemons were scraped under their usual job names (a killed one is Down, not absent): %s", n.Labels["alertname"], n)
		}
	}
	t.Logf("notifications received, by alert and status: %v", names)
	s.webhook.mu.Lock()
	if len(s.webhook.problems) > 0 {
		t.Errorf("malformed notifications: %v", s.webhook.problems)
	}
	s.webhook.mu.Unlock()
	if r := s.mongosync.unexpectedRequests(); len(r) > 0 {
		t.Errorf("the mongosync stand-in received %v; the exporter must only GET /api/v1/progress", r)
	}
	if r := s.verifier.unexpectedRequests(); len(r) > 0 {
		t.Errorf("the verifier API stand-in received %v; the exporter must only GET /api/v1/progress", r)
	}
	// For the record (a loaded machine may make a scraper miss the scrape deadline,
	// which is not the exporter's fault): how the exporter's scrapes went.
	for what, q := range map[string]string{
		"failed scrapes of mongosync_exporter":  `count_over_time(up{job="mongosync_exporter"}[1h]) - sum_over_time(up{job="mongosync_exporter"}[1h])`,
		"slowest scrape, by scraper (s)":        `max_over_time(mongosync_exporter_collector_duration_seconds[1h])`,
		"scrapes past the deadline, by scraper": `count_over_time(mongosync_exporter_collector_success[1h]) - sum_over_time(mongosync_exporter_collector_success[1h])`,
	} {
		samples, err := s.prom.query(t.Context(), q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		var values []string
		for _, sample := range samples {
			values = append(values, fmt.Sprintf("%s %v", sample.Metric["collector"], sample.Value[1]))
		}
		t.Logf("%s: %v", what, values)
	}
	if err := s.writer.err(); err != nil {
		t.Errorf("the write load on the source failed: %v", err)
	}
	if s.writer.writes.Load() == 0 {
		t.Error("the write load wrote nothing")
	}
}
