package main

// The proof that the store can rebuild the source: a random workload runs on a source
// while the collector captures it and is SIGKILLed again and again; at random cut points
// the test records the source's state and cluster time; a replay into an empty target up
// to each cut must give exactly that state (documents as BSON, index specifications),
// and a second replay must change nothing.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/pitr/pitrtest"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// proofSize is one run of the proof.
type proofSize struct {
	ops, cuts int
	// pace spreads the operations out, so that the collector is killed many times
	// while they run.
	pace time.Duration
	// largeEvery inserts a document of 1 to 3 MiB every largeEvery operations.
	largeEvery int
	// hugeEvery inserts a document of 16 MiB less 300 bytes every hugeEvery operations;
	// splitEvery makes a 21 MiB update event every splitEvery operations.
	hugeEvery, splitEvery int
}

// TestReplayProof is the short run, part of every `make test`.
func TestReplayProof(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a full run (-short was given): it builds the collector and mongotestd, SIGKILLs the collector while a workload runs and replays into fresh targets; run go test without -short")
	}
	runProof(t, proofSize{ops: 1500, cuts: 3, pace: 3 * time.Millisecond, largeEvery: 500, hugeEvery: 700, splitEvery: 300})
}

// TestReplayProofLong is the long run, for the figures in the report:
//
//	OPLOG_PITR_PROOF=long go test -count=1 -run TestReplayProofLong -timeout 60m ./cmd/oplog_collector
func TestReplayProofLong(t *testing.T) {
	if os.Getenv("OPLOG_PITR_PROOF") != "long" {
		t.Skip("the long proof runs for minutes: set OPLOG_PITR_PROOF=long to run it")
	}
	runProof(t, proofSize{ops: 30000, cuts: 20, pace: 2 * time.Millisecond, largeEvery: 1000, hugeEvery: 3000, splitEvery: 1500})
}

// TestReplayProofLargeEvents is the proof with many events at the edges of 16 MiB:
// documents of 16 MiB less 300 bytes (their store documents are over 16 MiB: stored in
// parts) and updates whose events, with updateLookup's document, are split into
// fragments, while the collector is SIGKILLed every 0.15 to 2 s (a kill while a split
// event is read makes the next run resume inside it). The short proof has a few of each.
//
//	OPLOG_PITR_PROOF=large go test -count=1 -run TestReplayProofLargeEvents -timeout 30m ./cmd/oplog_collector
func TestReplayProofLargeEvents(t *testing.T) {
	if os.Getenv("OPLOG_PITR_PROOF") != "large" {
		t.Skip("runs for minutes of 16 MiB events: set OPLOG_PITR_PROOF=large to run it")
	}
	runProof(t, proofSize{ops: 300, cuts: 3, pace: 10 * time.Millisecond, hugeEvery: 50, splitEvery: 3})
}

// cutPoint is the source's state at a cluster time.
type cutPoint struct {
	at    bson.Timestamp
	state pitrtest.State
	// transactions the workload committed before the cut
	transactions int
}

func runProof(t *testing.T, size proofSize) {
	p := startProof(t, size)
	cuts := p.cutUnderKills(t, size)
	p.waitForCheckpoint(t, cuts[len(cuts)-1].at)
	events, err := p.store.Collection(oplogstore.EventsCollection("proof")).CountDocuments(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	p.checkRange(t)
	for i, c := range cuts {
		p.replayCut(t, i+1, c)
	}
	refused := replayOntoPlainRestores(t, p.uri, cuts, p.seed)
	t.Logf("proof: %d operations (%s), %d store documents, %d cut points, %d SIGKILLs of the collector (%d of them while it captured); from before %d plain restores: %d exact, %d refused",
		p.work.done.Load(), p.work.summary(), events, len(cuts), p.kills, p.capturing, len(cuts)-1, len(cuts)-1-refused, refused)
}

// proof is one run of the proof: the test server that holds the source and the store,
// the collector capturing it, and the workload.
type proof struct {
	uri, cfg string
	store    *mongo.Database
	seed     uint64
	work     *workload
	// d is the collector running now; logs, the killed ones' logs, for a failure's
	// diagnosis.
	d                *daemon
	logs             strings.Builder
	kills, capturing int
}

// startProof starts the test server and the collector, waits for its first checkpoint
// and makes the workload, of OPLOG_PITR_SEED's seed when set (an earlier run's, to look
// into it).
func startProof(t *testing.T, size proofSize) *proof {
	p := &proof{uri: startMongotestd(t), seed: uint64(time.Now().UnixNano())}
	client := testsupport.Connect(t, p.uri)
	p.cfg = writeProofConfig(t, p.uri)
	p.d = startDaemon(t, p.cfg)
	p.store = client.Database(oplogstore.DefaultDatabase)
	eventually(t, "the first checkpoint", func() bool { return checkpoint(t, p.store).Known })
	if s := os.Getenv("OPLOG_PITR_SEED"); s != "" {
		if _, err := fmt.Sscan(s, &p.seed); err != nil {
			t.Fatalf("OPLOG_PITR_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d", p.seed)
	p.work = newWorkload(client, p.seed, size)
	return p
}

// cutUnderKills runs the workload while the collector is SIGKILLed at random moments,
// and cuts it at random points: pause it, read the state, read the time.
func (p *proof) cutUnderKills(t *testing.T, size proofSize) []cutPoint {
	done := make(chan struct{})
	var workErr error
	go func() {
		defer close(done)
		workErr = p.work.run(t.Context())
	}()
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		p.killUntil(t, done)
	}()
	var cuts []cutPoint
	at := rand.New(rand.NewPCG(p.seed, 3))
	thresholds := make([]int64, size.cuts)
	for i := range thresholds {
		thresholds[i] = int64(at.IntN(size.ops))
	}
	slices.Sort(thresholds)
	for _, threshold := range thresholds {
		for p.work.done.Load() < threshold {
			select {
			case <-done:
			case <-time.After(time.Millisecond):
				continue
			}
			break
		}
		cuts = append(cuts, p.work.cut(t))
	}
	<-done
	<-killed
	if workErr != nil {
		t.Fatalf("the workload failed: %v", workErr)
	}
	return cuts
}

// killUntil SIGKILLs the collector at random moments until done, and starts another
// each time. A collector started after a kill captures once its predecessor's lease
// (1 s) has expired, so most kills hit a running capture, and some one that waits for
// the lease.
func (p *proof) killUntil(t *testing.T, done <-chan struct{}) {
	killer := rand.New(rand.NewPCG(p.seed, 2))
	for {
		select {
		case <-done:
			return
		case <-time.After(time.Duration(150+killer.IntN(1850)) * time.Millisecond):
		}
		p.d.stop(t, syscall.SIGKILL)
		if strings.Contains(p.d.log(), "state=running") {
			p.capturing++
		}
		p.logs.WriteString(p.d.log())
		p.logs.WriteString(fmt.Sprintf("--- SIGKILL %d at %s\n", p.kills+1, time.Now().Format(time.RFC3339Nano)))
		p.d = startDaemon(t, p.cfg)
		p.kills++
	}
}

// waitForCheckpoint waits for the capture to save a position at or after last.
func (p *proof) waitForCheckpoint(t *testing.T, last bson.Timestamp) {
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) { // against hanging only
		if cp := checkpoint(t, p.store); cp.Known && !cp.TS.Before(last) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the checkpoint is %v, and does not pass the last cut %v: the capture stopped (seed %d). The collector's log ends:\n%s",
				checkpoint(t, p.store).TS, last, p.seed, lastLines(p.d.log(), 15))
		}
	}
}

// checkRange checks that range shows a checkpoint and no gap: kills lose nothing.
func (p *proof) checkRange(t *testing.T) {
	code, out := runCLI(t, "range", "--source", "proof", "--store", p.uri, "--format", "json")
	var window struct {
		Checkpoint struct{ Timestamp string } `json:"checkpoint"`
		Gaps       []any                      `json:"gaps"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &window) != nil || window.Checkpoint.Timestamp == "" || len(window.Gaps) != 0 {
		t.Fatalf("range: exit %d\n%s", code, out)
	}
}

// replayCut replays the store up to cut c into an empty target, twice: each time the
// target must be the source's state at the cut.
func (p *proof) replayCut(t *testing.T, n int, c cutPoint) {
	target, stop := startTarget(t)
	defer stop()
	to := fmt.Sprintf("%d,%d", c.at.T, c.at.I)
	for run := 1; run <= 2; run++ {
		code, out := runCLI(t, "replay", "--source", "proof", "--store", p.uri, "--target", target, "--to", to, "--progress-interval", "250ms")
		if code != 0 {
			t.Fatalf("cut %d (%s, seed %d), replay %d: exit %d\n%s\nsplit events in the store:\n%s\nthe collection events of the namespace it names:\n%s\nthe collectors' warnings and kills:\n%s", n, to, p.seed, run, code, out,
				splitFragments(t, p.store), namespaceEvents(t, p.store, out), warningsAndKills(p.logs.String()+p.d.log()))
		}
		got := readState(t, target)
		if diff := pitrtest.Diff(c.state, got); diff != "" {
			t.Fatalf("cut %d at %s (seed %d), after replay %d, the target is not the source's state:\n%s\nreplay said:\n%s", n, to, p.seed, run, diff, out)
		}
		if run == 1 && c.transactions > 0 && !strings.Contains(out, "Transactions: ") {
			t.Errorf("cut %d: the workload committed %d transactions before it, and the replay applied none as a transaction:\n%s", n, c.transactions, out)
		}
	}
	t.Logf("cut %d at %s: %d collections, %d documents, rebuilt exactly, twice", n, to, len(c.state), c.state.Documents())
}

// replayOntoPlainRestores replays, for each cut after the first, from the store's oldest
// event onto the state at the cut before it, restored as mongorestore without
// --preserveUUID leaves it (under UUIDs of the target's own, with no record of which
// source collection each one is): the result must be the state at the cut, or a refusal
// (exit 3, nothing written) where a name held collections replay cannot tell apart, and
// then a replay from the base's exact time must give that state; never another state.
// It returns how many were refused.
func replayOntoPlainRestores(t *testing.T, store string, cuts []cutPoint, seed uint64) (refused int) {
	t.Helper()
	for i := 1; i < len(cuts); i++ {
		target, stop := startTarget(t)
		base := fmt.Sprintf("%d,%d", cuts[i-1].at.T, cuts[i-1].at.I)
		if code, out := runCLI(t, "replay", "--source", "proof", "--store", store, "--target", target, "--to", base); code != 0 {
			t.Fatalf("the base at cut %d (%s): exit %d\n%s", i, base, code, out)
		}
		dropDatabase(t, target, "__oplog_replay")
		to := fmt.Sprintf("%d,%d", cuts[i].at.T, cuts[i].at.I)
		code, out := runCLI(t, "replay", "--source", "proof", "--store", store, "--target", target, "--to", to)
		switch {
		case code == exitRefused && strings.Contains(out, "may hold either"):
			refused++
			t.Logf("onto a plain restore at cut %d, replay to cut %d refused: %s", i, i+1, lastLines(out, 1))
			// What the refusal advises that needs no new backup: the base's time. The range
			// after it can still hold a name that replay cannot place (two collections
			// trading names): refused again then, never wrong.
			code, out = runCLI(t, "replay", "--source", "proof", "--store", store, "--target", target, "--from", base, "--to", to)
			switch {
			case code == exitRefused && strings.Contains(out, "may hold either"):
				t.Logf("and from its exact time too: %s", lastLines(out, 1))
				stop()
				continue
			case code != 0:
				t.Fatalf("onto a plain restore at cut %d, replay from its exact time to cut %d: exit %d\n%s", i, i+1, code, out)
			}
			if diff := pitrtest.Diff(cuts[i].state, readState(t, target)); diff != "" {
				t.Fatalf("onto a plain restore at cut %d, replayed from its exact time to cut %d (seed %d), the target is not the source's state:\n%s", i, i+1, seed, diff)
			}
		case code != 0:
			t.Fatalf("onto a plain restore at cut %d, replay to cut %d (%s): exit %d\n%s", i, i+1, to, code, out)
		default:
			if diff := pitrtest.Diff(cuts[i].state, readState(t, target)); diff != "" {
				t.Fatalf("onto a plain restore at cut %d, replayed from the oldest event to cut %d (seed %d), the target is not the source's state:\n%s\nreplay said:\n%s", i, i+1, seed, diff, out)
			}
		}
		stop()
	}
	return refused
}

// dropDatabase drops a database of the cluster at uri.
func dropDatabase(t *testing.T, uri, name string) {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	if err := client.Database(name).Drop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// splitFragments lists the store's documents of split events: ts, op_type, token,
// split_event.
func splitFragments(t *testing.T, store *mongo.Database) string {
	docs, err := storeEvents(t, store, bson.D{{Key: oplogstore.FieldSplitEvent, Value: bson.D{{Key: "$exists", Value: true}}}},
		options.Find().SetProjection(bson.D{{Key: oplogstore.FieldTS, Value: 1}, {Key: oplogstore.FieldOpType, Value: 1}, {Key: oplogstore.FieldSplitEvent, Value: 1}}))
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, d := range docs {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	return b.String()
}

// storeEvents reads the proof's store documents that match filter.
func storeEvents(t *testing.T, store *mongo.Database, filter bson.D, opts *options.FindOptionsBuilder) ([]bson.Raw, error) {
	cursor, err := store.Collection(oplogstore.EventsCollection("proof")).Find(t.Context(), filter, opts)
	if err != nil {
		return nil, err
	}
	var docs []bson.Raw
	return docs, cursor.All(t.Context(), &docs)
}

// namespaceEvents lists the store's collection events (and the first of each other
// kind) of the namespace a replay's error names ("on db.coll:"): how it was made,
// renamed and dropped, by which collection.
func namespaceEvents(t *testing.T, store *mongo.Database, out string) string {
	_, stopped, _ := strings.Cut(out, " stopped: ")
	_, rest, ok := strings.Cut(stopped, " on ")
	ns, _, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || strings.ContainsAny(ns, " \n") {
		return "  (the error names no namespace)\n"
	}
	db, coll, _ := strings.Cut(ns, ".")
	docs, err := storeEvents(t, store,
		bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: oplogstore.FieldNamespace, Value: ns}}, bson.D{{Key: "to", Value: bson.D{{Key: "db", Value: db}, {Key: "coll", Value: coll}}}}}}},
		options.Find().SetSort(bson.D{{Key: oplogstore.FieldTS, Value: 1}}).SetProjection(bson.D{{Key: oplogstore.FieldTS, Value: 1}, {Key: oplogstore.FieldOpType, Value: 1},
			{Key: oplogstore.FieldNamespace, Value: 1}, {Key: oplogstore.FieldCollectionUUID, Value: 1}, {Key: "to", Value: 1}, {Key: oplogstore.FieldOperationDescription, Value: 1}}))
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, d := range docs {
		op := d.Lookup(oplogstore.FieldOpType).StringValue()
		if isDocumentOp := op == "insert" || op == "update" || op == "replace" || op == "delete"; isDocumentOp && seen[op+d.Lookup(oplogstore.FieldCollectionUUID).String()] {
			continue
		}
		seen[op+d.Lookup(oplogstore.FieldCollectionUUID).String()] = true
		fmt.Fprintf(&b, "  %s\n", d)
	}
	return b.String()
}

// warningsAndKills are the lines of the collectors' logs that say something went wrong,
// and the kills between them.
func warningsAndKills(logs string) string {
	var b strings.Builder
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "level=warn") || strings.Contains(line, "level=error") || strings.HasPrefix(line, "--- SIGKILL") {
			b.WriteString("  " + line + "\n")
		}
	}
	return b.String()
}

// readState reads the state of the cluster at uri, with a client of its own, closed
// before the cluster is stopped.
func readState(t *testing.T, uri string) pitrtest.State {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	state, err := pitrtest.Read(t.Context(), client)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func writeProofConfig(t *testing.T, uri string) string {
	t.Helper()
	config := fmt.Sprintf("collector:\n  store: {uri: %q}\n  heartbeat_interval: 1s\n  checkpoint_interval: 50ms\n  max_backoff: 200ms\n  lease_ttl: 1s\n"+
		"  batch: {max_events: 200, max_wait: 20ms}\n  sources:\n    - {name: proof, uri: %q}\n", uri, uri)
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func checkpoint(t *testing.T, store *mongo.Database) oplogstore.Checkpoint {
	cp, err := oplogstore.ReadCheckpoint(t.Context(), store, "proof")
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// startTarget runs a mongotestd for one replay target; stop ends it.
func startTarget(t *testing.T) (uri string, stop func()) {
	t.Helper()
	s := pitrtest.Mongotestd(t, mongotestd)
	return s.URI, s.Stop
}

// The commands as a user runs them: the window, a dry run with the store from the config
// file, the refusals and errors with their exit codes, and no password in any output.
func TestPITRCommands(t *testing.T) {
	uri := startMongotestd(t)
	client := testsupport.Connect(t, uri)
	cfg := writeProofConfig(t, uri)
	startDaemon(t, cfg)
	store := client.Database(oplogstore.DefaultDatabase)
	eventually(t, "the first checkpoint", func() bool { return checkpoint(t, store).Known })
	for i := range 10 {
		if _, err := client.Database("shop").Collection("orders").InsertOne(t.Context(), bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	var at bson.Timestamp
	eventually(t, "the ten inserts under the checkpoint", func() bool {
		// The collector reads a slow source a few times a second: the newest stored
		// event may be the first insert for a moment.
		stored, err := store.Collection(oplogstore.EventsCollection("proof")).CountDocuments(t.Context(), bson.D{})
		newest, ok, edgeErr := oplogstore.Edge(t.Context(), store, "proof", true)
		at = newest
		cp := checkpoint(t, store)
		return err == nil && stored == 11 && edgeErr == nil && ok && cp.Known && !cp.TS.Before(newest)
	})
	to := fmt.Sprintf("%d,%d", at.T, at.I)
	target, _ := startTarget(t)
	password := "s3cr3t-pw"
	unreachable := "mongodb://admin:" + password + "@127.0.0.1:1/?serverSelectionTimeoutMS=300"

	for _, c := range []struct {
		name string
		args []string
		code int
		says []string
	}{
		{"range", []string{"range", "--source", "proof", "--config.file", cfg}, 0, []string{"Source proof: 11 documents", "checkpoint", "Gaps: none recorded.", "Recoverable"}},
		{"range of an unknown format", []string{"range", "--source", "proof", "--store", uri, "--format", "yaml"}, 2, []string{"text,json"}},
		{"dry run, store from the config", []string{"replay", "--source", "proof", "--config.file", cfg, "--to", to, "--dry-run"}, 0,
			[]string{"Dry run of source proof", "nothing was written", "shop.orders  insert     10"}},
		{"no target", []string{"replay", "--source", "proof", "--store", uri, "--to", to}, 2, []string{"--target"}},
		{"--from after --to", []string{"replay", "--source", "proof", "--store", uri, "--target", target, "--from", to, "--to", "1,1"}, 2, []string{"is not before --to"}},
		{"a time that does not parse", []string{"replay", "--source", "proof", "--store", uri, "--target", target, "--to", "yesterday"}, 2, []string{"--to", "RFC 3339"}},
		{"past the checkpoint", []string{"replay", "--source", "proof", "--store", uri, "--target", target, "--to", "2106-01-01T00:00:00Z"}, 3,
			[]string{"refused, nothing written", "after the checkpoint", "--allow-beyond-checkpoint"}},
		{"a target that does not answer", []string{"replay", "--source", "proof", "--store", uri, "--target", unreachable, "--to", to}, 1,
			[]string{"replay proof stopped", "run the same command again"}},
		{"a store that does not answer", []string{"range", "--source", "proof", "--store", unreachable}, 1, []string{"range proof"}},
		{"a target that is no connection string", []string{"replay", "--source", "proof", "--store", uri, "--target", "mongodb://admin:" + password + "@127.0.0.1:1/?authMechanism=NOPE", "--to", to}, 2,
			[]string{"the target's connection string"}},
		{"replay", []string{"replay", "--source", "proof", "--store", uri, "--target", target, "--to", to}, 0,
			[]string{"Replayed source proof", "11 events applied", "insert 10"}},
	} {
		code, out := runCLI(t, c.args...)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", c.name, code, c.code, out)
		}
		for _, want := range c.says {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", c.name, want, out)
			}
		}
		if strings.Contains(out, password) {
			t.Errorf("%s: the output holds the password:\n%s", c.name, out)
		}
	}
	got := readState(t, target)
	if n := got.Documents(); n != 10 {
		t.Errorf("the target holds %d documents after the replay, want 10", n)
	}
}

// docs/pitr.md's flag table lists exactly the flags of range and replay.
func TestPITRDocsListEveryFlag(t *testing.T) {
	doc, err := os.ReadFile("../../docs/pitr.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if cells := testsupport.TableRow(line); strings.HasPrefix(line, "| `--") && len(cells) > 0 {
			documented[strings.Trim(strings.Fields(cells[0])[0], "`")] = true
		}
	}
	app := kingpin.New(program, "")
	addPITRCommands(app)
	defined := map[string]bool{}
	for _, cmd := range app.Model().Commands {
		for _, f := range cmd.Flags {
			defined["--"+f.Name] = true
		}
	}
	for f := range defined {
		if !documented[f] {
			t.Errorf("docs/pitr.md does not list %s", f)
		}
	}
	for f := range documented {
		if !defined[f] && f != "--config.file" {
			t.Errorf("docs/pitr.md lists %s, which range and replay do not take", f)
		}
	}
}

// replay reads its arguments before it opens anything: what is wrong with them is what it
// reports, with exit code 2, even with no store configured. Run in process, as main runs
// it.
func TestReplayChecksItsArgumentsFirst(t *testing.T) {
	noConfig := filepath.Join(t.TempDir(), "absent.yml")
	t.Setenv("OPLOG_REPLAY_TARGET_URI", "")
	for _, c := range []struct {
		name string
		args []string
		says string
	}{
		{"a --to that does not parse", []string{"--config.file", noConfig, "--to", "yesterday"}, "replay: --to: "},
		{"a --from that does not parse", []string{"--config.file", noConfig, "--from", "noon", "--to", "1,1"}, "replay: --from: "},
		{"--from not before --to", []string{"--config.file", noConfig, "--from", "5,1", "--to", "5,1"}, "replay: --from 5,1 is not before --to 5,1"},
		{"no target, the store not contacted yet", []string{"--store", "mongodb://127.0.0.1:1", "--to", "1,1"}, "replay: --target (or $OPLOG_REPLAY_TARGET_URI) is required"},
	} {
		var stdout, stderr strings.Builder
		code := run(append([]string{"replay", "--source", "s"}, c.args...), strings.NewReader(""), &stdout, &stderr)
		if code != exitUsage || !strings.HasPrefix(stderr.String(), c.says) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", c.name, code, stderr.String(), exitUsage, c.says)
		}
	}
}
