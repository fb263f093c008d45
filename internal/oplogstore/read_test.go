package oplogstore

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

func storeDB(t *testing.T) *mongo.Database {
	t.Helper()
	uri := mongotest.New(t, "a store the test fills with documents of its own making", mongotest.Options{}).URI()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client.Database(DefaultDatabase)
}

// event is a store document as the collector writes it (id "" for the old collector's
// ObjectId).
func event(id, token string, ts bson.Timestamp, op, ns string, extra ...bson.E) bson.D {
	d := bson.D{}
	if id != "" {
		d = append(d, bson.E{Key: FieldID, Value: id})
	}
	d = append(d,
		bson.E{Key: FieldResumeToken, Value: bson.D{{Key: "_data", Value: token}}},
		bson.E{Key: FieldClusterName, Value: "s"},
		bson.E{Key: FieldTS, Value: ts},
		bson.E{Key: FieldWall, Value: bson.DateTime(1)},
		bson.E{Key: FieldOpType, Value: op},
		bson.E{Key: FieldNamespace, Value: ns},
		bson.E{Key: FieldDocumentKey, Value: nil},
		bson.E{Key: FieldFullDocument, Value: nil},
	)
	return append(d, extra...)
}

func insertAll(t *testing.T, db *mongo.Database, source string, docs ...any) {
	t.Helper()
	if _, err := db.Collection(EventsCollection(source)).InsertMany(t.Context(), docs); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, db *mongo.Database, source string, upTo bson.Timestamp) ([]Event, error) {
	t.Helper()
	r, err := ReadEvents(t.Context(), db, source, nil, upTo)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(t.Context())
	var out []Event
	for {
		e, err := r.Next(t.Context())
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

// Within one ts, stream order is the token's order, whatever order the documents were
// written in; the old collector's re-written batches count once; a split event's
// fragments become one event; the old collector's "db." is a database's namespace.
func TestReadEventsInStreamOrder(t *testing.T) {
	db := storeDB(t)
	ts1, ts2 := bson.Timestamp{T: 100, I: 1}, bson.Timestamp{T: 100, I: 2}
	doc := func(n int) bson.E { return bson.E{Key: FieldFullDocument, Value: bson.D{{Key: "_id", Value: n}}} }
	split := func(k, n int) bson.E {
		return bson.E{Key: FieldSplitEvent, Value: bson.D{{Key: "fragment", Value: k}, {Key: "of", Value: n}}}
	}
	insertAll(t, db, "s",
		event("", "82000000640000000201B2", ts2, "insert", "a.c", doc(3)), // written first, after in the stream
		event("", "82000000640000000201A1", ts2, "insert", "a.c", doc(2)),
		event("", "82000000640000000201A1", ts2, "insert", "a.c", doc(2)), // the old collector's duplicate
		event("", "8200000064000000010100", ts1, "dropDatabase", "old."),
		event("t4:2", "82000000640000000301C1", bson.Timestamp{T: 100, I: 3}, "update", "", split(2, 2),
			bson.E{Key: FieldUpdateDescription, Value: bson.D{{Key: "updatedFields", Value: bson.D{{Key: "x", Value: 1}}}}}),
		event("t4:1", "82000000640000000301C0", bson.Timestamp{T: 100, I: 3}, "update", "a.c", split(1, 2),
			bson.E{Key: FieldDocumentKey, Value: bson.D{{Key: "_id", Value: 2}}}, doc(2)),
		event("t5", "8200000065000000010100", bson.Timestamp{T: 101, I: 1}, "insert", "a.c", doc(9)),
	)
	events, err := readAll(t, db, "s", bson.Timestamp{T: 100, I: 9})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.OpType+" "+e.Namespace())
	}
	if want := "dropDatabase old|insert a.c|insert a.c|update a.c"; strings.Join(got, "|") != want {
		t.Fatalf("events %q, want %q", strings.Join(got, "|"), want)
	}
	if id := events[1].FullDocument.Lookup("_id").Int32(); id != 2 {
		t.Errorf("the first insert at ts 100,2 is of _id %d; the token orders _id 2 first", id)
	}
	u := events[3]
	if u.Fragments != 2 || u.DocKey == nil || u.UpdateDescription == nil || u.Token != "82000000640000000301C0" {
		t.Errorf("the split update is not whole: %+v", u)
	}
}

func TestReadRefusesIncompleteEvents(t *testing.T) {
	split := func(k, n int) bson.E {
		return bson.E{Key: FieldSplitEvent, Value: bson.D{{Key: "fragment", Value: k}, {Key: "of", Value: n}}}
	}
	for name, docs := range map[string][]any{
		// A resume inside a split event stored the rest with ts 0 and no op_type.
		"fragments without their first": {
			event("x:2", "8200000000000000000102", bson.Timestamp{}, "", "", split(2, 3)),
			event("x:3", "8200000000000000000103", bson.Timestamp{}, "", "", split(3, 3)),
		},
		"a first fragment without the rest": {
			event("y:1", "82000000640000000101", bson.Timestamp{T: 100, I: 1}, "insert", "a.c", split(1, 2)),
		},
	} {
		t.Run(name, func(t *testing.T) {
			db := storeDB(t)
			insertAll(t, db, "s", docs...)
			_, err := readAll(t, db, "s", bson.Timestamp{T: 200})
			if !errors.Is(err, ErrIncompleteEvent) {
				t.Fatalf("read %v; want ErrIncompleteEvent", err)
			}
		})
	}
}

// An event stored in parts is read whole; a part missing is an error.
func TestReadJoinsParts(t *testing.T) {
	db := storeDB(t)
	whole := storeDocument(t, MaxDocumentSize)
	parts, err := Split(whole)
	if err != nil {
		t.Fatal(err)
	}
	insertAll(t, db, "prod", parts[2], parts[0], parts[1])
	events, err := readAll(t, db, "prod", bson.Timestamp{T: 1 << 31})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || len(events[0].FullDocument.Lookup("blob").StringValue()) != MaxDocumentSize {
		t.Fatalf("read %d events; want the one stored in parts, whole", len(events))
	}
	if _, err := db.Collection(EventsCollection("prod")).DeleteOne(t.Context(), bson.D{{Key: FieldID, Value: parts[1].Lookup(FieldID).StringValue()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, db, "prod", bson.Timestamp{T: 1 << 31}); !errors.Is(err, ErrIncompleteEvent) {
		t.Fatalf("read with a part missing: %v; want ErrIncompleteEvent", err)
	}
}

func TestCheckpointFromEitherCollector(t *testing.T) {
	db := storeDB(t)
	tokens := db.Collection(TokensCollection("s"))
	if cp, err := ReadCheckpoint(t.Context(), db, "s"); err != nil || cp.Known {
		t.Fatalf("no token document: %+v, %v", cp, err)
	}
	// The old collector's: no cluster_time; the time is in the token.
	if _, err := tokens.InsertOne(t.Context(), bson.D{{Key: FieldID, Value: TokenID("s")}, {Key: TokenFieldToken, Value: bson.D{{Key: "_data", Value: "82000000640000000A2B"}}}}); err != nil {
		t.Fatal(err)
	}
	if cp, err := ReadCheckpoint(t.Context(), db, "s"); err != nil || !cp.Known || !cp.FromToken || cp.TS != (bson.Timestamp{T: 100, I: 10}) {
		t.Fatalf("old collector's token: %+v, %v", cp, err)
	}
	// A cluster_time another tool left behind (it saved the token, not the field): the
	// token's own time wins.
	if _, err := tokens.UpdateOne(t.Context(), bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: TokenFieldClusterTime, Value: bson.Timestamp{T: 90, I: 1}}}}}); err != nil {
		t.Fatal(err)
	}
	if cp, err := ReadCheckpoint(t.Context(), db, "s"); err != nil || !cp.FromToken || cp.TS != (bson.Timestamp{T: 100, I: 10}) {
		t.Fatalf("a token with a stale cluster_time beside it: %+v, %v; want the token's 100,10", cp, err)
	}
	// A token of another shape: the cluster_time is all there is.
	if _, err := tokens.UpdateOne(t.Context(), bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: TokenFieldToken, Value: bson.D{{Key: "_data", Value: bson.Binary{Data: []byte{1}}}}}}}}); err != nil {
		t.Fatal(err)
	}
	if cp, err := ReadCheckpoint(t.Context(), db, "s"); err != nil || cp.FromToken || cp.TS != (bson.Timestamp{T: 90, I: 1}) {
		t.Fatalf("a token that tells no time: %+v, %v", cp, err)
	}
}

func TestTokenTime(t *testing.T) {
	for data, want := range map[string]bson.Timestamp{
		"8263F0A1B2000000012B022C0100296E5A1004": {T: 0x63F0A1B2, I: 1},
		"826B0C632800000016010000":               {T: 0x6B0C6328, I: 0x16},
	} {
		raw, _ := bson.Marshal(bson.D{{Key: "_data", Value: data}})
		if got, ok := TokenTime(raw); !ok || got != want {
			t.Errorf("TokenTime(%s) = %v, %v; want %v", data, got, ok, want)
		}
	}
	for _, bad := range []string{"", "82", "8163F0A1B2000000012B", "82ZZF0A1B2000000012B"} {
		raw, _ := bson.Marshal(bson.D{{Key: "_data", Value: bad}})
		if _, ok := TokenTime(raw); ok {
			t.Errorf("TokenTime(%q) accepted", bad)
		}
	}
}
