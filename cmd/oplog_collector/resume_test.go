package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// writeSourceConfig is a collector config with its store and metadata on storeURI and
// one source on sourceURI, capturing its database app.
func writeSourceConfig(t *testing.T, storeURI, source, sourceURI string) string {
	t.Helper()
	text := fmt.Sprintf("collector:\n  store: {uri: %q}\n  metadata: {uri: %q}\n"+
		"  heartbeat_interval: 200ms\n  checkpoint_interval: 50ms\n  max_backoff: 200ms\n  lease_ttl: 1s\n  batch: {max_events: 100, max_wait: 20ms}\n"+
		"  sources:\n    - {name: %s, uri: %q, database: app}\n", storeURI, storeURI, source, sourceURI)
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func insertIDs(t *testing.T, client *mongo.Client, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := client.Database("app").Collection("c").InsertOne(t.Context(), bson.D{{Key: "_id", Value: int32(i)}}); err != nil {
			t.Fatal(err)
		}
	}
}

func ids(ranges ...[2]int) []int32 {
	var out []int32
	for _, r := range ranges {
		for i := r[0]; i < r[1]; i++ {
			out = append(out, int32(i))
		}
	}
	return out
}

// storedTS is the cluster time of the stored insert of _id id.
func storedTS(t *testing.T, store *mongo.Client, source string, id int) bson.Timestamp {
	t.Helper()
	var doc struct {
		TS bson.Timestamp `bson:"ts"`
	}
	if err := store.Database("oplog_backup_db").Collection("oplogs_"+source).FindOne(t.Context(),
		bson.D{{Key: "op_type", Value: "insert"}, {Key: "doc_key._id", Value: int32(id)}}).Decode(&doc); err != nil {
		t.Fatalf("the stored insert of _id %d: %v", id, err)
	}
	return doc.TS
}

func tsArg(ts bson.Timestamp) string { return fmt.Sprintf("%d,%d", ts.T, ts.I) }

// A collector stopped for longer than the source's oplog reaches loses its position
// (error_resume_token_lost). resume --from earliest captures again from the oldest
// event the source still holds, keeping the stored history: the store then holds
// every event it held before and every event the source still held, each once; the
// gap between is recorded with both ends exact, range shows them, and replay
// --dry-run refuses to cross it (exit 3) while it replays a range after it. A start
// the source no longer holds is refused, changing nothing.
func TestResumeAfterALossKeepsWhatTheSourceStillHolds(t *testing.T) {
	const source = "lost"
	storeURI := startMongotestd(t, "--port", "0")
	sourceURI := startMongotestd(t, "--port", "0", "--history", "100")
	store, src := testsupport.Connect(t, storeURI), testsupport.Connect(t, sourceURI)
	cfg := writeSourceConfig(t, storeURI, source, sourceURI)
	auth := writeAuth(t)
	daemonArgs := []string{"--web.enable-admin-api", "--web.config.file", auth.web}
	client := []string{"--collector.url", "", "--http.config.file", auth.client}

	saved, first := stopAndFallBehind(t, cfg, daemonArgs, store, src, source)

	d := startDaemon(t, cfg, daemonArgs...)
	client[1] = d.url
	eventually(t, "error_resume_token_lost", func() bool {
		return strings.Contains(auth.get(t, d.url+"/metrics"), `oplog_capture_state{source_cluster="lost",state="error_resume_token_lost"} 1`)
	})
	// The headroom's other end is exported meanwhile: the source's oldest entry.
	want := fmt.Sprintf(`oplog_capture_source_oplog_oldest_timestamp_seconds{shard="",source_cluster="lost"} %v`, float64(first.T))
	eventually(t, want, func() bool { return strings.Contains(auth.get(t, d.url+"/metrics"), want) })

	// A start the source no longer holds is refused, and changes nothing.
	code, out := runCLI(t, append([]string{"resume", "--source", source, "--from", tsArg(saved), "--yes"}, client...)...)
	if code != 1 || !strings.Contains(out, "before the oldest entry the source's oplog still holds") {
		t.Fatalf("resume from the lost position: exit %d\n%s", code, out)
	}
	if !strings.Contains(auth.get(t, d.url+"/metrics"), `state="error_resume_token_lost"} 1`) {
		t.Fatal("a refused resume changed the source's state")
	}

	// Counted before: once resumed, the collector stores the source's events at once.
	kept := storedCount(t, store, source)
	code, out = runCLI(t, append([]string{"resume", "--source", source, "--from", "earliest", "--yes"}, client...)...)
	if code != 0 {
		t.Fatalf("resume --from earliest: exit %d\n%s\n%s", code, out, d.log())
	}
	for _, want := range []string{
		fmt.Sprintf("capture starts again at %s", oplogstore.FormatTS(first)),
		fmt.Sprintf("Not captured: the events after %s and before %s", oplogstore.FormatTS(saved), oplogstore.FormatTS(first)),
		fmt.Sprintf("%d stored events kept", kept),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("resume says\n%s\nwithout %q", out, want)
		}
	}
	if !strings.Contains(d.log(), `msg="Source's capture resumed`) || !strings.Contains(d.log(), "user=admin") {
		t.Errorf("the resume is not logged with who asked:\n%s", d.log())
	}

	// Every event the source still held is captured, and the capture goes on.
	eventually(t, "inserts 200 to 299 stored after the resume", func() bool {
		return slices.Equal(storedInserts(t, store, source), ids([2]int{0, 40}, [2]int{200, 300}))
	})
	insertIDs(t, src, 300, 310)
	eventually(t, "the capture to go on", func() bool {
		return slices.Equal(storedInserts(t, store, source), ids([2]int{0, 40}, [2]int{200, 310}))
	})
	if got := storedTS(t, store, source, 200); got != first {
		t.Fatalf("the insert of _id 200 is stored at %v; the source's oplog started at %v", got, first)
	}

	expectOneGap(t, storeURI, source, saved, first)
	// replay --dry-run refuses to cross the gap, and replays after it.
	from, to := tsArg(storedTS(t, store, source, 10)), tsArg(storedTS(t, store, source, 250))
	code, out = runCLI(t, "replay", "--source", source, "--store", storeURI, "--from", from, "--to", to, "--dry-run")
	if code != 3 || !strings.Contains(out, fmt.Sprintf("events after %s and before %s may be missing", oplogstore.FormatTS(saved), oplogstore.FormatTS(first))) {
		t.Fatalf("replay --dry-run across the gap: exit %d, want 3 naming it\n%s", code, out)
	}
	code, out = runCLI(t, "replay", "--source", source, "--store", storeURI, "--from", tsArg(first), "--to", to, "--dry-run")
	if code != 0 || !strings.Contains(out, "50 events") {
		t.Fatalf("replay --dry-run after the gap: exit %d, want 0 with the 50 inserts after 200 up to 250\n%s", code, out)
	}

	// --offline is refused while this collector holds the source.
	code, out = runCLI(t, "resume", "--offline", "--source", source, "--from", "earliest", "--yes", "--config.file", cfg)
	if code != 1 || !strings.Contains(out, "holds this source's lease") {
		t.Fatalf("resume --offline beside a running collector: exit %d\n%s", code, out)
	}
}

// expectOneGap checks that range shows one gap of source, after after and before
// before, and the two stretches recoverable on either side of it.
func expectOneGap(t *testing.T, storeURI, source string, after, before bson.Timestamp) {
	t.Helper()
	code, out := runCLI(t, "range", "--source", source, "--store", storeURI, "--format", "json")
	if code != 0 {
		t.Fatalf("range: exit %d\n%s", code, out)
	}
	var window struct {
		Gaps []struct {
			Reason        string
			After, Before struct{ Timestamp string }
		}
		Recoverable []struct{ From, To struct{ Timestamp string } }
	}
	if err := json.Unmarshal([]byte(out), &window); err != nil {
		t.Fatalf("range --format json: %v\n%s", err, out)
	}
	if len(window.Gaps) != 1 || window.Gaps[0].After.Timestamp != tsArg(after) || window.Gaps[0].Before.Timestamp != tsArg(before) {
		t.Fatalf("range's gaps: %+v; want one, after %s and before %s", window.Gaps, tsArg(after), tsArg(before))
	}
	if len(window.Recoverable) != 2 || window.Recoverable[0].To.Timestamp != tsArg(after) || window.Recoverable[1].From.Timestamp != tsArg(before) {
		t.Fatalf("range's recoverable stretches: %+v; want one up to %s and one from %s", window.Recoverable, tsArg(after), tsArg(before))
	}
}

// stopAndFallBehind captures source's inserts 0 to 39, stops the collector, and inserts
// 260 more while it is stopped: the source's history of 100 keeps 200 to 299. It returns
// the position saved at the stop and the time of the source's oldest oplog entry.
func stopAndFallBehind(t *testing.T, cfg string, daemonArgs []string, store, src *mongo.Client, source string) (saved, oldest bson.Timestamp) {
	t.Helper()
	d := startDaemon(t, cfg, daemonArgs...)
	eventually(t, "the first position saved", func() bool { return tokenSaved(t, store, source) })
	insertIDs(t, src, 0, 40)
	eventually(t, "inserts 0 to 39 stored", func() bool { return slices.Equal(storedInserts(t, store, source), ids([2]int{0, 40})) })
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, d.log())
	}
	checkpoint, err := oplogstore.ReadCheckpoint(t.Context(), store.Database("oplog_backup_db"), source)
	if err != nil || !checkpoint.Known {
		t.Fatalf("the checkpoint at the stop: %+v, %v", checkpoint, err)
	}
	insertIDs(t, src, 40, 300)
	var first struct {
		TS bson.Timestamp `bson:"ts"`
	}
	if err := src.Database("local").Collection("oplog.rs").FindOne(t.Context(), bson.D{}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: 1}})).Decode(&first); err != nil {
		t.Fatal(err)
	}
	return checkpoint.TS, first.TS
}
