package collector

import (
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/pitr"
	"github.com/mongomigrate/observability/internal/testsupport"
)

func ts(t uint32) bson.Timestamp { return bson.Timestamp{T: t, I: 1} }

// recoverableCases: a store whose oldest event is at 100 and checkpoint at 500, with
// the gaps of each case; since 0 means no complete stretch reaches the checkpoint.
var recoverableCases = []struct {
	name  string
	gaps  []oplogstore.Gap
	since uint32
}{
	{"no gap", nil, 100},
	{"a reset, capture started again at 300", []oplogstore.Gap{{Reason: oplogstore.GapReset, After: ts(250), Before: ts(300)}}, 300},
	{"two gaps: the later one counts", []oplogstore.Gap{
		{Reason: oplogstore.GapResumeTokenLost, After: ts(150), Before: ts(200)},
		{Reason: oplogstore.GapReset, After: ts(350), Before: ts(400)},
	}, 400},
	{"overlapping gaps: the latest end counts", []oplogstore.Gap{
		{Reason: oplogstore.GapReset, After: ts(150), Before: ts(450)},
		{Reason: oplogstore.GapResumeTokenLost, After: ts(200), Before: ts(300)},
	}, 450},
	{"a gap from the beginning (start unknown)", []oplogstore.Gap{{Reason: oplogstore.GapPositionMissing, Before: ts(220)}}, 220},
	{"a gap before the oldest event changes nothing", []oplogstore.Gap{{Reason: oplogstore.GapReset, After: ts(10), Before: ts(50)}}, 100},
	{"a gap from the checkpoint on (resume token lost) changes nothing", []oplogstore.Gap{{Reason: oplogstore.GapResumeTokenLost, After: ts(500)}}, 100},
	{"a gap still open before the checkpoint", []oplogstore.Gap{{Reason: oplogstore.GapPositionMissing, After: ts(300)}}, 0},
	{"a gap closed after the checkpoint", []oplogstore.Gap{{Reason: oplogstore.GapReset, After: ts(300), Before: ts(600)}}, 0},
	{"capture restarted exactly at the checkpoint", []oplogstore.Gap{{Reason: oplogstore.GapReset, After: ts(300), Before: ts(500)}}, 500},
}

func TestRecoverableSince(t *testing.T) {
	for _, c := range recoverableCases {
		since, ok := recoverableSince(ts(100), ts(500), c.gaps)
		if want := c.since != 0; ok != want || (ok && since != ts(c.since)) {
			t.Errorf("%s: recoverableSince = %v, %v; want %d (ok %v)", c.name, since, ok, c.since, want)
		}
	}
	if _, ok := recoverableSince(ts(100), bson.Timestamp{}, nil); ok {
		t.Error("a store without a checkpoint proves no stretch complete")
	}
	if _, ok := recoverableSince(ts(600), ts(500), nil); ok {
		t.Error("a checkpoint before the oldest event proves no stretch complete")
	}
}

// The exported start of the recoverable window is the start of the last stretch
// `oplog_collector range` lists when that stretch reaches the checkpoint, read from a
// real store holding each case's events, position and gaps.
func TestRecoverableSinceAgreesWithRange(t *testing.T) {
	client := testsupport.Connect(t, mongotest.URI(t))
	db := client.Database(config.DefaultStoreDatabase)
	for i, c := range recoverableCases {
		source := fmt.Sprintf("case%d", i)
		var events []any
		for _, at := range []uint32{100, 300, 480} {
			events = append(events, bson.D{{Key: oplogstore.FieldClusterName, Value: source}, {Key: oplogstore.FieldTS, Value: ts(at)}, {Key: oplogstore.FieldOpType, Value: "insert"}})
		}
		if _, err := db.Collection(oplogstore.EventsCollection(source)).InsertMany(t.Context(), events); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Collection(oplogstore.TokensCollection(source)).InsertOne(t.Context(), bson.D{
			{Key: oplogstore.FieldID, Value: oplogstore.TokenID(source)}, {Key: oplogstore.TokenFieldToken, Value: bson.D{{Key: "_data", Value: "00"}}},
			{Key: oplogstore.TokenFieldClusterTime, Value: ts(500)},
		}); err != nil {
			t.Fatal(err)
		}
		for j, g := range c.gaps {
			g.ID = fmt.Sprint(j)
			if _, err := db.Collection(oplogstore.GapsCollection(source)).InsertOne(t.Context(), g); err != nil {
				t.Fatal(err)
			}
		}
		w, err := pitr.Range(t.Context(), db, source)
		if err != nil {
			t.Fatal(err)
		}
		gaps, err := oplogstore.ReadGaps(t.Context(), db, source)
		if err != nil {
			t.Fatal(err)
		}
		since, ok := recoverableSince(ts(100), ts(500), gaps)
		last := len(w.Recoverable) - 1
		rangeOK := last >= 0 && w.Recoverable[last].To.Timestamp == "500,1"
		if ok != rangeOK || (ok && w.Recoverable[last].From.Timestamp != fmt.Sprintf("%d,%d", since.T, since.I)) {
			t.Errorf("%s: recoverableSince = %v, %v; range's stretches %+v", c.name, since, ok, w.Recoverable)
		}
	}
}

// A collector exports its gaps and the recoverable window: after a reset the window
// starts where capture started again, not at the wiped store's oldest event.
func TestRecoverableWindowAfterAReset(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	h := startManager(t, collectorConfig(t, uri, "", shortLease, testSource{name: "window", uri: uri, database: "w"}))
	h.waitState("window", stateRunning)
	insertSeq(t, client, "w", "c", 0, 5)
	eventually(t, "the recoverable window from the oldest event, no gap recorded", func() bool {
		return h.gauge("oplog_capture_recoverable_since_timestamp_seconds", "source_cluster", "window") > 0 &&
			h.gauge("oplog_capture_recoverable_since_timestamp_seconds", "source_cluster", "window") == h.gauge("oplog_capture_store_oldest_timestamp_seconds", "source_cluster", "window") &&
			h.gauge("oplog_capture_gaps", "source_cluster", "window") == 0 && h.gauge("oplog_capture_open_gaps", "source_cluster", "window") == 0
	})
	if _, err := h.manager.Reset(t.Context(), "window", tester); err != nil {
		t.Fatal(err)
	}
	gaps := client.Database(config.DefaultStoreDatabase).Collection(oplogstore.GapsCollection("window"))
	var gap oplogstore.Gap
	eventually(t, "the reset's gap to be closed", func() bool {
		return gaps.FindOne(t.Context(), bson.D{}).Decode(&gap) == nil && !gap.Before.IsZero()
	})
	insertSeq(t, client, "w", "c", 5, 8)
	eventually(t, "the window to start where capture started again", func() bool {
		return h.gauge("oplog_capture_gaps", "source_cluster", "window") == 1 && h.gauge("oplog_capture_open_gaps", "source_cluster", "window") == 0 &&
			h.gauge("oplog_capture_recoverable_since_timestamp_seconds", "source_cluster", "window") == float64(gap.Before.T) &&
			h.gauge("oplog_capture_checkpoint_timestamp_seconds", "source_cluster", "window") >= float64(gap.Before.T)
	})
}
