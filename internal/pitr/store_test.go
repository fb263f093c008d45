package pitr

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// oldLayout rewrites a store document as the old Python collector wrote it: an ObjectId
// _id, none of the additions, "db." as a database event's namespace, no
// operation_description for a rename, and its own cluster name.
func oldLayout(t *testing.T, doc bson.Raw, cluster string) bson.D {
	t.Helper()
	var d bson.D
	must(t, bson.Unmarshal(doc, &d))
	out := bson.D{{Key: "_id", Value: bson.NewObjectID()}}
	op := doc.Lookup(oplogstore.FieldOpType).StringValue()
	for _, e := range d {
		switch e.Key {
		case oplogstore.FieldID, oplogstore.FieldLsid, oplogstore.FieldTxnNumber, oplogstore.FieldWallTime,
			oplogstore.FieldCollectionUUID, oplogstore.FieldFullDocumentBeforeChange, oplogstore.FieldSplitEvent:
			continue
		case oplogstore.FieldClusterName:
			e.Value = cluster
		case oplogstore.FieldNamespace:
			if ns, _ := e.Value.(string); !strings.Contains(ns, ".") {
				e.Value = ns + "."
			}
		case oplogstore.FieldOperationDescription:
			if op == "rename" {
				e.Value = nil
			}
		}
		out = append(out, e)
	}
	return out
}

// A store the old collector wrote (rewritten from a real capture into its layout, with
// a batch written twice, as it did after a crash) replays to the source's state.
func TestReplayOfTheOldCollectorsStore(t *testing.T) {
	w := newWorld(t)
	everyKind(t, w.source)
	want, at := w.cut()
	cursor, err := w.store.Collection(oplogstore.EventsCollection(sourceName)).Find(t.Context(), bson.D{})
	must(t, err)
	var ours []bson.Raw
	must(t, cursor.All(t.Context(), &ours))
	var old []any
	for i, doc := range ours {
		old = append(old, oldLayout(t, doc, "old"))
		if i >= 5 && i < 10 {
			old = append(old, oldLayout(t, doc, "old")) // the same event again, under another ObjectId
		}
	}
	_, err = w.store.Collection(oplogstore.EventsCollection("old")).InsertMany(t.Context(), old)
	must(t, err)
	var token bson.Raw
	must(t, w.store.Collection(oplogstore.TokensCollection(sourceName)).FindOne(t.Context(), bson.D{}).Decode(&token))
	_, err = w.store.Collection(oplogstore.TokensCollection("old")).InsertOne(t.Context(), bson.D{
		{Key: "_id", Value: oplogstore.TokenID("old")}, {Key: "token", Value: token.Lookup("token")}, {Key: "updated_at", Value: bson.NewDateTimeFromTime(time.Now())},
	})
	must(t, err)

	s, err := Replay(t.Context(), w.store, w.target, Options{Source: "old", To: at})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, w.target, want, "replayed from the old collector's store")
	if s.Events != int64(len(ours)) {
		t.Errorf("read %d events from %d stored (5 of them twice); a re-written batch must count once", s.Events, len(ours))
	}
}

// An event too large for one store document is stored in parts (oplogstore.Split); a
// replay reads it whole.
func TestReplayOfAnEventStoredInParts(t *testing.T) {
	w := newWorld(t)
	_, at := w.cut()
	big := bson.D{{Key: "_id", Value: "big"}, {Key: "blob", Value: strings.Repeat("x", oplogstore.MaxDocumentSize-200)}}
	bigRaw, err := bson.Marshal(big)
	must(t, err)
	doc, err := bson.Marshal(bson.D{
		{Key: oplogstore.FieldID, Value: "82FFFFFFF0000000010100"},
		{Key: oplogstore.FieldResumeToken, Value: bson.D{{Key: "_data", Value: "82FFFFFFF0000000010100"}}},
		{Key: oplogstore.FieldClusterName, Value: sourceName},
		{Key: oplogstore.FieldTS, Value: at},
		{Key: oplogstore.FieldWall, Value: bson.NewDateTimeFromTime(time.Now())},
		{Key: oplogstore.FieldOpType, Value: "insert"},
		{Key: oplogstore.FieldNamespace, Value: "app.big"},
		{Key: oplogstore.FieldDocumentKey, Value: bson.D{{Key: "_id", Value: "big"}}},
		{Key: oplogstore.FieldFullDocument, Value: bson.Raw(bigRaw)},
	})
	must(t, err)
	parts, err := oplogstore.Split(doc)
	must(t, err)
	if len(parts) < 2 {
		t.Fatalf("the event's store document of %d bytes fits: the test is wrong", len(doc))
	}
	for _, p := range slices.Backward(parts) {
		_, err := w.store.Collection(oplogstore.EventsCollection(sourceName)).InsertOne(t.Context(), p)
		must(t, err)
	}
	w.replay(w.target, Options{To: at})
	var got bson.Raw
	must(t, w.target.Database("app").Collection("big").FindOne(t.Context(), bson.D{}).Decode(&got))
	if !slices.Equal(got, bigRaw) {
		t.Fatalf("the document from the event in %d parts is %d bytes, want the source's %d", len(parts), len(got), len(bigRaw))
	}
}

// Events over 16 MiB come split ($changeStreamSplitLargeEvent); the collector stores each
// fragment; a replay merges them into the event.
func TestReplayOfSplitEvents(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	coll := w.source.Database("app").Collection("large")
	seven := strings.Repeat("a", 7<<20)
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: seven}})
	must(t, err)
	// updateLookup adds the 14 MiB document to the 7 MiB update: 21 MiB, in fragments.
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "b", Value: strings.Replace(seven, "a", "b", 1)}}}})
	must(t, err)
	want, at := w.cut()
	fragments, err := w.store.Collection(oplogstore.EventsCollection(sourceName)).CountDocuments(ctx, bson.D{{Key: oplogstore.FieldSplitEvent, Value: bson.D{{Key: "$exists", Value: true}}}})
	must(t, err)
	if fragments < 2 {
		t.Fatalf("the store holds %d fragments: the update was not split, the test is wrong", fragments)
	}
	s := w.replay(w.target, Options{To: at})
	expect(t, w.target, want, "replayed a split update")
	if s.ByOperation()["update"] != 1 {
		t.Errorf("applied %v; want the split update once", s.ByOperation())
	}
}

// The events of one transaction apply in one transaction on the target; the
// collection its first write creates is made before it.
func TestReplayOfTransactions(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	accounts := w.source.Database("bank").Collection("accounts")
	session, err := w.source.StartSession()
	must(t, err)
	defer session.EndSession(ctx)
	transaction := func(f func(tctx context.Context) error) {
		t.Helper()
		_, err := session.WithTransaction(ctx, func(tctx context.Context) (any, error) { return nil, f(tctx) })
		if err != nil && hasCode(err, 115) {
			t.Skip("needs transactions on the test server (internal/mongotest: \"mongotest: transactions\" is not merged into this branch): the source cannot run one to capture")
		}
		must(t, err)
	}
	transaction(func(tctx context.Context) error {
		for i := range 3 {
			if _, err := accounts.InsertOne(tctx, bson.D{{Key: "_id", Value: i}, {Key: "balance", Value: 100}}); err != nil {
				return err
			}
		}
		return nil
	})
	transaction(func(tctx context.Context) error {
		if _, err := accounts.UpdateOne(tctx, bson.D{{Key: "_id", Value: 0}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: -30}}}}); err != nil {
			return err
		}
		if _, err := accounts.UpdateOne(tctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: 30}}}}); err != nil {
			return err
		}
		_, err := accounts.DeleteOne(tctx, bson.D{{Key: "_id", Value: 2}})
		return err
	})
	want, at := w.cut()
	s := w.replay(w.target, Options{To: at})
	expect(t, w.target, want, "replayed two transactions")
	if s.Transactions != 2 || s.TransactionEvents != 6 {
		t.Errorf("applied %d transactions of %d operations; want 2 of 6", s.Transactions, s.TransactionEvents)
	}
	w.replay(w.target, Options{To: at})
	expect(t, w.target, want, "replayed two transactions twice")
}

// Replayed onto a later state, a transaction's writes meet a field of another type (x's
// p, a number by then) and a unique key held by another document (y has w's old email):
// the transaction runs again with the update read-modify-replaced and the holder set
// aside.
func TestTransactionsReplayedOntoALaterState(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	users := w.source.Database("app").Collection("users")
	_, err := users.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)})
	must(t, err)
	session, err := w.source.StartSession()
	must(t, err)
	defer session.EndSession(ctx)
	_, err = users.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "w"}, {Key: "email", Value: "w@example.com"}},
		bson.D{{Key: "_id", Value: "x"}, {Key: "email", Value: "x@example.com"}, {Key: "p", Value: bson.D{{Key: "q", Value: 1}}}},
	})
	must(t, err)
	_, start := w.cut()
	_, err = session.WithTransaction(ctx, func(tctx context.Context) (any, error) {
		if _, err := users.UpdateOne(tctx, bson.D{{Key: "_id", Value: "x"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "p.r", Value: 2}}}}); err != nil {
			return nil, err
		}
		_, err := users.UpdateOne(tctx, bson.D{{Key: "_id", Value: "w"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: "a@example.com"}}}})
		return nil, err
	})
	must(t, err)
	_, err = users.UpdateOne(ctx, bson.D{{Key: "_id", Value: "w"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: "b@example.com"}}}})
	must(t, err)
	_, err = users.UpdateOne(ctx, bson.D{{Key: "_id", Value: "x"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "p", Value: 7}}}})
	must(t, err)
	_, err = users.InsertOne(ctx, bson.D{{Key: "_id", Value: "y"}, {Key: "email", Value: "a@example.com"}})
	must(t, err)
	want, at := w.cut()

	w.replay(w.target, Options{To: at})
	expect(t, w.target, want, "replayed once")
	s := w.replay(w.target, Options{From: &start, To: at})
	expect(t, w.target, want, "replayed from after the inserts onto its own result")
	if s.Transactions < 1 || s.Parked == 0 || s.ClientSideUpdates == 0 {
		t.Errorf("%d transactions, %d documents set aside, %d updates read-modify-replaced; want 1 and some of each", s.Transactions, s.Parked, s.ClientSideUpdates)
	}
}
