package heartbeat

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

func collection(t *testing.T) *mongo.Collection {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(mongotest.URI(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client.Database("heartbeat_test").Collection(t.Name())
}

func read(t *testing.T, coll *mongo.Collection, name string) (bson.Raw, Heartbeat) {
	t.Helper()
	raw, err := coll.FindOne(t.Context(), Filter(name), options.FindOne().SetProjection(Projection())).Raw()
	if err != nil {
		t.Fatal(err)
	}
	hb, problems := Parse(raw)
	if len(problems) > 0 {
		t.Fatalf("problems parsing what Update wrote: %v", problems)
	}
	return raw, hb
}

// What Update writes, Parse reads back: the write and the read are one description.
func TestUpdateThenParse(t *testing.T) {
	coll := collection(t)
	now := time.Date(2026, 6, 2, 10, 0, 0, 700e6, time.UTC)
	report := Report{
		Status: StatusRunning, Scope: "shop", Error: "store write timed out", PID: 4242, Collector: "test",
		Checkpoint: now.Add(-2 * time.Second), LastEvent: now.Add(-time.Minute), FirstOplog: now.Add(-24 * time.Hour),
	}
	if _, err := coll.UpdateOne(t.Context(), Filter("prod"), report.Update(now), options.UpdateOne().SetUpsert(true)); err != nil {
		t.Fatal(err)
	}
	_, hb := read(t, coll, "prod")
	second := func(t time.Time) time.Time { return t.Truncate(time.Second) }
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", hb.Name, "prod"},
		{"status", *hb.Status, StatusRunning},
		{"last report, to the second", *hb.LastReport, second(now)},
		{"checkpoint", *hb.Checkpoint, second(report.Checkpoint)},
		{"last event", *hb.LastEvent, second(report.LastEvent)},
		{"first oplog", *hb.FirstOplog, second(report.FirstOplog)},
		{"error", hb.Error, report.Error},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: wrote %v, read %v", c.what, c.want, c.got)
		}
	}

	// A second report updates in place: the _id and registration stay, the error clears,
	// unknown times keep their last value, and a stopped process writes no pid.
	full, err := coll.FindOne(t.Context(), Filter("prod")).Raw()
	if err != nil {
		t.Fatal(err)
	}
	later := Report{Status: StatusStopped, Collector: "test"}
	if _, err := coll.UpdateOne(t.Context(), Filter("prod"), later.Update(now.Add(time.Hour)), options.UpdateOne().SetUpsert(true)); err != nil {
		t.Fatal(err)
	}
	again, err := coll.FindOne(t.Context(), Filter("prod")).Raw()
	if err != nil {
		t.Fatal(err)
	}
	_, hb = read(t, coll, "prod")
	if *hb.Status != StatusStopped || hb.Error != "" || *hb.Checkpoint != second(report.Checkpoint) {
		t.Errorf("after the second report: %+v", hb)
	}
	for _, key := range []string{FieldID, FieldRegistration, FieldScope} {
		if !again.Lookup(key).Equal(full.Lookup(key)) {
			t.Errorf("%s changed on update: %s -> %s", key, full.Lookup(key), again.Lookup(key))
		}
	}
	if pid := again.Lookup("collector_status", "pid"); pid.Type != bson.TypeNull {
		t.Errorf("a stopped collector left pid %s", pid)
	}
	if n, _ := coll.CountDocuments(t.Context(), bson.D{}); n != 1 {
		t.Errorf("%d documents after two reports of one source, want 1", n)
	}
}

// The lease holder a report names and the standby a standby reports are read back; a
// standby's report changes nothing of the holder's.
func TestHolderAndStandbyThenParse(t *testing.T) {
	coll := collection(t)
	now := time.Date(2026, 6, 2, 10, 0, 0, 0, time.UTC)
	holder := Instance{ID: "holder-id", Host: "a", PID: 1}
	report := Report{Status: StatusRunning, Holder: &holder, Collector: "test"}
	if _, err := coll.UpdateOne(t.Context(), Filter("ha"), report.Update(now), options.UpdateOne().SetUpsert(true)); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.UpdateOne(t.Context(), Filter("ha"), StandbyUpdate(Instance{ID: "standby-id", Host: "b", PID: 2}, now.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	_, hb := read(t, coll, "ha")
	if hb.HolderID != "holder-id" || hb.StandbyID != "standby-id" || hb.StandbyReport == nil || !hb.StandbyReport.Equal(now.Add(time.Minute)) {
		t.Errorf("holder %q, standby %q at %v", hb.HolderID, hb.StandbyID, hb.StandbyReport)
	}
	if *hb.Status != StatusRunning || !hb.LastReport.Equal(now) {
		t.Errorf("the standby's report changed the holder's: %+v", hb)
	}
}

// The times are the old collector's: Python's isoformat of an aware UTC time, whole
// seconds; the _id is a random UUID in text form; a whole-cluster scope is null.
func TestUpdateWritesTheOldFormat(t *testing.T) {
	coll := collection(t)
	now := time.Date(2026, 6, 2, 12, 0, 0, 999e6, time.FixedZone("CEST", 2*3600))
	if _, err := coll.UpdateOne(t.Context(), Filter("all"), Report{Status: StatusStandby}.Update(now), options.UpdateOne().SetUpsert(true)); err != nil {
		t.Fatal(err)
	}
	raw, err := coll.FindOne(t.Context(), Filter("all")).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if got := raw.Lookup("collector_status", "last_collector_reported_utc").StringValue(); got != "2026-06-02T10:00:00+00:00" {
		t.Errorf("last report %q, want 2026-06-02T10:00:00+00:00", got)
	}
	if got := raw.Lookup("registration_utc").StringValue(); got != "2026-06-02T10:00:00+00:00" {
		t.Errorf("registration %q", got)
	}
	if id := raw.Lookup("_id").StringValue(); !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("_id %q is not a version-4 UUID", id)
	}
	if scope := raw.Lookup("change_stream_target_db"); scope.Type != bson.TypeNull {
		t.Errorf("whole-cluster scope written as %s, want null", scope)
	}
	if strings.Contains(raw.String(), "mongodb") {
		t.Errorf("the document mentions a connection string: %s", raw)
	}
}

// The old collector's documents: ISO strings with microseconds or none, naive
// times, nulls, a document never reported.
func TestParseOldCollector(t *testing.T) {
	doc, err := bson.Marshal(bson.D{
		{Key: "name", Value: "prod"},
		{Key: "source_connection_string", Value: "mongodb://u:p@h"},
		{Key: "collector_status", Value: bson.D{
			{Key: "status", Value: "running"},
			{Key: "first_oplog_time_utc", Value: "2025-05-20T00:00:00.250000+00:00"},
			{Key: "last_collector_reported_utc", Value: "2025-06-02 10:00:00"},
			{Key: "last_oplog_time_utc", Value: nil},
			{Key: "error_message", Value: nil},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	hb, problems := Parse(doc)
	if len(problems) != 0 || hb.Name != "prod" || *hb.Status != "running" || hb.Checkpoint != nil {
		t.Fatalf("got %+v, problems %v", hb, problems)
	}
	if want := time.Date(2025, 5, 20, 0, 0, 0, 250e6, time.UTC); !hb.FirstOplog.Equal(want) {
		t.Errorf("first oplog %v, want %v", hb.FirstOplog, want)
	}
	if want := time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC); !hb.LastReport.Equal(want) {
		t.Errorf("a naive time is UTC: %v, want %v", hb.LastReport, want)
	}
}

func TestParseProblems(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	cases := []struct {
		doc  bson.D
		want []string
	}{
		{bson.D{{Key: "collector_status", Value: bson.D{{Key: "status", Value: "running"}}}}, []string{"the document has no name"}},
		{bson.D{{Key: "name", Value: int32(3)}}, []string{"name is a BSON 32-bit integer, not a string"}},
		{bson.D{{Key: "name", Value: "a"}, {Key: "collector_status", Value: "running"}}, []string{"collector_status is a BSON string, not a document"}},
		{bson.D{{Key: "name", Value: "a"}, {Key: "collector_status", Value: bson.D{
			{Key: "status", Value: true},
			{Key: "last_oplog_time_utc", Value: int32(7)},
			{Key: "last_collector_reported_utc", Value: "yesterday"},
			{Key: "first_oplog_time_utc", Value: long},
		}}}, []string{
			`collector_status.first_oplog_time_utc: "` + strings.Repeat("x", 64) + `"... (10000 bytes) is not an ISO-8601 time`,
			`collector_status.last_collector_reported_utc: "yesterday" is not an ISO-8601 time`,
			"collector_status.last_oplog_time_utc: a BSON 32-bit integer is not a time",
			"collector_status.status is a BSON boolean, not a string",
		}},
	}
	for _, c := range cases {
		doc, err := bson.Marshal(c.doc)
		if err != nil {
			t.Fatal(err)
		}
		if _, got := Parse(doc); !slices.Equal(got, c.want) {
			t.Errorf("Parse(%v) problems:\n%q\nwant:\n%q", c.doc, got, c.want)
		}
	}
	if _, got := Parse(bson.Raw{5, 0, 0}); !slices.Equal(got, []string{"not a valid BSON document"}) {
		t.Errorf("truncated bytes: %q", got)
	}
}

func TestStatusesAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Statuses {
		if s == "" || seen[s] {
			t.Errorf("status %q listed twice or empty", s)
		}
		seen[s] = true
	}
	for _, s := range []string{StatusStandby, StatusStoreUnavailable, StatusErrorStoppedUnexpectedly} {
		if !seen[s] {
			t.Errorf("%q is not in Statuses", s)
		}
	}
}

// FuzzParse feeds Parse raw bytes: documents as both collectors write them, with invalid
// UTF-8, wrong types and truncations. Parse must never panic, must give the same answer
// twice, and its problems must be sorted, short and valid UTF-8 (they reach logs).
func FuzzParse(f *testing.F) {
	seeds := []bson.D{
		{{Key: "name", Value: "prod"}, {Key: "collector_status", Value: bson.D{
			{Key: "status", Value: "running"},
			{Key: "last_collector_reported_utc", Value: "2025-06-02T10:00:00+00:00"},
			{Key: "last_oplog_time_utc", Value: bson.DateTime(1748858400000)},
			{Key: "first_oplog_time_utc", Value: bson.Timestamp{T: 1748858400, I: 1}},
			{Key: "error_message", Value: "boom"},
		}}},
		{{Key: "name", Value: "bad\xff\xfename"}, {Key: "collector_status", Value: bson.D{{Key: "status", Value: "run\xc3ning"}}}},
		{{Key: "name", Value: "x"}, {Key: "collector_status", Value: bson.D{{Key: "last_oplog_time_utc", Value: "2025-13-45T99:00:00\xff"}}}},
		{{Key: "name", Value: bson.A{"a"}}, {Key: "collector_status", Value: bson.A{}}},
	}
	for _, s := range seeds {
		doc, err := bson.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(doc))
		f.Add([]byte(doc[:len(doc)-3]))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		hb, problems := Parse(data)
		again, problemsAgain := Parse(data)
		if !slices.Equal(problems, problemsAgain) || hb.Name != again.Name || hb.Error != again.Error {
			t.Fatalf("two parses differ: %+v %q / %+v %q", hb, problems, again, problemsAgain)
		}
		if !slices.IsSorted(problems) {
			t.Errorf("problems not sorted: %q", problems)
		}
		for _, p := range problems {
			if len(p) > 200 || !utf8.ValidString(p) {
				t.Errorf("problem too long or not UTF-8: %q", p)
			}
		}
		if hb.Name != "" {
			if name, ok := bson.Raw(data).Lookup("name").StringValueOK(); !ok || name != hb.Name {
				t.Errorf("name %q is not the document's %q", hb.Name, name)
			}
		}
		for _, at := range []*time.Time{hb.LastReport, hb.Checkpoint, hb.LastEvent, hb.FirstOplog} {
			if at != nil && at.Location() != time.UTC {
				t.Errorf("time %v is not UTC", at)
			}
		}
	})
}

func TestParseTime(t *testing.T) {
	str := func(s string) bson.RawValue {
		_, v, _ := bson.MarshalValue(s)
		return bson.RawValue{Type: bson.TypeString, Value: v}
	}
	cases := []struct {
		in   bson.RawValue
		want time.Time
	}{
		{str("2025-06-02T10:00:00+00:00"), time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)},
		{str("2025-06-02T10:00:00.5+00:00"), time.Date(2025, 6, 2, 10, 0, 0, 500e6, time.UTC)},
		{str("2025-06-02T12:00:00+02:00"), time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)},
		{str("2025-06-02T10:00:00"), time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)},
		{str("2025-06-02 10:00:00.250000"), time.Date(2025, 6, 2, 10, 0, 0, 250e6, time.UTC)},
		{str("2025-06-02T10:00:00Z"), time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)},
		{bson.RawValue{Type: bson.TypeDateTime, Value: bsoncoreDate(1748858400123)}, time.Date(2025, 6, 2, 10, 0, 0, 123e6, time.UTC)},
	}
	for _, c := range cases {
		got, err := ParseTime(c.in)
		if err != nil || got == nil || !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%s) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	if got, err := ParseTime(bson.RawValue{}); got != nil || err != nil {
		t.Errorf("absent: %v, %v; want no time, no error", got, err)
	}
	if _, err := ParseTime(str("June 2nd")); err == nil {
		t.Error("a free-text date parsed")
	}
}

func bsoncoreDate(ms int64) []byte {
	_, v, _ := bson.MarshalValue(bson.DateTime(ms))
	return v
}

// A report of an earlier lease epoch never writes over one of a later: FencedFilter
// selects the document only up to the writer's epoch (and one no epoch wrote). Insert
// creates a missing document with the report, and leaves an existing one as it is.
func TestFencedReports(t *testing.T) {
	coll := collection(t)
	now := time.Date(2026, 6, 2, 10, 0, 0, 0, time.UTC)
	later := Report{Status: StatusRunning, Collector: "test", LeaseEpoch: 5, Checkpoint: now}
	res, err := coll.UpdateOne(t.Context(), Filter("prod"), later.Insert(now), options.UpdateOne().SetUpsert(true))
	if err != nil || res.UpsertedCount != 1 {
		t.Fatalf("Insert of a missing document: %+v, %v", res, err)
	}
	stale := Report{Status: StatusRunning, Collector: "test", LeaseEpoch: 4, Checkpoint: now.Add(-time.Hour)}
	if res, err := coll.UpdateOne(t.Context(), FencedFilter("prod", 4), stale.Update(now)); err != nil || res.MatchedCount != 0 {
		t.Fatalf("a report of epoch 4 over one of epoch 5: %+v, %v", res, err)
	}
	if res, err := coll.UpdateOne(t.Context(), Filter("prod"), stale.Insert(now), options.UpdateOne().SetUpsert(true)); err != nil || res.UpsertedCount != 0 || res.ModifiedCount != 0 {
		t.Fatalf("Insert over an existing document: %+v, %v", res, err)
	}
	_, hb := read(t, coll, "prod")
	if hb.LeaseEpoch != 5 || !hb.Checkpoint.Equal(now) {
		t.Fatalf("after a stale report the document says epoch %d, checkpoint %v; want 5 and %v", hb.LeaseEpoch, hb.Checkpoint, now)
	}
	if res, err := coll.UpdateOne(t.Context(), FencedFilter("prod", 6), Report{Status: StatusStopped, Collector: "test", LeaseEpoch: 6}.Update(now)); err != nil || res.MatchedCount != 1 {
		t.Fatalf("a report of epoch 6: %+v, %v", res, err)
	}
	if _, err := coll.UpdateOne(t.Context(), Filter("old"), Report{Status: StatusRunning, Collector: "old tool"}.Update(now), options.UpdateOne().SetUpsert(true)); err != nil {
		t.Fatal(err)
	}
	if res, err := coll.UpdateOne(t.Context(), FencedFilter("old", 1), later.Update(now)); err != nil || res.MatchedCount != 1 {
		t.Fatalf("a report over a document no epoch wrote: %+v, %v", res, err)
	}
}

// The oldest entry of the source's oplog is written in the old collector's time format
// and read back; a report that does not know it removes it, so no stale value
// overstates the resume headroom; and a document without it (the old collector's)
// parses without a problem.
func TestSourceOplogOldest(t *testing.T) {
	coll := collection(t)
	now := time.Date(2026, 6, 2, 10, 0, 0, 0, time.UTC)
	oldest := now.Add(-36*time.Hour - 500*time.Millisecond)
	report := Report{Status: StatusRunning, Collector: "test", Checkpoint: now, SourceOplogOldest: oldest}
	if _, err := coll.UpdateOne(t.Context(), Filter("prod"), report.Update(now), options.UpdateOne().SetUpsert(true)); err != nil {
		t.Fatal(err)
	}
	raw, hb := read(t, coll, "prod")
	if got := raw.Lookup("collector_status", "source_oplog_oldest_time_utc").StringValue(); got != "2026-05-31T21:59:59+00:00" {
		t.Errorf("source_oplog_oldest_time_utc written as %q, want the old collector's format, to the second", got)
	}
	if hb.SourceOplogOldest == nil || !hb.SourceOplogOldest.Equal(oldest.Truncate(time.Second)) {
		t.Errorf("read back %v, want %v", hb.SourceOplogOldest, oldest.Truncate(time.Second))
	}
	report.SourceOplogOldest = time.Time{}
	if _, err := coll.UpdateOne(t.Context(), Filter("prod"), report.Update(now.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	raw, hb = read(t, coll, "prod")
	if hb.SourceOplogOldest != nil || raw.Lookup("collector_status", "source_oplog_oldest_time_utc").Type != 0 {
		t.Errorf("a report that does not know the oldest entry left %v", hb.SourceOplogOldest)
	}
	if hb.Checkpoint == nil || !hb.Checkpoint.Equal(now) {
		t.Errorf("the checkpoint went with it: %v", hb.Checkpoint)
	}
}
