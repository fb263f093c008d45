package e2e

import (
	"context"
	"fmt"
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

// Cutover night, end to end: the overview's Go / no-go and Blockers panels, read with
// the queries and value mappings of the dashboard itself, while the mongosync stand-in
// and the verifier's metadata walk through every blocker.

const overview = "mongo-migration-overview"

// testGoNoGo starts from the recordings' blockers (shard0 cannot commit, reports
// warnings, builds indexes and its embedded verifier is still hashing), adds the others
// (shard1 unreadable, shard0's lag at 45 s, and a mismatch of the verifier labelled with
// the migration), then clears them one at a time: the go/no-go says NO GO, with exactly
// the blockers left, until the last has cleared, and GO then.
func (s *stack) testGoNoGo(t *testing.T) {
	t.Run("verifier blockers", func(t *testing.T) {
		if !s.verifierMigration {
			t.Skip("needs exporter.verifiers[].migration and migration_verifier_done, which this mongosync_exporter does not have: verifier_mismatches and verifier_not_done are left out of the walk below (alerts/tests/cutover.yml tests them with promtool)")
		}
	})
	present := []string{"cannot_commit", "embedded_verifier_not_ready", "index_builds_pending", "warnings"}
	if s.verifierMigration {
		present = append(present, "verifier_not_done")
	}
	s.awaitVerdict(t, "NO GO", present...)

	since := s.webhook.mark()
	s.mongosync.fail("shard1", true)
	s.mongosync.patch("shard0", "lag", func(p map[string]any) { setLag(p, 45) })
	present = append(present, "unreadable", "lag_high")
	steps := []blockerStep{
		{"unreadable", func(*testing.T) { s.mongosync.fail("shard1", false) }},
		{"lag_high", func(*testing.T) { s.mongosync.unpatch("shard0", "lag") }},
		{"warnings", func(*testing.T) {
			s.mongosync.patch("shard0", "warnings", func(p map[string]any) { delete(p, "warnings") })
		}},
		{"index_builds_pending", func(*testing.T) {
			s.mongosync.patch("shard0", "indexes", func(p map[string]any) {
				if ib, ok := p["indexBuilding"].(map[string]any); ok {
					ib["indexesBuilt"] = ib["totalIndexesToBuild"]
				}
			})
		}},
		{"embedded_verifier_not_ready", func(*testing.T) {
			s.mongosync.patch("shard0", "verification", func(p map[string]any) {
				if v, ok := p["verification"].(map[string]any); ok {
					v["destination"].(map[string]any)["phase"] = "stream hashing"
				}
			})
		}},
		{"cannot_commit", func(*testing.T) {
			s.mongosync.patch("shard0", "cancommit", func(p map[string]any) { p["canCommit"] = true })
		}},
	}
	if s.verifierMigration {
		present = append(present, "verifier_mismatches")
		f := vf.Fixture{DB: s.client.Database(verifierRecheckDB), Now: time.Now()}
		if err := f.Mismatches(t.Context(), recheckMismatches[0]); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, blockerStep{"verifier_mismatches", s.deleteRecheckMismatches}, blockerStep{"verifier_not_done", s.finishVerifier})
	}
	s.awaitVerdict(t, "NO GO", present...)
	// The unreadable instance is paged for as well: the silence after a commit (below)
	// is the commit's doing.
	s.webhook.await(t, since, "firing", map[string]string{
		"alertname": "MongosyncTargetDown", "severity": "critical", "job": "mongosync_exporter",
		"instance": s.exporterAddr, "migration": migration, "mongosync": "shard1",
	}, waitTimeout)
	for _, step := range steps {
		step.clear(t)
		present = slices.DeleteFunc(present, func(b string) bool { return b == step.blocker })
		verdict := "NO GO"
		if len(present) == 0 {
			verdict = "GO"
		}
		s.awaitVerdict(t, verdict, present...)
		t.Logf("%s cleared: %s, blockers left %v", step.blocker, verdict, present)
	}
}

// blockerStep clears one blocker.
type blockerStep struct {
	blocker string
	clear   func(t *testing.T)
}

// faultExporterKilled kills the exporter while the go/no-go says GO: the panel turns to
// No data (in red), never the last GO, the Exporter stat says Down, and
// MongosyncExporterDown pages; started again, GO comes back and the alert resolves.
func (s *stack) faultExporterKilled(t *testing.T) {
	if got := s.shown(t, overview, "Go / no-go"); got != "GO" {
		t.Fatalf("Go / no-go shows %q before the exporter is killed; this step needs GO", got)
	}
	s.run(t, fault{
		alerts: []map[string]string{{
			"alertname": "MongosyncExporterDown", "severity": "critical",
			"job": "mongosync_exporter", "instance": s.exporterAddr,
		}},
		inject: func(t *testing.T) {
			s.exporter.kill()
			if ws, ok := s.exporter.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("mongosync_exporter ended with %v, not by SIGKILL", s.exporter.waitErr)
			}
			s.awaitShown(t, overview, "Go / no-go", "No data")
			s.awaitShown(t, overview, "Exporter", "Down")
		},
		clear: func(t *testing.T) {
			s.startExporter(t, s.exporterAddr)
			s.awaitVerdict(t, "GO")
		},
	})
}

// faultCommitHangs puts both instances in COMMITTING: MongosyncCommittingTooLong pages
// for each, and the overview's State changes annotation marks the change; COMMITTED,
// with the coordinator allowing writes, resolves it.
func (s *stack) faultCommitHangs(t *testing.T) {
	labels := func(instance string) map[string]string {
		return map[string]string{
			"alertname": "MongosyncCommittingTooLong", "severity": "critical", "job": "mongosync_exporter",
			"instance": s.exporterAddr, "migration": migration, "mongosync": instance, "state": "COMMITTING",
		}
	}
	annotation := s.annotationQuery(t, overview, "State changes")
	s.run(t, fault{
		alerts: []map[string]string{labels("shard0"), labels("shard1")},
		inject: func(t *testing.T) {
			s.setState("COMMITTING", "waiting for commit to complete")
			eventually(t, waitTimeout, "the State changes annotation to mark COMMITTING", func() (bool, string) {
				samples, err := s.prom.query(t.Context(), annotation)
				if err != nil {
					return false, err.Error()
				}
				for _, sample := range samples {
					if sample.Metric["state"] == "COMMITTING" && sample.Metric["mongosync"] == "shard0" {
						return true, ""
					}
				}
				return false, fmt.Sprintf("%v", samples)
			})
		},
		clear: func(t *testing.T) {
			s.setCanWrite(true)
			s.setState("COMMITTED", "commit completed")
		},
	})
}

// faultCommittedNotWritable: COMMITTED, but the coordinator reports canWrite false:
// MongosyncCommittedNotWritable pages; canWrite true resolves it.
func (s *stack) faultCommittedNotWritable(t *testing.T) {
	s.run(t, fault{
		alerts: []map[string]string{{
			"alertname": "MongosyncCommittedNotWritable", "severity": "critical", "job": "mongosync_exporter",
			"instance": s.exporterAddr, "migration": migration,
		}},
		inject: func(*testing.T) { s.setCanWrite(false) },
		clear:  func(*testing.T) { s.setCanWrite(true) },
	})
}

// testTargetDownAfterCommit stops (makes unreadable) both instances of the committed
// migration: MongosyncTargetDown, which paged for an unreadable instance before the
// commit, stays silent, neither pending nor firing, well past its `for`.
func (s *stack) testTargetDownAfterCommit(t *testing.T) {
	s.mongosync.fail("shard0", true)
	s.mongosync.fail("shard1", true)
	defer s.mongosync.fail("shard0", false)
	defer s.mongosync.fail("shard1", false)
	unreadable := fmt.Sprintf(`count(max_over_time(mongosync_up{migration=%q}[5s]) == 0)`, migration)
	eventually(t, waitTimeout, "both instances to have been unreadable for 5 s", func() (bool, string) {
		v, ok := s.single(t, unreadable)
		return ok && v == 2, fmt.Sprintf("%v instances", v)
	})
	samples, err := s.prom.query(t.Context(), `ALERTS{alertname="MongosyncTargetDown"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) > 0 {
		t.Errorf("MongosyncTargetDown for a committed migration whose mongosync is stopped: %v", samples)
	}
}

// setState puts both instances in state and phase.
func (s *stack) setState(state, info string) {
	for _, name := range []string{"shard0", "shard1"} {
		s.mongosync.patch(name, "state", func(p map[string]any) { p["state"], p["info"] = state, info })
	}
}

// setCanWrite sets canWrite on both instances (the coordinator's is shard0's).
func (s *stack) setCanWrite(can bool) {
	for _, name := range []string{"shard0", "shard1"} {
		s.mongosync.patch(name, "canwrite", func(p map[string]any) { p["canWrite"] = can })
	}
}

// setLag sets every lag field of a progress reply.
func setLag(progress map[string]any, seconds float64) {
	progress["lagTimeSeconds"] = seconds
	if l, ok := progress["lag"].(map[string]any); ok {
		l["overallLagSeconds"], l["crudLagSeconds"] = seconds, seconds
	}
}

func (s *stack) deleteRecheckMismatches(t *testing.T) {
	if _, err := s.client.Database(verifierRecheckDB).Collection("mismatches").DeleteMany(t.Context(), bson.D{{Key: "generation", Value: int32(2)}}); err != nil {
		t.Fatal(err)
	}
}

// finishVerifier makes the rechecking verifier done, as migration-verifier is after
// writesOff: its last generation's tasks all finished, and its API idle.
func (s *stack) finishVerifier(t *testing.T) {
	tasks := s.client.Database(verifierRecheckDB).Collection("verification_tasks")
	if _, err := tasks.UpdateMany(t.Context(),
		bson.D{{Key: "generation", Value: int32(recheckGeneration)}, {Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{vf.StatusAdded, vf.StatusProcessing}}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: vf.StatusCompleted}}}}); err != nil {
		t.Fatal(err)
	}
	s.verifier.setPhase("idle")
}

// awaitVerdict waits for the overview's Go / no-go to show verdict while its Blockers
// table lists exactly blockers for the migration.
func (s *stack) awaitVerdict(t *testing.T, verdict string, blockers ...string) {
	t.Helper()
	table := s.panelQuery(t, overview, "Blockers", "A")
	want := slices.Sorted(slices.Values(blockers))
	eventually(t, waitTimeout, fmt.Sprintf("Go / no-go %s with blockers %v", verdict, want), func() (bool, string) {
		samples, err := s.prom.query(context.Background(), table)
		if err != nil {
			return false, err.Error()
		}
		var got []string
		for _, sample := range samples {
			if sample.Metric["migration"] == migration {
				got = append(got, sample.Metric["blocker"])
			}
		}
		slices.Sort(got)
		shown := s.shown(t, overview, "Go / no-go")
		return shown == verdict && slices.Equal(got, want), fmt.Sprintf("Go / no-go %s, blockers %v", shown, got)
	})
}

func (s *stack) awaitShown(t *testing.T, uid, title, text string) {
	t.Helper()
	eventually(t, waitTimeout, fmt.Sprintf("%s to show %s", title, text), func() (bool, string) {
		got := s.shown(t, uid, title)
		return got == text, got
	})
}

// shown is what a stat panel displays now, as Grafana would: its query run (all
// variables All), the value mapped by the panel's value mappings, "No data" (its null
// mapping) without a sample; with several samples, their texts joined.
func (s *stack) shown(t *testing.T, uid, title string) string {
	t.Helper()
	p := s.panel(t, uid, title)
	samples, err := s.prom.query(context.Background(), s.panelQuery(t, uid, title, p.Targets[0].RefID))
	if err != nil {
		return err.Error()
	}
	texts := map[string]string{}
	noData := ""
	for _, m := range p.AllMappings() {
		for v, res := range m.Values() {
			texts[v] = res.Text
		}
		if match, res := m.Special(); match == "null" {
			noData = res.Text
		}
	}
	if len(samples) == 0 {
		return noData
	}
	var out []string
	for _, sample := range samples {
		v, _ := sample.Value[1].(string)
		if text, ok := texts[v]; ok {
			v = text
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func (s *stack) panel(t *testing.T, uid, title string) dashboardtest.Panel {
	t.Helper()
	ds, err := dashboardtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		for _, p := range d.AllPanels() {
			if d.UID == uid && p.Title == title && p.Type != "row" {
				return p
			}
		}
	}
	t.Fatalf("%s has no panel %q", uid, title)
	return dashboardtest.Panel{}
}

// panelQuery is the query refID of a dashboard's panel (the first of that title), its
// variables set to All.
func (s *stack) panelQuery(t *testing.T, uid, title, refID string) string {
	t.Helper()
	for _, tg := range s.panel(t, uid, title).Targets {
		if tg.RefID == refID {
			return dashboardtest.Expand(tg.Expr, varsFor(dashboardVarSets[0].vars, nil, uid, s.allVars(t, uid)))
		}
	}
	t.Fatalf("%s: panel %q has no query %s", uid, title, refID)
	return ""
}

// annotationQuery is the query of a dashboard's annotation, its variables set to All.
func (s *stack) annotationQuery(t *testing.T, uid, name string) string {
	t.Helper()
	ds, err := dashboardtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		for _, a := range d.Annotations.List {
			if d.UID == uid && a.Name == name && a.Expr != "" {
				return dashboardtest.Expand(a.Expr, varsFor(dashboardVarSets[0].vars, nil, uid, s.allVars(t, uid)))
			}
		}
	}
	t.Fatalf("%s has no annotation %q", uid, name)
	return ""
}

// single runs expr and returns its value when it has exactly one sample.
func (s *stack) single(t *testing.T, expr string) (float64, bool) {
	t.Helper()
	samples, err := s.prom.query(context.Background(), expr)
	if err != nil || len(samples) != 1 {
		return 0, false
	}
	text, _ := samples[0].Value[1].(string)
	v, err := strconv.ParseFloat(text, 64)
	return v, err == nil
}
