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

	"github.com/mongomigrate/observability/internal/mongoerr"
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

// copyAsOldStore writes the events of the world's source into the store as the old
// collector would have for a source named name, each event again where twice(i) (as
// it did after a crash), with the source's position; it returns how many events it
// copied.
func copyAsOldStore(t *testing.T, w *world, name string, twice func(i int) bool) int {
	t.Helper()
	cursor, err := w.store.Collection(oplogstore.EventsCollection(sourceName)).Find(t.Context(), bson.D{})
	must(t, err)
	var ours []bson.Raw
	must(t, cursor.All(t.Context(), &ours))
	var old []any
	for i, doc := range ours {
		old = append(old, oldLayout(t, doc, name))
		if twice(i) {
			old = append(old, oldLayout(t, doc, name)) // the same event again, under another ObjectId
		}
	}
	_, err = w.store.Collection(oplogstore.EventsCollection(name)).InsertMany(t.Context(), old)
	must(t, err)
	var token bson.Raw
	must(t, w.store.Collection(oplogstore.TokensCollection(sourceName)).FindOne(t.Context(), bson.D{}).Decode(&token))
	_, err = w.store.Collection(oplogstore.TokensCollection(name)).InsertOne(t.Context(), bson.D{
		{Key: "_id", Value: oplogstore.TokenID(name)}, {Key: "token", Value: token.Lookup("token")}, {Key: "updated_at", Value: bson.NewDateTimeFromTime(time.Now())},
	})
	must(t, err)
	return len(ours)
}

// A store the old collector wrote (rewritten from a real capture into its layout, with
// a batch written twice, as it did after a crash) replays to the source's state.
func TestReplayOfTheOldCollectorsStore(t *testing.T) {
	w := newWorld(t)
	everyKind(t, w.source)
	want, at := w.cut()
	n := copyAsOldStore(t, w, "old", func(i int) bool { return i >= 5 && i < 10 })

	s, err := Replay(t.Context(), w.store, w.target, Options{Source: "old", To: at})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, w.target, want, "replayed from the old collector's store")
	if s.Events != int64(n) {
		t.Errorf("read %d events from %d stored (5 of them twice); a re-written batch must count once", s.Events, n)
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

// Replayed onto a later state, a transaction's update meets a field of another type (x's
// p, a number by then): the transaction runs again with the update read-modify-replaced.
func TestTransactionsReplayedOntoALaterState(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	users := w.source.Database("app").Collection("users")
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
	_, err = users.UpdateOne(ctx, bson.D{{Key: "_id", Value: "x"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "p", Value: 7}}}})
	must(t, err)
	want, at := w.cut()

	w.replay(w.target, Options{To: at})
	expect(t, w.target, want, "replayed once")
	s := w.replay(w.target, Options{From: &start, To: at})
	expect(t, w.target, want, "replayed from after the inserts onto its own result")
	if s.Transactions != 1 || s.ClientSideUpdates == 0 {
		t.Errorf("%d transactions, %d updates read-modify-replaced; want 1 and some", s.Transactions, s.ClientSideUpdates)
	}
}

// Replayed onto a later state, events meet a unique key held by another document: the
// source moved a@example.com from x to y, and the target, at y's state, already has it
// there when x's insert comes again. The holder is set aside and brought back, in a
// transaction too.
func TestUniqueKeyConflictsAreSetAside(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	users := w.source.Database("app").Collection("users")
	_, err := users.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)})
	must(t, err)
	_, err = users.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "x"}, {Key: "email", Value: "a@example.com"}},
		bson.D{{Key: "_id", Value: "y"}, {Key: "email", Value: "b@example.com"}},
	})
	must(t, err)
	_, err = users.UpdateOne(ctx, bson.D{{Key: "_id", Value: "x"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: "c@example.com"}}}})
	must(t, err)
	session, err := w.source.StartSession()
	must(t, err)
	defer session.EndSession(ctx)
	_, err = session.WithTransaction(ctx, func(tctx context.Context) (any, error) {
		if _, err := users.UpdateOne(tctx, bson.D{{Key: "_id", Value: "y"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: "a@example.com"}}}}); err != nil {
			return nil, err
		}
		return users.InsertOne(tctx, bson.D{{Key: "_id", Value: "z"}, {Key: "email", Value: "b@example.com"}})
	})
	must(t, err)
	want, at := w.cut()

	w.replay(w.target, Options{To: at})
	expect(t, w.target, want, "replayed once")
	s := w.replay(w.target, Options{To: at})
	expect(t, w.target, want, "replayed onto its own result")
	if s.Parked == 0 || s.Restored+s.Superseded != s.Parked {
		t.Errorf("set aside %d documents over the unique key, brought back %d, superseded by their own events %d: the second replay needs it, and each must come back or be replaced",
			s.Parked, s.Restored, s.Superseded)
	}
}

// setAside parks the documents holding the key a write was refused over, whatever
// index the server has; they come back at their next update, or at the end.
func TestSetAsideParksTheHolders(t *testing.T) {
	client := newTarget(t)
	ctx := t.Context()
	users := client.Database("app").Collection("users")
	_, err := users.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "x"}, {Key: "email", Value: "a@example.com"}},
		bson.D{{Key: "_id", Value: "y"}, {Key: "email", Value: "a@example.com"}},
		bson.D{{Key: "_id", Value: "z"}, {Key: "email", Value: "a@example.com"}},
	})
	must(t, err)
	a, c := usersApplier(t, client)
	refusal, _ := bson.Marshal(bson.D{{Key: "index", Value: 0}, {Key: "code", Value: mongoerr.DuplicateKey},
		{Key: "keyPattern", Value: bson.D{{Key: "email", Value: 1}}}, {Key: "keyValue", Value: bson.D{{Key: "email", Value: "a@example.com"}}}})
	set, err := a.setAside(ctx, c, mongo.WriteError{Code: mongoerr.DuplicateKey, Raw: refusal}, bson.RawValue{Type: bson.TypeString, Value: bsonString("x")})
	must(t, err)
	if n, _ := users.EstimatedDocumentCount(ctx); !set || n != 1 || a.stats.Parked != 2 {
		t.Fatalf("set aside: %v, %d documents left, %d parked; want x alone left and y, z parked", set, n, a.stats.Parked)
	}
	// A second run finds them parked.
	park, err := loadParking(ctx, client)
	must(t, err)
	a.park = park
	if !park.has(c, bson.RawValue{Type: bson.TypeString, Value: bsonString("y")}) {
		t.Fatal("y is not parked after a reload")
	}
	// y's next update brings it back first; z comes back at the end.
	key, _ := bson.Marshal(bson.D{{Key: "_id", Value: "y"}})
	ud, _ := bson.Marshal(bson.D{{Key: "updatedFields", Value: bson.D{{Key: "n", Value: 1}}}})
	must(t, a.write(ctx, c, &oplogstore.Event{OpType: "update", DB: "app", Coll: "users", DocKey: key, UpdateDescription: ud}))
	must(t, a.flush(ctx))
	if a.stats.Restored != 1 {
		t.Errorf("y's update brought back %d documents, want y", a.stats.Restored)
	}
	left, err := a.restoreAll(ctx)
	must(t, err)
	var y bson.D
	must(t, users.FindOne(ctx, bson.D{{Key: "_id", Value: "y"}}).Decode(&y))
	if n, _ := users.EstimatedDocumentCount(ctx); left != 0 || n != 3 || len(y) != 3 {
		t.Fatalf("after the update and the end: %d left parked, %d documents, y = %v", left, n, y)
	}
	if n, _ := client.Database(ReplayDatabase).Collection("parked").EstimatedDocumentCount(ctx); n != 0 {
		t.Errorf("%d documents still in %s.parked", n, ReplayDatabase)
	}
}

// Events planned in one batch before a write of it set a document aside see that it was:
// an update of the holder, further on in the batch, brings it back first instead of
// updating nothing (and the holder coming back later without that update).
func TestEventsAfterASettingAsideSeeIt(t *testing.T) {
	client := newTarget(t)
	ctx := t.Context()
	users := client.Database("app").Collection("users")
	_, err := users.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)})
	must(t, err)
	_, err = users.InsertOne(ctx, bson.D{{Key: "_id", Value: "y"}, {Key: "email", Value: "a@example.com"}, {Key: "n", Value: 0}})
	must(t, err)
	a, c := usersApplier(t, client)
	event := func(op, id string, doc, updated bson.D) *oplogstore.Event {
		key, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		e := &oplogstore.Event{OpType: op, DB: "app", Coll: "users", DocKey: key}
		if doc != nil {
			e.FullDocument, _ = bson.Marshal(doc)
		}
		if updated != nil {
			e.UpdateDescription, _ = bson.Marshal(bson.D{{Key: "updatedFields", Value: updated}})
		}
		return e
	}
	// One batch: x takes y's key (y must be set aside), x moves on, y is updated.
	must(t, a.write(ctx, c, event("insert", "x", bson.D{{Key: "_id", Value: "x"}, {Key: "email", Value: "a@example.com"}}, nil)))
	must(t, a.write(ctx, c, event("update", "x", nil, bson.D{{Key: "email", Value: "c@example.com"}})))
	must(t, a.write(ctx, c, event("update", "y", nil, bson.D{{Key: "n", Value: 1}})))
	must(t, a.flush(ctx))
	left, err := a.restoreAll(ctx)
	must(t, err)
	var y struct {
		Email string `bson:"email"`
		N     int32  `bson:"n"`
	}
	must(t, users.FindOne(ctx, bson.D{{Key: "_id", Value: "y"}}).Decode(&y))
	if left != 0 || y.Email != "a@example.com" || y.N != 1 || a.stats.Parked != 1 || a.stats.Restored != 1 {
		t.Fatalf("y = %+v after the batch (%d left parked, %d set aside, %d brought back): want its update applied", y, left, a.stats.Parked, a.stats.Restored)
	}
}

// bsonString is a BSON string value's bytes.
func bsonString(s string) []byte {
	raw, _ := bson.Marshal(bson.D{{Key: "s", Value: s}})
	return bson.Raw(raw).Lookup("s").Value
}

// usersApplier is an applier on client as a replay starts it (the target's collections
// and parked documents read), with app.users's entry in its registry.
func usersApplier(t *testing.T, client *mongo.Client) (*applier, *collection) {
	t.Helper()
	reg, err := loadRegistry(t.Context(), client)
	must(t, err)
	park, err := loadParking(t.Context(), client)
	must(t, err)
	return &applier{client: client, reg: reg, park: park, stats: &Summary{}}, reg.byNS["app.users"]
}
