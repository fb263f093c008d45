package mongotest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// Multi-document transactions through the driver's sessions API, as
// https://www.mongodb.com/docs/manual/core/transactions/ and the
// Transactions specification describe them.

func startSession(t *testing.T, c *mongo.Client) *mongo.Session {
	t.Helper()
	sess, err := c.StartSession()
	must(t, err)
	t.Cleanup(func() { sess.EndSession(context.Background()) })
	return sess
}

// quiet reports whether the stream has no event now: one short getMore.
func quiet(t *testing.T, cs *mongo.ChangeStream) bool {
	t.Helper()
	if cs.TryNext(ctx(t)) {
		return false
	}
	must(t, cs.Err())
	return true
}

func TestTransactionCommitEvents(t *testing.T) {
	db, cx := setup(t)
	orders, audit := db.Collection("orders"), db.Collection("audit")
	_, err := orders.InsertMany(cx, []any{bson.D{{Key: "_id", Value: 1}, {Key: "qty", Value: 1}}, bson.D{{Key: "_id", Value: 2}}})
	must(t, err)
	_, err = audit.InsertOne(cx, bson.D{{Key: "_id", Value: "seed"}})
	must(t, err)
	cs, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(50*time.Millisecond))
	must(t, err)
	defer cs.Close(cx)

	sess := startSession(t, db.Client())
	must(t, sess.StartTransaction())
	sc := mongo.NewSessionContext(cx, sess)
	_, err = orders.InsertOne(sc, bson.D{{Key: "_id", Value: 3}, {Key: "qty", Value: 7}})
	must(t, err)
	_, err = orders.UpdateOne(sc, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "qty", Value: 1}}}})
	must(t, err)
	_, err = orders.DeleteOne(sc, bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	_, err = audit.InsertOne(sc, bson.D{{Key: "_id", Value: "order 3"}})
	must(t, err)

	// Inside, the transaction sees its writes; outside, nothing has happened.
	if n, err := orders.CountDocuments(sc, bson.D{}); err != nil || n != 2 {
		t.Fatalf("count inside the transaction = %d, %v; want 2 (1 and 3)", n, err)
	}
	var one bson.M
	must(t, orders.FindOne(sc, bson.D{{Key: "_id", Value: 1}}).Decode(&one))
	if one["qty"] != int32(2) {
		t.Fatalf("inside: %v", one)
	}
	must(t, orders.FindOne(cx, bson.D{{Key: "_id", Value: 1}}).Decode(&one))
	if one["qty"] != int32(1) {
		t.Fatalf("outside, before commit: %v", one)
	}
	if err := orders.FindOne(cx, bson.D{{Key: "_id", Value: 3}}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
		t.Fatalf("outside, the uncommitted insert is visible: %v", err)
	}
	if err := orders.FindOne(cx, bson.D{{Key: "_id", Value: 2}}).Err(); err != nil {
		t.Fatalf("outside, the uncommitted delete is visible: %v", err)
	}
	if !quiet(t, cs) {
		t.Fatalf("an event before the commit: %v", cs.Current)
	}
	must(t, sess.CommitTransaction(cx))

	want := []struct{ op, coll string }{{"insert", "orders"}, {"update", "orders"}, {"delete", "orders"}, {"insert", "audit"}}
	var events []bson.Raw
	for range want {
		events = append(events, next(t, cs))
	}
	sessionID := sess.ID().Lookup("id")
	var tokens []string
	for i, ev := range events {
		if opType(ev) != want[i].op || ev.Lookup("ns", "coll").StringValue() != want[i].coll {
			t.Fatalf("event %d: %v, want %s on %s", i, ev, want[i].op, want[i].coll)
		}
		if !ev.Lookup("clusterTime").Equal(events[0].Lookup("clusterTime")) {
			t.Errorf("event %d has clusterTime %v, the first %v: a transaction's events share one", i, ev.Lookup("clusterTime"), events[0].Lookup("clusterTime"))
		}
		if id := ev.Lookup("lsid", "id"); !id.Equal(sessionID) {
			t.Errorf("event %d lsid.id %v, want the session's %v", i, id, sessionID)
		}
		if sub, _, ok := ev.Lookup("lsid", "id").BinaryOK(); !ok || sub != 4 {
			t.Errorf("event %d lsid.id is not a UUID: %v", i, ev.Lookup("lsid"))
		}
		if ev.Lookup("lsid", "uid").Type != bson.TypeBinary {
			t.Errorf("event %d lsid has no uid: %v", i, ev.Lookup("lsid"))
		}
		if ev.Lookup("txnNumber").Type != bson.TypeInt64 {
			t.Errorf("event %d txnNumber is %v, want an int64", i, ev.Lookup("txnNumber").Type)
		}
		tokens = append(tokens, ev.Lookup("_id", "_data").StringValue())
		if i > 0 && tokens[i-1] >= tokens[i] {
			t.Errorf("tokens not strictly increasing: %v", tokens)
		}
	}
	// Committed: everyone sees the writes.
	must(t, orders.FindOne(cx, bson.D{{Key: "_id", Value: 1}}).Decode(&one))
	if one["qty"] != int32(2) {
		t.Fatalf("after commit: %v", one)
	}
	if n, _ := orders.CountDocuments(cx, bson.D{}); n != 2 {
		t.Fatalf("after commit, %d orders", n)
	}
	// Resuming inside the transaction's events gives the rest of them.
	rs, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(events[1].Lookup("_id").Document()))
	must(t, err)
	defer rs.Close(cx)
	for _, w := range want[2:] {
		if ev := next(t, rs); opType(ev) != w.op || ev.Lookup("ns", "coll").StringValue() != w.coll {
			t.Fatalf("resumed inside the transaction: %v, want %s on %s", ev, w.op, w.coll)
		}
	}
}

func TestTransactionAbortLeavesNothing(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("kept")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "old"}})
	must(t, err)
	cs, err := db.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(50*time.Millisecond).SetShowExpandedEvents(true))
	must(t, err)
	defer cs.Close(cx)
	sess := startSession(t, db.Client())
	must(t, sess.StartTransaction())
	sc := mongo.NewSessionContext(cx, sess)
	_, err = coll.UpdateOne(sc, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "new"}}}})
	must(t, err)
	_, err = coll.InsertOne(sc, bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	_, err = db.Collection("fresh").InsertOne(sc, bson.D{{Key: "_id", Value: 1}}) // created in the transaction
	must(t, err)
	must(t, sess.AbortTransaction(cx))

	var doc bson.M
	must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: 1}}).Decode(&doc))
	if doc["v"] != "old" {
		t.Fatalf("aborted update left %v", doc)
	}
	if n, _ := coll.CountDocuments(cx, bson.D{}); n != 1 {
		t.Fatalf("aborted insert left %d documents", n)
	}
	names, err := db.ListCollectionNames(cx, bson.D{})
	must(t, err)
	if len(names) != 1 || names[0] != "kept" {
		t.Fatalf("collections after the abort: %v", names)
	}
	if !quiet(t, cs) {
		t.Fatalf("an aborted transaction's event: %v", cs.Current)
	}
	// The _id the aborted transaction inserted is free again.
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	if ev := next(t, cs); opType(ev) != "insert" || ev.Lookup("lsid").Type != 0 {
		t.Fatalf("after the abort: %v", ev)
	}
}

// TestTransactionWriteConflict: the second writer of a document in a
// transaction gets WriteConflict (112) labelled TransientTransactionError,
// which aborts its transaction; a write outside any transaction waits for
// the holder to end, up to its maxTimeMS.
func TestTransactionWriteConflict(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("contended")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}})
	must(t, err)
	inc := bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}

	first := startSession(t, db.Client())
	must(t, first.StartTransaction())
	fc := mongo.NewSessionContext(cx, first)
	_, err = coll.UpdateOne(fc, bson.D{{Key: "_id", Value: 1}}, inc)
	must(t, err)

	second := startSession(t, db.Client())
	must(t, second.StartTransaction())
	sc := mongo.NewSessionContext(cx, second)
	_, err = coll.UpdateOne(sc, bson.D{{Key: "_id", Value: 1}}, inc)
	var se mongo.ServerError
	if !errors.As(err, &se) || !se.HasErrorCode(112) || !se.HasErrorLabel("TransientTransactionError") {
		t.Fatalf("second writer: err = %v, want WriteConflict with TransientTransactionError", err)
	}
	// The conflict ended the second transaction.
	_, err = coll.InsertOne(sc, bson.D{{Key: "_id", Value: 9}})
	if !errors.As(err, &se) || !se.HasErrorCode(251) || !se.HasErrorLabel("TransientTransactionError") {
		t.Fatalf("after the conflict: err = %v, want NoSuchTransaction", err)
	}
	_ = second.AbortTransaction(cx)

	// Outside transactions a write waits: with maxTimeMS it gives up (50).
	err = db.RunCommand(cx, bson.D{{Key: "update", Value: "contended"}, {Key: "maxTimeMS", Value: 100},
		{Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: inc}}}}}).Err()
	if codeOf(err) != 50 {
		t.Fatalf("a write to a document a transaction holds, with maxTimeMS: err = %v, want 50 MaxTimeMSExpired", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, inc)
		done <- err
	}()
	must(t, first.CommitTransaction(cx))
	must(t, <-done)
	var doc bson.M
	must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: 1}}).Decode(&doc))
	// The transaction's +1 and the waiting write's +1 (the timed-out one
	// changed nothing).
	if doc["n"] != int32(2) {
		t.Fatalf("n = %v", doc["n"])
	}
}

// TestWithTransactionRetries: the driver's WithTransaction retries the
// callback after a TransientTransactionError and commits once.
func TestWithTransactionRetries(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("retried")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}})
	must(t, err)
	cs, err := coll.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(50*time.Millisecond))
	must(t, err)
	defer cs.Close(cx)
	holder := startSession(t, db.Client())
	must(t, holder.StartTransaction())
	_, err = coll.UpdateOne(mongo.NewSessionContext(cx, holder), bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "by", Value: "holder"}}}})
	must(t, err)

	attempts := 0
	sess := startSession(t, db.Client())
	_, err = sess.WithTransaction(cx, func(sc context.Context) (any, error) {
		attempts++
		if attempts == 2 {
			must(t, holder.CommitTransaction(cx)) // the conflict is gone for the retry
		}
		_, err := coll.UpdateOne(sc, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
		return nil, err
	})
	must(t, err)
	if attempts != 2 {
		t.Fatalf("callback ran %d times, want 2 (a conflict, then success)", attempts)
	}
	var doc bson.M
	must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: 1}}).Decode(&doc))
	if doc["n"] != int32(1) || doc["by"] != "holder" {
		t.Fatalf("document %v", doc)
	}
	// Two events: the holder's update, then the retried transaction's.
	a, b := next(t, cs), next(t, cs)
	if a.Lookup("txnNumber").Equal(b.Lookup("txnNumber")) && a.Lookup("lsid").Equal(b.Lookup("lsid")) {
		t.Fatalf("two transactions' events carry the same session and number: %v %v", a, b)
	}
	if !quiet(t, cs) {
		t.Fatalf("an extra event: %v", cs.Current)
	}
}

// TestCommitRetriedOnce: a commit whose connection drops is retried by the
// driver; committing again succeeds and commits nothing twice.
func TestCommitRetriedOnce(t *testing.T) {
	admin, coll := failPointClients(t, options.Client().SetAppName("txn-commit"))
	cx := ctx(t)
	cs, err := coll.Database().Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(50*time.Millisecond))
	must(t, err)
	defer cs.Close(cx)
	failCommand(t, admin, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "closeConnection", Value: true}, {Key: "appName", Value: "txn-commit"},
	})
	sess := startSession(t, coll.Database().Client())
	must(t, sess.StartTransaction())
	_, err = coll.InsertOne(mongo.NewSessionContext(cx, sess), bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	must(t, sess.CommitTransaction(cx)) // the first attempt's connection closes; the retry commits
	must(t, sess.CommitTransaction(cx)) // the application may commit again: a no-op
	if ev := next(t, cs); opType(ev) != "insert" {
		t.Fatalf("first event: %v", ev)
	}
	if !quiet(t, cs) {
		t.Fatalf("a second commit wrote again: %v", cs.Current)
	}
	// A retryable write concern error on commit is labelled for the driver to retry.
	failCommand(t, admin, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "appName", Value: "txn-commit"},
		{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 91}, {Key: "errmsg", Value: "Replication is being shut down"}}},
	})
	must(t, sess.StartTransaction())
	_, err = coll.InsertOne(mongo.NewSessionContext(cx, sess), bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	must(t, sess.CommitTransaction(cx))
	if n, _ := coll.CountDocuments(cx, bson.D{}); n != 2 {
		t.Fatalf("%d documents, want 2", n)
	}
}

// TestRetryableWriteRunsOnce: a write concern error with a retryable code
// comes after the write happened; the driver retries with the same
// txnNumber and the server must not insert again (which would be a
// duplicate key: the retry sends the same _id).
func TestRetryableWriteRunsOnce(t *testing.T) {
	admin, coll := failPointClients(t, options.Client().SetAppName("retry-once"))
	cx := ctx(t)
	cs, err := coll.Database().Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(50*time.Millisecond))
	must(t, err)
	defer cs.Close(cx)
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: "first"}})
	must(t, err)
	failCommand(t, admin, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "appName", Value: "retry-once"},
		{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 91}, {Key: "errmsg", Value: "Replication is being shut down"}}},
	})
	res, err := coll.InsertMany(cx, []any{bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}}})
	must(t, err)
	if len(res.InsertedIDs) != 2 {
		t.Fatalf("inserted %v", res.InsertedIDs)
	}
	for _, id := range []any{"first", int32(1), int32(2)} {
		ev := next(t, cs)
		if opType(ev) != "insert" || !ev.Lookup("documentKey", "_id").Equal(bsonValue(id)) || ev.Lookup("lsid").Type != 0 {
			t.Fatalf("event %v, want the insert of %v without lsid", ev, id)
		}
	}
	if !quiet(t, cs) {
		t.Fatalf("the retried insert ran twice: %v", cs.Current)
	}
	if n, _ := coll.CountDocuments(cx, bson.D{}); n != 3 {
		t.Fatalf("%d documents, want 3", n)
	}
	// The same for an update: the retry must not increment twice.
	failCommand(t, admin, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"update"}}, {Key: "appName", Value: "retry-once"},
		{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 189}, {Key: "errmsg", Value: "stepped down"}}},
	})
	up, err := coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
	must(t, err)
	failCommand(t, admin, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"findAndModify"}}, {Key: "appName", Value: "retry-once"},
		{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 189}, {Key: "errmsg", Value: "stepped down"}}},
	})
	var after bson.M
	must(t, coll.FindOneAndUpdate(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&after))
	if up.ModifiedCount != 1 || after["n"] != int32(2) {
		t.Fatalf("update modified %d, findAndModify returned %v; want 1 and n 2", up.ModifiedCount, after)
	}
}

func TestTransactionRefusals(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("refused")
	sess := startSession(t, db.Client())
	must(t, sess.StartTransaction())
	sc := mongo.NewSessionContext(cx, sess)
	// listCollections is not allowed in a transaction.
	err := db.RunCommand(sc, bson.D{{Key: "listCollections", Value: 1}}).Err()
	if codeOf(err) != 263 {
		t.Fatalf("listCollections in a transaction: err = %v, want 263 OperationNotSupportedInTransaction", err)
	}
	must(t, sess.AbortTransaction(cx))
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	must(t, sess.StartTransaction())
	_, err = coll.Indexes().CreateOne(sc, mongo.IndexModel{Keys: bson.D{{Key: "x", Value: 1}}})
	if codeOf(err) != 263 || !bytes.Contains([]byte(err.Error()), []byte("existing collection")) {
		t.Fatalf("createIndexes on an existing collection in a transaction: err = %v, want 263 OperationNotSupportedInTransaction", err)
	}
	_ = sess.AbortTransaction(cx)
}

// A transaction may build the indexes of a collection it creates, while it is empty, as
// mongod 4.4 and later allow: they come and go with the collection.
func TestTransactionCreatesACollectionWithItsIndexes(t *testing.T) {
	db, cx := setup(t)
	sess := startSession(t, db.Client())
	sc := mongo.NewSessionContext(cx, sess)
	indexes := func(name string) []string {
		t.Helper()
		specs, err := db.Collection(name).Indexes().ListSpecifications(cx)
		must(t, err)
		var names []string
		for _, s := range specs {
			names = append(names, s.Name)
		}
		return names
	}
	for _, commit := range []bool{false, true} {
		name := fmt.Sprintf("fresh_%v", commit)
		must(t, sess.StartTransaction())
		_, err := db.Collection(name).Indexes().CreateOne(sc, mongo.IndexModel{Keys: bson.D{{Key: "x", Value: 1}}})
		must(t, err)
		_, err = db.Collection(name).InsertOne(sc, bson.D{{Key: "_id", Value: 1}, {Key: "x", Value: 1}})
		must(t, err)
		_, err = db.Collection(name).Indexes().CreateOne(sc, mongo.IndexModel{Keys: bson.D{{Key: "y", Value: 1}}})
		if codeOf(err) != 263 || !bytes.Contains([]byte(err.Error()), []byte("non-empty")) {
			t.Fatalf("createIndexes on a collection the transaction filled: err = %v, want 263", err)
		}
		// That failure aborted the transaction: do it again without it.
		_ = sess.AbortTransaction(cx)
		must(t, sess.StartTransaction())
		_, err = db.Collection(name).Indexes().CreateOne(sc, mongo.IndexModel{Keys: bson.D{{Key: "x", Value: 1}}})
		must(t, err)
		_, err = db.Collection(name).InsertOne(sc, bson.D{{Key: "_id", Value: 1}, {Key: "x", Value: 1}})
		must(t, err)
		if commit {
			must(t, sess.CommitTransaction(cx))
		} else {
			must(t, sess.AbortTransaction(cx))
		}
		names, err := db.ListCollectionNames(cx, bson.D{{Key: "name", Value: name}})
		must(t, err)
		switch got := indexes(name); {
		case commit && (len(names) != 1 || !slices.Equal(got, []string{"_id_", "x_1"})):
			t.Errorf("committed: collections %v, indexes %v; want the collection with _id_ and x_1", names, got)
		case !commit && len(names) != 0:
			t.Errorf("aborted: the collection %v is left", names)
		}
	}
}

func bsonValue(v any) bson.RawValue {
	t, data, err := bson.MarshalValue(v)
	if err != nil {
		panic(err)
	}
	return bson.RawValue{Type: t, Value: data}
}

// holdInTransaction inserts {_id: 1, n: 0} into x.held on the server at uri and sets n
// to 1 in a transaction left open: the session's context is sc.
func holdInTransaction(t *testing.T, uri string) (c *mongo.Client, coll *mongo.Collection, sc context.Context) {
	t.Helper()
	c = connect(t, uri)
	coll = c.Database("x").Collection("held")
	_, err := coll.InsertOne(ctx(t), bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}})
	must(t, err)
	sess := startSession(t, c)
	must(t, sess.StartTransaction())
	sc = mongo.NewSessionContext(ctx(t), sess)
	_, err = coll.UpdateOne(sc, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 1}}}})
	must(t, err)
	return c, coll, sc
}

// A transaction left open (its client paused, or cut off) is aborted once it has
// lived Options.TransactionLifetime, as mongod's transactionLifetimeLimitSeconds: the
// write that waited for its document goes on, and the transaction's next statement
// fails with 251 NoSuchTransaction.
func TestAnOpenTransactionExpires(t *testing.T) {
	srv := mongotest.New(t, "a short transaction lifetime", mongotest.Options{TransactionLifetime: 300 * time.Millisecond})
	cx := ctx(t)
	_, coll, sc := holdInTransaction(t, srv.URI())
	// Waits for the transaction, which is never ended by its client.
	_, err := coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 2}}}})
	must(t, err)
	_, err = coll.UpdateOne(sc, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 3}}}})
	if codeOf(err) != 251 {
		t.Fatalf("a statement of the expired transaction: err = %v, want 251 NoSuchTransaction", err)
	}
	var doc struct {
		N int `bson:"n"`
	}
	must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: 1}}).Decode(&doc))
	if doc.N != 2 {
		t.Fatalf("n = %d after the transaction expired, want the other write's 2", doc.N)
	}
}

// killSessions aborts a session's open transaction at once, as mongod does for a
// transaction not prepared: the write that waited for its document goes on (with the
// default lifetime of 60 s it would wait that long), the transaction's next statement
// fails with 251, and the session serves a new transaction.
func TestKillSessionsAbortsTheTransaction(t *testing.T) {
	srv := mongotest.New(t, "killSessions", mongotest.Options{TransactionLifetime: time.Hour})
	cx := ctx(t)
	c, coll, sc := holdInTransaction(t, srv.URI())
	sess := mongo.SessionFromContext(sc)
	for _, bad := range []bson.D{{{Key: "killSessions", Value: bson.A{}}}, {{Key: "killSessions", Value: bson.A{1}}}} {
		if err := c.Database("admin").RunCommand(cx, bad).Err(); err == nil {
			t.Fatalf("%v: no error", bad)
		}
	}
	must(t, c.Database("admin").RunCommand(cx, bson.D{{Key: "killSessions", Value: bson.A{sess.ID()}}}).Err())
	_, err := coll.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 2}}}})
	must(t, err)
	_, err = coll.UpdateOne(sc, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 3}}}})
	if codeOf(err) != 251 {
		t.Fatalf("a statement of the killed session's transaction: err = %v, want 251 NoSuchTransaction", err)
	}
	_ = sess.AbortTransaction(cx)
	must(t, sess.StartTransaction())
	_, err = coll.UpdateOne(sc, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 10}}}})
	must(t, err)
	must(t, sess.CommitTransaction(cx))
	var doc struct {
		N int `bson:"n"`
	}
	must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: 1}}).Decode(&doc))
	if doc.N != 12 {
		t.Fatalf("n = %d, want 12: the other write's 2, then the session's next transaction's +10", doc.N)
	}
}
