package mongotest_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// The oplog's first and last entries, read as a monitoring user reads them
// (db.getReplicationInfo()'s tFirst and tLast: the first and last entry of
// local.oplog.rs in natural order), agree with the change-stream history: the first
// entry is the oldest time a stream can still start at, and once the oplog has been
// truncated a time before it is refused with 286 ChangeStreamHistoryLost.

// oplogEntry reads the first (natural 1) or last (natural -1) entry of the oplog.
func oplogEntry(t *testing.T, c *mongo.Client, natural int) bson.Raw {
	t.Helper()
	raw, err := c.Database("local").Collection("oplog.rs").FindOne(ctx(t), bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: natural}})).Raw()
	must(t, err)
	return raw
}

func entryTS(t *testing.T, entry bson.Raw) bson.Timestamp {
	t.Helper()
	sec, inc, ok := entry.Lookup("ts").TimestampOK()
	if !ok {
		t.Fatalf("an oplog entry without a timestamp ts: %s", entry)
	}
	return bson.Timestamp{T: sec, I: inc}
}

// startsAt opens a stream at ts and returns the _ids of the inserts it reads, all
// it has: the history's events from ts on.
func startsAt(t *testing.T, coll *mongo.Collection, ts bson.Timestamp) ([]int64, error) {
	t.Helper()
	cx := ctx(t)
	cs, err := coll.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetStartAtOperationTime(&ts))
	if err != nil {
		return nil, err
	}
	defer cs.Close(cx)
	var ids []int64
	for cs.TryNext(cx) {
		ids = append(ids, cs.Current.Lookup("documentKey", "_id").AsInt64())
	}
	return ids, cs.Err()
}

func wantHistoryLost(t *testing.T, what string, err error) {
	t.Helper()
	var se mongo.ServerError
	if !errors.As(err, &se) || !se.HasErrorCode(286) || !se.HasErrorLabel("NonResumableChangeStreamError") {
		t.Fatalf("%s: err = %v, want 286 ChangeStreamHistoryLost with NonResumableChangeStreamError", what, err)
	}
}

func TestOplogFirstAndLastEntryFollowTheHistory(t *testing.T) {
	const history = 5
	srv := mongotest.New(t, "a 5-event history", mongotest.Options{History: history, NoopInterval: time.Hour})
	c := connect(t, srv.URI())
	coll := c.Database("h").Collection("c")
	cx := ctx(t)

	// A new set: its oplog starts with the initiation's no-op, which is also its last
	// entry until something is written.
	first := oplogEntry(t, c, 1)
	if op, _ := first.Lookup("op").StringValueOK(); op != "n" || first.Lookup("o", "msg").StringValue() != "initiating set" {
		t.Fatalf("first entry of a new set: %s, want the no-op initiating the set", first)
	}
	if last := oplogEntry(t, c, -1); entryTS(t, last) != entryTS(t, first) {
		t.Fatalf("last entry of a set never written to: %s, want its first %s", last, first)
	}
	ids, err := startsAt(t, coll, entryTS(t, first))
	must(t, err)
	if len(ids) != 0 {
		t.Fatalf("a stream from the initiation read %v", ids)
	}
	// Before the initiation nothing happened, and an oplog that starts with it has lost
	// nothing: mongod lets a stream start there (SERVER-50903, works as designed).
	if _, err := startsAt(t, coll, bson.Timestamp{T: 1}); err != nil {
		t.Fatalf("startAtOperationTime before the initiation of a set never truncated: %v", err)
	}

	// Writes: the last entry is the newest write's.
	var times []bson.Timestamp // the time of the insert of _id i
	for i := range 20 {
		_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: int64(i)}})
		must(t, err)
		last := oplogEntry(t, c, -1)
		if op, ns := last.Lookup("op").StringValue(), last.Lookup("ns").StringValue(); op != "i" || ns != "h.c" {
			t.Fatalf("last entry after an insert: %s", last)
		}
		times = append(times, entryTS(t, last))
	}
	// The history holds the last 5 events, the inserts of _id 15 to 19. The first
	// entry is the oldest of them.
	first = oplogEntry(t, c, 1)
	if got, want := entryTS(t, first), times[15]; got != want {
		t.Fatalf("first entry %s, want the insert of _id 15 at %v", first, want)
	}
	ids, err = startsAt(t, coll, entryTS(t, first))
	must(t, err)
	if want := []int64{15, 16, 17, 18, 19}; !slices.Equal(ids, want) {
		t.Fatalf("a stream from the first entry read %v, want %v", ids, want)
	}
	_, err = startsAt(t, coll, times[14])
	wantHistoryLost(t, "startAtOperationTime of an evicted entry", err)
	older := entryTS(t, first)
	older.I--
	_, err = startsAt(t, coll, older)
	wantHistoryLost(t, "startAtOperationTime just before the first entry", err)

	// A truncation: the first entry is the truncation's no-op, newer than every write.
	srv.TruncateHistory()
	first = oplogEntry(t, c, 1)
	if op, _ := first.Lookup("op").StringValueOK(); op != "n" || !times[19].Before(entryTS(t, first)) {
		t.Fatalf("first entry after a truncation: %s, want a no-op after the last write (%v)", first, times[19])
	}
	_, err = startsAt(t, coll, times[19])
	wantHistoryLost(t, "startAtOperationTime of a truncated write", err)
	ids, err = startsAt(t, coll, entryTS(t, first))
	must(t, err)
	if len(ids) != 0 {
		t.Fatalf("a stream from the truncation read %v", ids)
	}
}

// A set initiated long ago whose oplog never filled: its first entry is the
// initiation's, as old as it, and a stream may start anywhere after it.
func TestOplogOfASetInitiatedLongAgo(t *testing.T) {
	srv := mongotest.New(t, "a set initiated two days ago", mongotest.Options{InitiatedAgo: 48 * time.Hour, History: 3})
	c := connect(t, srv.URI())
	first := oplogEntry(t, c, 1)
	age := time.Since(time.Unix(int64(entryTS(t, first).T), 0))
	if age < 47*time.Hour || age > 49*time.Hour || first.Lookup("o", "msg").StringValue() != "initiating set" {
		t.Fatalf("first entry %s is %v old, want the initiation's, 48h old", first, age)
	}
	yesterday := bson.Timestamp{T: uint32(time.Now().Add(-24 * time.Hour).Unix())}
	coll := c.Database("h").Collection("c")
	_, err := coll.InsertOne(ctx(t), bson.D{{Key: "_id", Value: int64(1)}})
	must(t, err)
	ids, err := startsAt(t, coll, yesterday)
	must(t, err)
	if !slices.Equal(ids, []int64{1}) {
		t.Fatalf("a stream from yesterday read %v, want the one insert", ids)
	}
	// A history of 3 events, once full, evicts it.
	_, err = coll.InsertMany(ctx(t), []any{bson.D{{Key: "_id", Value: int64(2)}}, bson.D{{Key: "_id", Value: int64(3)}}, bson.D{{Key: "_id", Value: int64(4)}}})
	must(t, err)
	if first := oplogEntry(t, c, 1); time.Since(time.Unix(int64(entryTS(t, first).T), 0)) > time.Hour {
		t.Fatalf("the initiation's entry is still first after the history filled: %s", first)
	}
	_, err = startsAt(t, coll, yesterday)
	wantHistoryLost(t, "startAtOperationTime of yesterday once the history filled", err)
}

// Only the first and last entries are imitated: any other read of the oplog fails with
// 115, naming local.oplog.rs, rather than answer wrongly.
func TestOplogRefusesOtherReads(t *testing.T) {
	srv := mongotest.New(t, "the oplog's imitation", mongotest.Options{})
	oplog := connect(t, srv.URI()).Database("local").Collection("oplog.rs")
	cx := ctx(t)
	for what, run := range map[string]func() error{
		"a filter": func() error { return oplog.FindOne(cx, bson.D{{Key: "op", Value: "i"}}).Err() },
		"no limit": func() error { _, err := oplog.Find(cx, bson.D{}); return err },
		"a sort on ts": func() error {
			return oplog.FindOne(cx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "ts", Value: -1}})).Err()
		},
		"a skip":          func() error { return oplog.FindOne(cx, bson.D{}, options.FindOne().SetSkip(1)).Err() },
		"an aggregate":    func() error { _, err := oplog.Aggregate(cx, mongo.Pipeline{}); return err },
		"a count":         func() error { _, err := oplog.EstimatedDocumentCount(cx); return err },
		"an insert":       func() error { _, err := oplog.InsertOne(cx, bson.D{}); return err },
		"a change stream": func() error { _, err := oplog.Watch(cx, mongo.Pipeline{}); return err },
	} {
		err := run()
		if codeOf(err) != 115 || !strings.Contains(err.Error(), "local.oplog.rs") {
			// A change stream on local is refused as mongod refuses it (73).
			if !(what == "a change stream" && codeOf(err) == 73) {
				t.Errorf("%s: err = %v, want 115 naming local.oplog.rs", what, err)
			}
		}
	}
}
