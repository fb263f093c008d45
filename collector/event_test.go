package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// eventSeeds are change events shaped as a server sends them: an insert, an update
// with a session, a database-wide drop and the second fragment of a split event.
func eventSeeds(t testing.TB) []bson.Raw {
	token := func(data string) bson.D { return bson.D{{Key: "_data", Value: data}} }
	ts := bson.Timestamp{T: 1_700_000_000, I: 3}
	events := []bson.D{
		{
			{Key: "_id", Value: token("8265530F00000000032B022C0100296E5A1004")},
			{Key: "operationType", Value: "insert"},
			{Key: "clusterTime", Value: ts},
			{Key: "wallTime", Value: bson.NewDateTimeFromTime(time.Unix(1_700_000_000, 0))},
			{Key: "fullDocument", Value: bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "a"}}},
			{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders"}}},
			{Key: "documentKey", Value: bson.D{{Key: "_id", Value: 1}}},
			{Key: "collectionUUID", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{7}, 16)}},
		},
		{
			{Key: "_id", Value: token("8265530F00000000042B022C0100296E5A1004")},
			{Key: "operationType", Value: "update"},
			{Key: "clusterTime", Value: bson.Timestamp{T: ts.T, I: 4}},
			{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders"}}},
			{Key: "documentKey", Value: bson.D{{Key: "_id", Value: 1}}},
			{Key: "updateDescription", Value: bson.D{{Key: "updatedFields", Value: bson.D{{Key: "name", Value: "b"}}}, {Key: "removedFields", Value: bson.A{}}}},
			{Key: "lsid", Value: bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{1}, 16)}}}},
			{Key: "txnNumber", Value: int64(12)},
		},
		{
			{Key: "_id", Value: token("8265530F00000000052B022C0100296E5A1004")},
			{Key: "operationType", Value: "dropDatabase"},
			{Key: "clusterTime", Value: bson.Timestamp{T: ts.T, I: 5}},
			{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}}},
		},
		{
			{Key: "_id", Value: token("8265530F00000000062B022C0100296E5A1004")},
			{Key: "splitEvent", Value: bson.D{{Key: "fragment", Value: int32(2)}, {Key: "of", Value: int32(2)}}},
			{Key: "fullDocument", Value: bson.D{{Key: "big", Value: "x"}}},
		},
	}
	var raws []bson.Raw
	for _, e := range events {
		raw, err := bson.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	return raws
}

// TestStoreDocumentHasTheEventsFields checks the store document of each seed against
// the event looked up field by field: the one-pass scan must find what a lookup finds.
func TestStoreDocumentHasTheEventsFields(t *testing.T) {
	split := splitState{opType: "insert", clusterTime: bson.Timestamp{T: 1_700_000_000, I: 6}}
	for _, event := range eventSeeds(t) {
		it, err := toItem("c1", event, time.Now(), &split)
		if err != nil {
			t.Fatalf("%s: %v", event, err)
		}
		checkStoreDocument(t, event, it)
	}
}

// FuzzToItem: whatever bytes come as an event, toItem does not panic; when it accepts
// them, the store document is valid BSON holding the event's own values.
func FuzzToItem(f *testing.F) {
	for _, event := range eventSeeds(f) {
		f.Add([]byte(event))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var split splitState
		it, err := toItem("c1", bson.Raw(data), time.Now(), &split)
		if err != nil {
			return
		}
		checkStoreDocument(t, bson.Raw(data), it)
	})
}

// checkStoreDocument compares it's store document with the event, looking each field
// up in the event: the oracle the one-pass scan is held to.
func checkStoreDocument(t *testing.T, event bson.Raw, it item) {
	t.Helper()
	doc := it.doc
	if err := doc.Validate(); err != nil {
		t.Fatalf("store document of %x is not valid BSON: %v", []byte(event), err)
	}
	if got, want := doc.Lookup("_id").StringValue(), event.Lookup("_id", "_data").StringValue(); got != want {
		t.Errorf("_id %q, want the token's _data %q", got, want)
	}
	if got := doc.Lookup("_resume_token"); !bytes.Equal(got.Value, event.Lookup("_id").Value) {
		t.Errorf("_resume_token %v, want the event's _id %v", got, event.Lookup("_id"))
	}
	if !bytes.Equal(it.pos.Token, event.Lookup("_id").Value) {
		t.Errorf("the token to resume from is %v, want the event's _id %v", it.pos.Token, event.Lookup("_id"))
	}
	if _, isSplit := event.Lookup("splitEvent").DocumentOK(); !isSplit {
		want, _ := event.Lookup("operationType").StringValueOK() // "" when absent or not a string
		if got := doc.Lookup("op_type").StringValue(); got != want {
			t.Errorf("op_type %q, want %q", got, want)
		}
	}
	db, _ := event.Lookup("ns", "db").StringValueOK()
	coll, _ := event.Lookup("ns", "coll").StringValueOK()
	if _, isDoc := event.Lookup("ns").DocumentOK(); !isDoc {
		db, coll = "", ""
	}
	if got := doc.Lookup("ns").StringValue(); got != db+"."+coll {
		t.Errorf("ns %q, want the old collector's %q", got, db+"."+coll)
	}
	for _, f := range copiedFields {
		want, inEvent := event.LookupErr(f.from)
		got, inStore := doc.LookupErr(f.to)
		switch {
		case inEvent == nil && (inStore != nil || !got.Equal(want)):
			t.Errorf("%s is %v in the store, want the event's %s %v", f.to, got, f.from, want)
		case inEvent != nil && f.old && got.Type != bson.TypeNull:
			t.Errorf("%s is %v in the store, want null as the old collector wrote", f.to, got)
		case inEvent != nil && !f.old && inStore == nil:
			t.Errorf("%s is %v in the store, but the event has no %s", f.to, got, f.from)
		}
	}
}

// TestInsertCommandIsTheDriversEncoding: the insert command built in BSON is, byte for
// byte, what the driver would encode from the same command as a Go value.
func TestInsertCommandIsTheDriversEncoding(t *testing.T) {
	docs := eventSeeds(t)
	documents := bson.A{}
	for _, d := range docs {
		documents = append(documents, d)
	}
	want, err := bson.Marshal(bson.D{
		{Key: "insert", Value: "oplogs_c1"},
		{Key: "documents", Value: documents},
		{Key: "ordered", Value: false},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Built into scratch space that held a longer command, as the writer reuses it.
	scratch := appendInsertCommand(nil, "oplogs_c1", append(docs, docs...))
	if got := appendInsertCommand(scratch[:0], "oplogs_c1", docs); !bytes.Equal(got, want) {
		t.Fatalf("insert command\n got %v\nwant %v", bson.Raw(got), bson.Raw(want))
	}
}

// BenchmarkToItem is the conversion of one change event into its store document, the
// collector's own work per event (BenchmarkCapture measures it with the servers).
func BenchmarkToItem(b *testing.B) {
	event := eventSeeds(b)[0]
	var split splitState
	now := time.Now()
	for b.Loop() {
		if _, err := toItem("c1", event, now, &split); err != nil {
			b.Fatal(err)
		}
	}
}

// An error keeps what the collector was doing with its cause in the words of
// mongoerr.DescribeWrapped (which tests them), cut short when long: a failed batch can
// report one error per document.
func TestDescribeIsBounded(t *testing.T) {
	cause := fmt.Errorf("reading the saved resume token: %w", context.DeadlineExceeded)
	if got := describe(cause); got != "reading the saved resume token: timed out" {
		t.Errorf("describe = %q", got)
	}
	if got := describe(errors.New(strings.Repeat("x", 5000))); got != strings.Repeat("x", maxErrorText)+"..." {
		t.Errorf("an error of 5000 bytes is described in %d", len(got))
	}
}

// A split event's documents must come in sequence, fragment k+1 of the same count after
// fragment k: a stream the driver resumed inside the event, from a fragment's token,
// gets the event rendered again, with updateLookup's document as it is then, and may
// continue with another split, or with the next event. toItem refuses either
// (errSplitBroken: the reader opens the stream again before the event), and takes the
// next event once the split one is whole.
func TestSplitEventOutOfSequenceIsRefused(t *testing.T) {
	token := func(data string) bson.D { return bson.D{{Key: "_data", Value: data}} }
	mustMarshal := func(t *testing.T, d bson.D) bson.Raw {
		raw, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	fragment := func(data string, k, n int32) bson.Raw {
		d := bson.D{{Key: "_id", Value: token(data)}, {Key: "splitEvent", Value: bson.D{{Key: "fragment", Value: k}, {Key: "of", Value: n}}}}
		if k == 1 {
			d = append(d, bson.E{Key: "operationType", Value: "update"}, bson.E{Key: "clusterTime", Value: bson.Timestamp{T: 1_700_000_000, I: 6}})
		}
		return mustMarshal(t, d)
	}
	whole := mustMarshal(t, bson.D{{Key: "_id", Value: token("8265530F00000000072B022C0100296E5A1004")}, {Key: "operationType", Value: "delete"},
		{Key: "clusterTime", Value: bson.Timestamp{T: 1_700_000_000, I: 7}}, {Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "c"}}}})
	first := fragment("8265530F00000000062B022C0100296E5A100401", 1, 2)
	for name, then := range map[string]bson.Raw{
		"a fragment of another split": fragment("8265530F00000000062B022C0100296E5A100402", 2, 3),
		"the next fragment skipped":   fragment("8265530F00000000062B022C0100296E5A100403", 3, 3),
		"the next event":              whole,
		"another event's first":       fragment("8265530F00000000072B022C0100296E5A100401", 1, 2),
	} {
		var split splitState
		if _, err := toItem("c1", first, time.Now(), &split); err != nil {
			t.Fatal(err)
		}
		if _, err := toItem("c1", then, time.Now(), &split); !errors.Is(err, errSplitBroken) {
			t.Errorf("fragment 1 of 2, then %s: err = %v, want errSplitBroken", name, err)
		}
	}
	var split splitState
	for _, doc := range []bson.Raw{first, fragment("8265530F00000000062B022C0100296E5A100402", 2, 2), whole} {
		if _, err := toItem("c1", doc, time.Now(), &split); err != nil {
			t.Fatalf("a split event whole, then the next event: %v", err)
		}
	}
}
