package main

// A collector that lost its source's lease changes nothing in the store: these tests
// pause holders (SIGSTOP, and a TCP proxy between a collector and its store that holds
// bytes, as a partition), reset and de-register sources under them, crash the holder
// that took over, run the old Python tool beside the collector, and check what the store
// holds at the end: every id inserted once, a position that never moved backwards, and
// what was reset or de-registered staying so.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	hbdoc "github.com/mongomigrate/observability/internal/heartbeat"
	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/testsupport"
)

const (
	storeDB    = "oplog_backup_db"
	metadataDB = "oplog_manager_orchestrator_db"
)

// shortTransactions makes the store abort a transaction left open for 2 s: a holder
// paused in the middle of one holds the lease document it wrote until then, and the
// takeover waits (mongod aborts such a transaction after transactionLifetimeLimitSeconds,
// 60 s by default).
const shortTransactions = "--transaction-lifetime=2s"

// collectorYAML is a collector's config for these tests: the store and the metadata
// database may be reached through a proxy, and the metadata section may be left out.
type collectorYAML struct {
	store, metadata string // metadata "": no metadata section
	source          string
	sourceURI       string
	leaseTTL        string // "": the default
}

func (c collectorYAML) write(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "collector:\n  store: {uri: %q}\n", c.store)
	if c.metadata != "" {
		fmt.Fprintf(&b, "  metadata: {uri: %q}\n", c.metadata)
	}
	b.WriteString("  heartbeat_interval: 200ms\n  checkpoint_interval: 50ms\n  max_backoff: 200ms\n  batch: {max_events: 100, max_wait: 20ms}\n")
	if c.leaseTTL != "" {
		fmt.Fprintf(&b, "  lease_ttl: %s\n", c.leaseTTL)
	}
	fmt.Fprintf(&b, "  sources:\n    - {name: %s, uri: %q, database: %s}\n", c.source, c.sourceURI, c.source)
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// logsOnFailure shows the daemons' last log lines when the test fails.
func logsOnFailure(t *testing.T, ds []*daemon) {
	t.Cleanup(func() {
		if t.Failed() {
			for i, d := range ds {
				if d != nil {
					t.Logf("collector %d (pid %d):\n%s", i, d.cmd.Process.Pid, lastLines(d.log(), 30))
				}
			}
		}
	})
}

// hostOf is the host:port of a mongotestd URI.
func hostOf(t *testing.T, uri string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// captureState is the source's state as the daemon's /metrics says it ("" when the
// daemon does not answer).
func captureState(d *daemon, source string, a *auth) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url+"/metrics", nil)
	if err != nil {
		return ""
	}
	if a != nil {
		req.SetBasicAuth("admin", "s3cret")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	body := string(raw)
	m := regexp.MustCompile(`oplog_capture_state\{source_cluster="` + regexp.QuoteMeta(source) + `",state="([a-z_]+)"\} 1`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// holderOf waits until one of the daemons captures the source and returns its index.
func holderOf(t *testing.T, ds []*daemon, source string, a *auth) int {
	t.Helper()
	holder := -1
	eventually(t, "a collector to capture "+source, func() bool {
		for i, d := range ds {
			if d != nil && captureState(d, source, a) == "running" {
				holder = i
				return true
			}
		}
		return false
	})
	return holder
}

// insertWriter inserts {_id: 0, 1, 2, ...} into the source's collection c, one at a
// time, until stopped.
type insertWriter struct {
	n    atomic.Int64
	stop chan struct{}
	done chan error
}

func startWriter(t *testing.T, client *mongo.Client, db string) *insertWriter {
	t.Helper()
	w := &insertWriter{stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		coll := client.Database(db).Collection("c")
		for {
			select {
			case <-w.stop:
				w.done <- nil
				return
			default:
			}
			i := w.n.Load()
			if _, err := coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: int32(i)}}); err != nil {
				w.done <- err
				return
			}
			w.n.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(func() { w.finish(t) })
	return w
}

// finish stops the writer and returns how many documents it inserted.
func (w *insertWriter) finish(t *testing.T) int {
	select {
	case <-w.stop:
	default:
		close(w.stop)
		if err := <-w.done; err != nil {
			t.Errorf("the writer failed: %v", err)
		}
	}
	return int(w.n.Load())
}

// waitCount waits until the writer has inserted n more documents than now.
func (w *insertWriter) waitCount(t *testing.T, more int) {
	t.Helper()
	target := w.n.Load() + int64(more)
	eventually(t, fmt.Sprintf("the writer to insert %d more", more), func() bool { return w.n.Load() >= target })
}

// positionWatch follows, through change streams on the store and the metadata
// database, every save of the source's position (the token document) and every
// checkpoint its heartbeat reports, and records each one that moved backwards.
type positionWatch struct {
	mu          sync.Mutex
	saves       int
	newest      bson.Timestamp
	backwards   []string
	reports     int
	newestBeat  time.Time
	beatsBehind []string
}

func watchPositions(t *testing.T, client *mongo.Client, source string) *positionWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &positionWatch{}
	var streams sync.WaitGroup
	open := func(db, coll string, each func(bson.Raw)) {
		cs, err := client.Database(db).Watch(ctx, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "ns.coll", Value: coll}}}}})
		if err != nil {
			t.Fatal(err)
		}
		streams.Go(func() {
			defer cs.Close(context.Background())
			for cs.Next(ctx) {
				each(cs.Current)
			}
		})
	}
	// The value an event sets a field to: from the inserted document, or from the
	// update's updatedFields (a $set on a dotted path is reported under that path).
	field := func(ev bson.Raw, path ...string) (bson.RawValue, bool) {
		if v, err := ev.LookupErr(append([]string{"fullDocument"}, path...)...); err == nil {
			return v, true
		}
		fields, ok := ev.Lookup("updateDescription", "updatedFields").DocumentOK()
		if !ok {
			return bson.RawValue{}, false
		}
		v, err := fields.LookupErr(strings.Join(path, "."))
		return v, err == nil
	}
	open(storeDB, oplogstore.TokensCollection(source), func(ev bson.Raw) {
		token, ok := field(ev, "token")
		doc, isDoc := token.DocumentOK()
		if !ok || !isDoc {
			return
		}
		ts, ok := oplogstore.TokenTime(doc)
		if !ok {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.saves++
		if ts.Before(w.newest) {
			w.backwards = append(w.backwards, fmt.Sprintf("a save at %d,%d after one at %d,%d (%s)", ts.T, ts.I, w.newest.T, w.newest.I, ev.Lookup("operationType")))
		} else {
			w.newest = ts
		}
	})
	open(metadataDB, "source_clusters_info", func(ev bson.Raw) {
		v, ok := field(ev, "collector_status", "last_oplog_time_utc")
		s, isString := v.StringValueOK()
		if !ok || !isString {
			return
		}
		at, err := time.Parse(hbdoc.TimeLayout, s)
		if err != nil {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.reports++
		if at.Before(w.newestBeat) {
			w.beatsBehind = append(w.beatsBehind, fmt.Sprintf("last_oplog_time_utc %s after %s", s, w.newestBeat.Format(hbdoc.TimeLayout)))
		} else {
			w.newestBeat = at
		}
	})
	t.Cleanup(func() { cancel(); streams.Wait() })
	return w
}

// check fails the test for each backward move seen.
func (w *positionWatch) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.backwards) > 0 {
		t.Errorf("the saved position moved backwards %d times in %d saves: %s", len(w.backwards), w.saves, strings.Join(w.backwards, "; "))
	}
	if len(w.beatsBehind) > 0 {
		t.Errorf("the heartbeat's checkpoint moved backwards %d times in %d reports: %s", len(w.beatsBehind), w.reports, strings.Join(w.beatsBehind, "; "))
	}
	if w.saves == 0 || w.reports == 0 {
		t.Errorf("the watch saw %d position saves and %d heartbeat checkpoints", w.saves, w.reports)
	}
}

// checkEveryIDOnce fails the test unless the store holds the inserts of ids from..to-1,
// each once, in order, and nothing else.
func checkEveryIDOnce(t *testing.T, client *mongo.Client, source string, from, to int) {
	t.Helper()
	eventually(t, fmt.Sprintf("the inserts up to %d stored", to-1), func() bool {
		ids := storedInserts(t, client, source)
		return len(ids) > 0 && ids[len(ids)-1] >= int32(to-1)
	})
	got := storedInserts(t, client, source)
	want := make([]int32, 0, to-from)
	for i := from; i < to; i++ {
		want = append(want, int32(i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("the store holds %d inserts, not %d..%d once each in order: %s", len(got), from, to-1, describeIDs(got))
	}
}

// describeIDs sums up a list of ids: where it is not a run of consecutive numbers.
func describeIDs(ids []int32) string {
	var odd []string
	for i := 1; i < len(ids) && len(odd) < 10; i++ {
		if ids[i] != ids[i-1]+1 {
			odd = append(odd, fmt.Sprintf("%d then %d", ids[i-1], ids[i]))
		}
	}
	if len(ids) == 0 {
		return "none"
	}
	return fmt.Sprintf("first %d, last %d; breaks: %s", ids[0], ids[len(ids)-1], strings.Join(odd, ", "))
}

// gaps reads the source's gap records.
func gaps(t *testing.T, client *mongo.Client, source string) []oplogstore.Gap {
	t.Helper()
	gs, err := oplogstore.ReadGaps(t.Context(), client.Database(storeDB), source)
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

func sendSignal(t *testing.T, d *daemon, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// roundsFromEnv is the number of pause rounds: n by default, FENCE_ROUNDS when set.
func roundsFromEnv(n int) int {
	if v, err := strconv.Atoi(os.Getenv("FENCE_ROUNDS")); err == nil && v > 0 {
		return v
	}
	return n
}

// Point 1. Two collectors with a 1 s lease, each reaching the store and the metadata
// database through its own proxy, and a writer inserting all along. In turn, the holder
// is paused past its lease with SIGSTOP, or cut off from the store by its proxy holding
// every byte, until the other has taken over and stored more; then it is let go.
// Whatever it sends on waking, the saved position and the heartbeat's checkpoint never
// move backwards, and the store ends up with every inserted id once. FENCE_ROUNDS sets
// the number of rounds (default 4: two of each).
func TestPausedHolderLandsNoWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a full run (-short was given): pauses collectors past their lease several times")
	}
	rounds := roundsFromEnv(4)
	uri := startMongotestd(t, "--history=1000000", shortTransactions)
	client := testsupport.Connect(t, uri)
	const source = "fenced"
	watch := watchPositions(t, client, source)
	var ds []*daemon
	var proxies []*tcpProxy
	for range 2 {
		p := startProxy(t, hostOf(t, uri))
		proxies = append(proxies, p)
		ds = append(ds, startDaemon(t, collectorYAML{store: p.uri(), metadata: p.uri(), source: source, sourceURI: uri, leaseTTL: "1s"}.write(t)))
	}
	logsOnFailure(t, ds)
	holder := holderOf(t, ds, source, nil)
	// What the store guarantees starts at the first saved position.
	eventually(t, "the first position saved", func() bool { return tokenSaved(t, client, source) })
	writer := startWriter(t, client, source)
	stops, partitions := 0, 0
	for round := range rounds {
		old, next := holder, 1-holder
		partition := round%2 == 1
		if partition {
			proxies[old].pause()
			partitions++
		} else {
			sendSignal(t, ds[old], syscall.SIGSTOP)
			stops++
		}
		eventually(t, "the other collector to take over", func() bool { return captureState(ds[next], source, nil) == "running" })
		stored := storedCount(t, client, source)
		eventually(t, "the new holder to store more", func() bool { return storedCount(t, client, source) >= stored+50 })
		if partition {
			proxies[old].heal()
		} else {
			sendSignal(t, ds[old], syscall.SIGCONT)
		}
		writer.waitCount(t, 50)
		eventually(t, "the old holder to stand by", func() bool { return captureState(ds[old], source, nil) == "standby" })
		holder = next
	}
	total := writer.finish(t)
	checkEveryIDOnce(t, client, source, 0, total)
	watch.check(t)
	t.Logf("%d inserts across %d SIGSTOPs and %d partitions of the holder (lease 1s); %d position saves and %d heartbeat checkpoints watched",
		total, stops, partitions, watch.saves, watch.reports)
}

// Point 2. The holder is paused; the collector that took over captures 400 events
// (more than the source's 300 of history) and is SIGKILLed; the first one wakes up. It
// must go on from the position the store holds, not from its own: no gap is recorded,
// and every event is stored once. FENCE_ROUNDS sets the number of rounds (default 3),
// each with a new standby.
func TestStaleHolderResumesFromTheStore(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a full run (-short was given): pauses a collector past its lease and kills another")
	}
	rounds := roundsFromEnv(3)
	sourceURI := startMongotestd(t, "--history=300")
	storeURI := startMongotestd(t, shortTransactions)
	src, store := testsupport.Connect(t, sourceURI), testsupport.Connect(t, storeURI)
	const source = "stale"
	cfg := collectorYAML{store: storeURI, metadata: storeURI, source: source, sourceURI: sourceURI, leaseTTL: "1s"}.write(t)
	ds := []*daemon{startDaemon(t, cfg), startDaemon(t, cfg)}
	logsOnFailure(t, ds)
	holder := holderOf(t, ds, source, nil)
	eventually(t, "the first token", func() bool { return tokenSaved(t, store, source) })
	inserted := 0
	for range rounds {
		paused, next := holder, 1-holder
		sendSignal(t, ds[paused], syscall.SIGSTOP)
		eventually(t, "the other collector to take over", func() bool { return captureState(ds[next], source, nil) == "running" })
		insertRange(t, src, source, inserted, inserted+400)
		inserted += 400
		eventually(t, "the new holder to store 400 events", func() bool { return len(storedInserts(t, store, source)) == inserted })
		ds[next].stop(t, syscall.SIGKILL)
		sendSignal(t, ds[paused], syscall.SIGCONT)
		insertRange(t, src, source, inserted, inserted+50)
		inserted += 50
		eventually(t, "the woken collector to capture again", func() bool {
			st := captureState(ds[paused], source, nil)
			return st == "error_resume_token_lost" || (st == "running" && len(storedInserts(t, store, source)) >= inserted)
		})
		if gs := gaps(t, store, source); len(gs) > 0 {
			t.Fatalf("a gap was recorded though every event is stored: %+v", gs)
		}
		ds[next] = startDaemon(t, cfg) // a new standby for the next round
		holder = paused
	}
	checkEveryIDOnce(t, store, source, 0, inserted)
	t.Logf("%d rounds: the holder paused, the collector that took over SIGKILLed after 400 events (history 300), the paused one woken", rounds)
}

func insertRange(t *testing.T, client *mongo.Client, db string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := client.Database(db).Collection("c").InsertOne(t.Context(), bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkResetStuck checks what a store reset under a paused holder must hold at the
// end: the gap closed, and from the first event captured after the reset every insert
// once, with nothing from before it.
func checkResetStuck(t *testing.T, store *mongo.Client, source string, total int) {
	t.Helper()
	eventually(t, "the reset's gap to be closed by the next capture", func() bool {
		gs := gaps(t, store, source)
		return len(gs) == 1 && !gs[0].Before.IsZero()
	})
	eventually(t, "the last insert stored", func() bool {
		ids := storedInserts(t, store, source)
		return len(ids) > 0 && ids[len(ids)-1] == int32(total-1)
	})
	ids := storedInserts(t, store, source)
	checkEveryIDOnce(t, store, source, int(ids[0]), total)
	gap := gaps(t, store, source)[0]
	var first struct {
		TS bson.Timestamp `bson:"ts"`
	}
	if err := store.Database(storeDB).Collection(oplogstore.EventsCollection(source)).FindOne(t.Context(), bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "ts", Value: 1}})).Decode(&first); err != nil {
		t.Fatal(err)
	}
	if !gap.After.Before(first.TS) {
		t.Errorf("the store holds an event of %d,%d, from before the reset (its gap starts after %d,%d)", first.TS.T, first.TS.I, gap.After.T, gap.After.I)
	}
}

// Point 3. A reset through the admin API of the collector that took over, while the
// former holder is paused: once it wakes up, it puts nothing of before the reset back.
func TestResetStaysDoneUnderAPausedHolder(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a full run (-short was given): pauses a collector past its lease")
	}
	uri := startMongotestd(t, "--history=1000000", shortTransactions)
	client := testsupport.Connect(t, uri)
	const source = "rewound"
	cfg := collectorYAML{store: uri, metadata: uri, source: source, sourceURI: uri, leaseTTL: "1s"}.write(t)
	a := writeAuth(t)
	admin := []string{"--web.enable-admin-api", "--web.config.file", a.web}
	ds := []*daemon{startDaemon(t, cfg, admin...), startDaemon(t, cfg, admin...)}
	logsOnFailure(t, ds)
	first := holderOf(t, ds, source, &a)
	second := 1 - first
	eventually(t, "the first position saved", func() bool { return tokenSaved(t, client, source) })
	writer := startWriter(t, client, source)
	writer.waitCount(t, 100)
	sendSignal(t, ds[first], syscall.SIGSTOP)
	eventually(t, "the other collector to take over", func() bool { return captureState(ds[second], source, &a) == "running" })
	writer.waitCount(t, 100)
	if code, out := runCLI(t, "reset", "--yes", "--source", source, "--collector.url", ds[second].url, "--http.config.file", a.client); code != 0 {
		t.Fatalf("reset through the new holder: exit %d\n%s", code, out)
	}
	writer.waitCount(t, 100)
	sendSignal(t, ds[first], syscall.SIGCONT)
	eventually(t, "the woken collector to stand by", func() bool { return captureState(ds[first], source, &a) == "standby" })
	writer.waitCount(t, 100)
	total := writer.finish(t)
	checkResetStuck(t, client, source, total)
	if code, out := runCLI(t, "range", "--source", source, "--store", uri); code != 0 || strings.Contains(out, "Warning") {
		t.Errorf("range after the reset: exit %d\n%s", code, out)
	}
}

// offlineUnderAPausedHolder captures source with one collector (1 s lease) while a
// writer inserts, pauses the collector with SIGSTOP, runs the offline command once the
// lease has expired and it is accepted, and lets the collector go on.
func offlineUnderAPausedHolder(t *testing.T, command, source string) (*mongo.Client, *daemon, *insertWriter) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a full run (-short was given): pauses a collector past its lease")
	}
	uri := startMongotestd(t, "--history=1000000", shortTransactions)
	client := testsupport.Connect(t, uri)
	cfg := collectorYAML{store: uri, metadata: uri, source: source, sourceURI: uri, leaseTTL: "1s"}.write(t)
	d := startDaemon(t, cfg)
	logsOnFailure(t, []*daemon{d})
	holderOf(t, []*daemon{d}, source, nil)
	eventually(t, "the first position saved", func() bool { return tokenSaved(t, client, source) })
	writer := startWriter(t, client, source)
	writer.waitCount(t, 100)
	sendSignal(t, d, syscall.SIGSTOP)
	eventually(t, command+" --offline to be accepted", func() bool {
		code, _ := runCLI(t, command, "--offline", "--yes", "--source", source, "--config.file", cfg)
		return code == 0
	})
	writer.waitCount(t, 100)
	sendSignal(t, d, syscall.SIGCONT)
	return client, d, writer
}

// Point 4. A reset --offline while the holder is paused past its lease: on waking, the
// holder does not carry on from what it had in memory; capture starts again from the
// reset, which closes its gap.
func TestOfflineResetStaysDoneUnderAPausedHolder(t *testing.T) {
	const source = "wiped"
	client, _, writer := offlineUnderAPausedHolder(t, "reset", source)
	writer.waitCount(t, 200)
	total := writer.finish(t)
	checkResetStuck(t, client, source, total)
}

// Point 5. A deregister --offline while the holder is paused past its lease: on waking,
// the holder brings back neither the events collection, nor the token document, nor
// the deleted heartbeat document.
func TestOfflineDeregisterStaysDoneUnderAPausedHolder(t *testing.T) {
	const source = "gone"
	client, d, writer := offlineUnderAPausedHolder(t, "deregister", source)
	// It stops once it finds the source de-registered: whatever it wrote on waking is
	// written by then.
	eventually(t, "the woken collector to stop", func() bool { return captureState(d, source, nil) == "stopped" })
	writer.finish(t)
	names, err := client.Database(storeDB).ListCollectionNames(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, "_"+source) {
			t.Errorf("%s came back after the de-registration", name)
		}
	}
	if doc := heartbeatOf(t, client, source); doc != nil {
		t.Errorf("the heartbeat document came back after the de-registration: %s", doc)
	}
}

func heartbeatOf(t *testing.T, client *mongo.Client, source string) bson.Raw {
	t.Helper()
	raw, err := client.Database(metadataDB).Collection("source_clusters_info").FindOne(t.Context(), bson.D{{Key: "name", Value: source}}).Raw()
	if err != nil {
		return nil
	}
	return raw
}

// Point 6. An offline reset given a config without a metadata section finds the lease
// all the same, and is refused while a live collector holds the source.
func TestOfflineFindsTheLeaseWithoutMetadata(t *testing.T) {
	uri := startMongotestd(t)
	client := testsupport.Connect(t, uri)
	const source = "held"
	startDaemon(t, collectorYAML{store: uri, metadata: uri, source: source, sourceURI: uri, leaseTTL: "30s"}.write(t))
	eventually(t, "the first token", func() bool { return tokenSaved(t, client, source) })
	insertRange(t, client, source, 0, 301)
	eventually(t, "301 events", func() bool { return len(storedInserts(t, client, source)) == 301 })
	bare := collectorYAML{store: uri, source: source, sourceURI: uri}.write(t)
	code, out := runCLI(t, "reset", "--offline", "--yes", "--source", source, "--config.file", bare)
	if code == 0 || !strings.Contains(out, "holds this source's lease") {
		t.Errorf("an offline reset with a config without metadata, under a live holder: exit %d\n%s", code, out)
	}
	if n := len(storedInserts(t, client, source)); n != 301 {
		t.Fatalf("%d of 301 events left", n)
	}
}

// Point 7. Offline commands refuse a source the store does not know, naming the ones
// it does, and write nothing.
func TestOfflineRefusesAnUnknownSource(t *testing.T) {
	uri := startMongotestd(t)
	client := testsupport.Connect(t, uri)
	cfg := collectorYAML{store: uri, metadata: uri, source: "known", sourceURI: uri, leaseTTL: "1s"}.write(t)
	d := startDaemon(t, cfg)
	eventually(t, "the first token", func() bool { return tokenSaved(t, client, "known") })
	d.stop(t, syscall.SIGTERM)
	before := storeCollections(t, client)
	for _, command := range []string{"reset", "deregister"} {
		code, out := runCLI(t, command, "--offline", "--yes", "--source", "srcl", "--config.file", cfg)
		if code == 0 || !strings.Contains(out, `"srcl"`) || !strings.Contains(out, "known") {
			t.Errorf("%s --offline of a source the store does not know: exit %d\n%s", command, code, out)
		}
	}
	if after := storeCollections(t, client); !slices.Equal(before, after) {
		t.Errorf("refused commands changed the store's collections: %v, then %v", before, after)
	}
	for _, db := range []string{storeDB, metadataDB} {
		if n, _ := client.Database(db).Collection("oplog_collector_leases").CountDocuments(t.Context(), bson.D{{Key: "_id", Value: "srcl"}}); n != 0 {
			t.Errorf("a refused command left a lease document for srcl in %s", db)
		}
	}
}

func storeCollections(t *testing.T, client *mongo.Client) []string {
	t.Helper()
	names, err := client.Database(storeDB).ListCollectionNames(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// leaseTimes reads the source's lease, wherever it is kept: renewed_at, acquired_at and
// its TTL.
func leaseTimes(t *testing.T, client *mongo.Client, source string) (renewed, acquired time.Time, ttl time.Duration) {
	t.Helper()
	var l struct {
		RenewedAt  bson.DateTime `bson:"renewed_at"`
		AcquiredAt bson.DateTime `bson:"acquired_at"`
		TTLSeconds float64       `bson:"ttl_seconds"`
	}
	for _, db := range []string{storeDB, metadataDB} {
		if err := client.Database(db).Collection("oplog_collector_leases").FindOne(t.Context(), bson.D{{Key: "_id", Value: source}}).Decode(&l); err == nil {
			return l.RenewedAt.Time(), l.AcquiredAt.Time(), time.Duration(l.TTLSeconds * float64(time.Second))
		}
	}
	t.Fatalf("no lease for %s", source)
	return
}

// Point 8. A collector SIGKILLed and started again on the same host (as systemd's
// Restart=on-failure does), with the default 30 s lease: the new process proves its
// predecessor dead and takes the source over while the lease is still live, instead of
// waiting for it to expire.
func TestRestartAfterSIGKILLTakesOverAtOnce(t *testing.T) {
	uri := startMongotestd(t)
	client := testsupport.Connect(t, uri)
	const source = "restarted"
	cfg := collectorYAML{store: uri, metadata: uri, source: source, sourceURI: uri}.write(t)
	d := startDaemon(t, cfg)
	holderOf(t, []*daemon{d}, source, nil)
	insertRange(t, client, source, 0, 10)
	eventually(t, "10 events", func() bool { return len(storedInserts(t, client, source)) == 10 })
	d.stop(t, syscall.SIGKILL)
	renewed, _, ttl := leaseTimes(t, client, source)
	killed := time.Now()
	d = startDaemon(t, cfg)
	holderOf(t, []*daemon{d}, source, nil)
	running := time.Since(killed)
	_, acquired, _ := leaseTimes(t, client, source)
	if !acquired.Before(renewed.Add(ttl)) {
		t.Errorf("the restarted collector took the source over only once its predecessor's lease had expired (%v after its last renewal, lease %v); restart to running took %v",
			acquired.Sub(renewed).Round(100*time.Millisecond), ttl, running.Round(10*time.Millisecond))
	}
	insertRange(t, client, source, 10, 20)
	checkEveryIDOnce(t, client, source, 0, 20)
	t.Logf("SIGKILL, start again, running: %v with the default lease of %v", running.Round(10*time.Millisecond), ttl)
}

// oldTool runs the old Python collector's loop, as its manager restarts it beside this
// collector: from the saved token, batches of up to 100 events or 1 s, inserted with
// ObjectId _ids, then the batch's last token saved with {_id} as the only filter, which
// leaves the fields this collector adds (cluster_time) as they were. It runs until ctx
// ends and returns how many batches it wrote.
func oldTool(ctx context.Context, t *testing.T, source, store *mongo.Client, name string) int {
	var saved struct {
		Token bson.Raw `bson:"token"`
	}
	tokens := store.Database(storeDB).Collection(oplogstore.TokensCollection(name))
	if err := tokens.FindOne(ctx, bson.D{{Key: "_id", Value: oplogstore.TokenID(name)}}).Decode(&saved); err != nil {
		t.Errorf("the old tool finds no token: %v", err)
		return 0
	}
	cs, err := source.Database(name).Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(saved.Token).
		SetFullDocument(options.UpdateLookup).SetMaxAwaitTime(100*time.Millisecond))
	if err != nil {
		t.Errorf("the old tool cannot watch: %v", err)
		return 0
	}
	defer cs.Close(context.Background())
	events := store.Database(storeDB).Collection(oplogstore.EventsCollection(name))
	batches := 0
	for ctx.Err() == nil {
		var batch []any
		var last bson.Raw
		for since := time.Now(); len(batch) < 100 && time.Since(since) < time.Second && cs.TryNext(ctx); {
			ev := cs.Current
			ts, i := ev.Lookup("clusterTime").Timestamp()
			batch = append(batch, bson.D{
				{Key: "_id", Value: bson.NewObjectID()},
				{Key: "_resume_token", Value: ev.Lookup("_id")},
				{Key: "cluster_name", Value: name},
				{Key: "ts", Value: bson.Timestamp{T: ts, I: i}},
				{Key: "wall", Value: bson.NewDateTimeFromTime(time.Now())},
				{Key: "op_type", Value: ev.Lookup("operationType")},
				{Key: "ns", Value: ev.Lookup("ns", "db").StringValue() + "." + ev.Lookup("ns", "coll").StringValue()},
				{Key: "doc_key", Value: ev.Lookup("documentKey")},
				{Key: "full_document", Value: ev.Lookup("fullDocument")},
			})
			last = slices.Clone(ev.Lookup("_id").Document())
		}
		if len(batch) == 0 {
			continue
		}
		if _, err := events.InsertMany(context.Background(), batch); err != nil {
			t.Errorf("the old tool's insert: %v", err)
			return batches
		}
		if _, err := tokens.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: oplogstore.TokenID(name)}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "token", Value: last}, {Key: "updated_at", Value: bson.NewDateTimeFromTime(time.Now())}}}},
			options.UpdateOne().SetUpsert(true)); err != nil {
			t.Errorf("the old tool's token save: %v", err)
			return batches
		}
		batches++
	}
	return batches
}

// waitFor is eventually that reports a timeout as an error and goes on, so that one
// test can show every point it checks.
func waitFor(t *testing.T, what string, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // against hanging only
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for %s", what)
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// metricValue is the value of the first series of the daemon's /metrics whose line
// starts with prefix; -1 when there is none.
func metricValue(d *daemon, prefix string) float64 {
	resp, err := http.Get(d.url + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// Point 9. The old Python tool, restarted by its manager beside this collector, writes
// into the same store: the source shows it (its state, a counter) and range warns of
// it. Once the store is left to the old tool, whose token saves leave this collector's
// cluster_time as it was, range reads the checkpoint from the saved token itself.
func TestForeignWriterIsSeen(t *testing.T) {
	uri := startMongotestd(t, "--history=1000000", shortTransactions)
	client := testsupport.Connect(t, uri)
	const source = "legacy"
	d := startDaemon(t, collectorYAML{store: uri, metadata: uri, source: source, sourceURI: uri, leaseTTL: "1s"}.write(t))
	holderOf(t, []*daemon{d}, source, nil)
	insertRange(t, client, source, 0, 5)
	eventually(t, "5 events", func() bool { return len(storedInserts(t, client, source)) == 5 })

	ctx, stopOld := context.WithCancel(context.Background())
	oldDone := make(chan int, 1)
	go func() { oldDone <- oldTool(ctx, t, client, client, source) }()
	insertRange(t, client, source, 5, 10)
	waitFor(t, "the source's state to say another process writes into its store", func() bool {
		return captureState(d, source, nil) == "foreign_writer"
	})
	if v := metricValue(d, `oplog_capture_foreign_writes_total{`); v <= 0 {
		t.Errorf("oplog_capture_foreign_writes_total = %v", v)
	}
	if code, out := runCLI(t, "range", "--source", source, "--store", uri); code != 0 || !regexp.MustCompile(`(?m)^Warning: .*no lease`).MatchString(out) {
		t.Errorf("range does not warn of the writes of a process that holds no lease: exit %d\n%s", code, out)
	}

	// The old tool alone: this collector stopped, its cluster_time left behind.
	d.stop(t, syscall.SIGTERM)
	insertRange(t, client, source, 10, 20)
	eventually(t, "the old tool to save a position past the 20th insert", func() bool {
		var doc struct {
			Token bson.Raw `bson:"token"`
		}
		if client.Database(storeDB).Collection(oplogstore.TokensCollection(source)).FindOne(t.Context(), bson.D{}).Decode(&doc) != nil {
			return false
		}
		var last struct {
			TS bson.Timestamp `bson:"ts"`
		}
		if client.Database(storeDB).Collection(oplogstore.EventsCollection(source)).FindOne(t.Context(),
			bson.D{{Key: "doc_key._id", Value: 19}}).Decode(&last) != nil {
			return false
		}
		ts, ok := oplogstore.TokenTime(doc.Token)
		return ok && !ts.Before(last.TS)
	})
	stopOld()
	t.Logf("the old tool wrote %d batches", <-oldDone)
	var doc struct {
		Token bson.Raw `bson:"token"`
	}
	if err := client.Database(storeDB).Collection(oplogstore.TokensCollection(source)).FindOne(t.Context(), bson.D{}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	want, _ := oplogstore.TokenTime(doc.Token)
	code, out := runCLI(t, "range", "--source", source, "--store", uri, "--format", "json")
	if code != 0 || !strings.Contains(out, fmt.Sprintf(`"checkpoint": {
    "timestamp": "%d,%d"`, want.T, want.I)) {
		t.Errorf("range's checkpoint is not the saved token's time %d,%d: exit %d\n%s", want.T, want.I, code, out)
	}
}

// Point 10. Admin requests refused for want of credentials (401), from another site
// (403) or without JSON (415) are logged, at most once a minute per address and reason,
// and never with the credentials they carried.
func TestRefusedAdminRequestsAreLogged(t *testing.T) {
	uri := startMongotestd(t)
	a := writeAuth(t)
	d := startDaemon(t, collectorYAML{store: uri, metadata: uri, source: "guarded", sourceURI: uri}.write(t),
		"--web.enable-admin-api", "--web.config.file", a.web)
	reset := d.url + "/api/v1/sources/guarded/reset"
	confirm := `{"confirm": "guarded"}`
	for range 3 {
		if code, _ := post(t, reset, "application/json", confirm, nil, ""); code != http.StatusUnauthorized {
			t.Fatalf("no credentials: %d", code)
		}
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, reset, strings.NewReader(confirm))
	req.SetBasicAuth("admin", "hunter2-wrong")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong password: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if code, _ := post(t, reset, "text/plain", confirm, nil, "admin"); code != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: %d", code)
	}
	if code, _ := post(t, reset, "application/json", confirm, map[string]string{"Sec-Fetch-Site": "cross-site"}, "admin"); code != http.StatusForbidden {
		t.Fatalf("cross-site: %d", code)
	}
	for status, want := range map[int]int{401: 1, 415: 1, 403: 1} {
		re := regexp.MustCompile(`(?m)^.*msg="Request refused".*status=` + strconv.Itoa(status) + `.*remote_addr=127\.0\.0\.1\b.*$`)
		var lines []string
		eventually(t, fmt.Sprintf("a log line for %d", status), func() bool {
			lines = re.FindAllString(d.log(), -1)
			return len(lines) >= want
		})
		if len(lines) != want {
			t.Errorf("%d refusals logged %d times in a minute, want %d:\n%s", status, len(lines), want, strings.Join(lines, "\n"))
		}
	}
	if strings.Contains(d.log(), "hunter2") || strings.Contains(d.log(), "s3cret") {
		t.Errorf("a password reached the log:\n%s", d.log())
	}
}
