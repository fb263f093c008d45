package mongotest_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Unique indexes, as https://www.mongodb.com/docs/manual/core/index-unique/
// describes them: a write that would give two documents the same key of a
// unique index fails with 11000 DuplicateKey, its keyPattern and keyValue in
// the error; a missing field is a null key; each element of an array is a
// key, and a document may repeat one within itself.

// duplicate returns the 11000 error's message, keyPattern and keyValue,
// whether err is a command error or a (bulk) write exception.
func duplicate(t *testing.T, err error) (msg string, pattern, value bson.Raw) {
	t.Helper()
	var raw bson.Raw
	var ce mongo.CommandError
	var we mongo.WriteException
	var bwe mongo.BulkWriteException
	switch {
	case errors.As(err, &ce) && ce.Code == 11000:
		msg, raw = ce.Message, ce.Raw
	case errors.As(err, &we) && len(we.WriteErrors) == 1 && we.WriteErrors[0].Code == 11000:
		msg, raw = we.WriteErrors[0].Message, we.WriteErrors[0].Raw
	case errors.As(err, &bwe) && len(bwe.WriteErrors) == 1 && bwe.WriteErrors[0].Code == 11000:
		msg, raw = bwe.WriteErrors[0].Message, bwe.WriteErrors[0].Raw
	default:
		t.Fatalf("err = %v, want one 11000 DuplicateKey", err)
	}
	pattern, ok1 := raw.Lookup("keyPattern").DocumentOK()
	value, ok2 := raw.Lookup("keyValue").DocumentOK()
	if !ok1 || !ok2 {
		t.Fatalf("11000 without keyPattern and keyValue: %v", raw)
	}
	return msg, pattern, value
}

// wantDuplicate checks err is 11000 over pattern with value (extended JSON,
// relaxed: {"email": "a"}).
func wantDuplicate(t *testing.T, err error, pattern, value bson.D) {
	t.Helper()
	_, gotPattern, gotValue := duplicate(t, err)
	if !sameDoc(gotPattern, pattern) || !sameDoc(gotValue, value) {
		t.Fatalf("duplicate key over %v = %v, want %v = %v", gotPattern, gotValue, pattern, value)
	}
}

func sameDoc(raw bson.Raw, want bson.D) bool {
	w, err := bson.Marshal(want)
	return err == nil && string(raw) == string(w)
}

func uniqueIndex(t *testing.T, coll *mongo.Collection, keys bson.D) {
	t.Helper()
	_, err := coll.Indexes().CreateOne(ctx(t), mongo.IndexModel{Keys: keys, Options: options.Index().SetUnique(true)})
	must(t, err)
}

func count(t *testing.T, coll *mongo.Collection, filter bson.D) int64 {
	t.Helper()
	n, err := coll.CountDocuments(ctx(t), filter)
	must(t, err)
	return n
}

func TestUniqueIndexCreateAndList(t *testing.T) {
	db, cx := setup(t)
	users := db.Collection("users")
	_, err := users.InsertMany(cx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "a@example.com"}, {Key: "team", Value: "x"}, {Key: "n", Value: 1}},
		bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "b@example.com"}, {Key: "team", Value: "x"}, {Key: "n", Value: 2}},
		bson.D{{Key: "_id", Value: 3}, {Key: "email", Value: "c@example.com"}, {Key: "team", Value: "y"}, {Key: "n", Value: 1}},
	})
	must(t, err)
	uniqueIndex(t, users, bson.D{{Key: "email", Value: 1}})
	uniqueIndex(t, users, bson.D{{Key: "team", Value: -1}, {Key: "n", Value: 1}})

	// The collection holds duplicates of team: the build fails with 11000,
	// naming the key, and creates nothing; so does a command with a good
	// index and a failing one.
	_, err = users.Indexes().CreateOne(cx, mongo.IndexModel{Keys: bson.D{{Key: "team", Value: 1}}, Options: options.Index().SetUnique(true)})
	wantDuplicate(t, err, bson.D{{Key: "team", Value: int32(1)}}, bson.D{{Key: "team", Value: "x"}})
	_, err = users.Indexes().CreateMany(cx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "n", Value: -1}}},
		{Keys: bson.D{{Key: "n", Value: 1}}, Options: options.Index().SetUnique(true)},
	})
	wantDuplicate(t, err, bson.D{{Key: "n", Value: int32(1)}}, bson.D{{Key: "n", Value: int32(1)}})

	var specs []bson.M
	cursor, err := users.Indexes().List(cx)
	must(t, err)
	must(t, cursor.All(cx, &specs))
	names := map[string]bson.M{}
	for _, s := range specs {
		names[s["name"].(string)] = s
	}
	if len(specs) != 3 || names["email_1"]["unique"] != true || names["team_-1_n_1"]["unique"] != true {
		t.Fatalf("listIndexes = %v, want _id_, email_1 and team_-1_n_1, the last two unique", specs)
	}
	if _, ok := names["_id_"]["unique"]; ok {
		t.Errorf("the _id index shows %v; mongod lists it without a unique field", names["_id_"])
	}
	// The same key with other options is a conflict (85), as on mongod.
	_, err = users.Indexes().CreateOne(cx, mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetName("plain")})
	if codeOf(err) != 85 {
		t.Errorf("a non-unique index on a unique index's key: err = %v, want 85 IndexOptionsConflict", err)
	}
	// Documents missing the field all have the key null: a unique index
	// over it cannot be built.
	_, err = users.Indexes().CreateOne(cx, mongo.IndexModel{Keys: bson.D{{Key: "phone", Value: 1}}, Options: options.Index().SetUnique(true)})
	wantDuplicate(t, err, bson.D{{Key: "phone", Value: int32(1)}}, bson.D{{Key: "phone", Value: nil}})
}

func TestUniqueIndexInserts(t *testing.T) {
	db, cx := setup(t)
	users := db.Collection("users")
	uniqueIndex(t, users, bson.D{{Key: "email", Value: 1}})
	_, err := users.InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "a@example.com"}})
	must(t, err)

	_, err = users.InsertOne(cx, bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "a@example.com"}})
	msg, _, _ := duplicate(t, err)
	want := fmt.Sprintf(`E11000 duplicate key error collection: %s.users index: email_1 dup key: { email: "a@example.com" }`, db.Name())
	if msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}
	wantDuplicate(t, err, bson.D{{Key: "email", Value: int32(1)}}, bson.D{{Key: "email", Value: "a@example.com"}})

	// Unordered: every document is tried, each failure reported with its index.
	_, err = users.InsertMany(cx, []any{
		bson.D{{Key: "_id", Value: 3}, {Key: "email", Value: "a@example.com"}},
		bson.D{{Key: "_id", Value: 4}, {Key: "email", Value: "b@example.com"}},
		bson.D{{Key: "_id", Value: 5}, {Key: "email", Value: "b@example.com"}},
		bson.D{{Key: "_id", Value: 6}, {Key: "email", Value: "c@example.com"}},
	}, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || len(bwe.WriteErrors) != 2 || bwe.WriteErrors[0].Index != 0 || bwe.WriteErrors[1].Index != 2 ||
		bwe.WriteErrors[0].Code != 11000 || bwe.WriteErrors[1].Code != 11000 {
		t.Fatalf("unordered insert: err = %v, want 11000 at 0 and 2", err)
	}
	// Ordered: stops at the first.
	_, err = users.InsertMany(cx, []any{
		bson.D{{Key: "_id", Value: 7}, {Key: "email", Value: "d@example.com"}},
		bson.D{{Key: "_id", Value: 8}, {Key: "email", Value: "d@example.com"}},
		bson.D{{Key: "_id", Value: 9}, {Key: "email", Value: "e@example.com"}},
	})
	if !errors.As(err, &bwe) || len(bwe.WriteErrors) != 1 || bwe.WriteErrors[0].Index != 1 {
		t.Fatalf("ordered insert: err = %v, want 11000 at 1", err)
	}
	if n := count(t, users, bson.D{}); n != 4 {
		t.Fatalf("%d documents, want 4 (1, 4, 6 and 7)", n)
	}
	// The _id index comes first: a document duplicating both is refused over _id.
	_, err = users.InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "a@example.com"}})
	wantDuplicate(t, err, bson.D{{Key: "_id", Value: int32(1)}}, bson.D{{Key: "_id", Value: int32(1)}})

	// Keys compare as values: 1, 1.0 and NumberLong(1) are one key.
	_, err = users.InsertOne(cx, bson.D{{Key: "_id", Value: 10}, {Key: "email", Value: int64(1)}})
	must(t, err)
	_, err = users.InsertOne(cx, bson.D{{Key: "_id", Value: 11}, {Key: "email", Value: 1.0}})
	wantDuplicate(t, err, bson.D{{Key: "email", Value: int32(1)}}, bson.D{{Key: "email", Value: 1.0}})

	// A missing field is null: one document may lack it, a second may not,
	// nor may one holding null.
	_, err = users.InsertOne(cx, bson.D{{Key: "_id", Value: 12}})
	must(t, err)
	_, err = users.InsertOne(cx, bson.D{{Key: "_id", Value: 13}})
	wantDuplicate(t, err, bson.D{{Key: "email", Value: int32(1)}}, bson.D{{Key: "email", Value: nil}})
	_, err = users.InsertOne(cx, bson.D{{Key: "_id", Value: 14}, {Key: "email", Value: nil}})
	wantDuplicate(t, err, bson.D{{Key: "email", Value: int32(1)}}, bson.D{{Key: "email", Value: nil}})
}

func TestUniqueCompoundIndex(t *testing.T) {
	db, cx := setup(t)
	seats := db.Collection("seats")
	uniqueIndex(t, seats, bson.D{{Key: "row", Value: 1}, {Key: "seat", Value: -1}})
	_, err := seats.InsertMany(cx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "row", Value: "A"}, {Key: "seat", Value: 1}},
		bson.D{{Key: "_id", Value: 2}, {Key: "row", Value: "A"}, {Key: "seat", Value: 2}},
		bson.D{{Key: "_id", Value: 3}, {Key: "row", Value: "B"}, {Key: "seat", Value: 1}},
		bson.D{{Key: "_id", Value: 4}, {Key: "row", Value: "B"}}, // {B, null}
	})
	must(t, err) // the combination is unique, not each field
	_, err = seats.InsertOne(cx, bson.D{{Key: "_id", Value: 5}, {Key: "seat", Value: 2}, {Key: "row", Value: "A"}})
	wantDuplicate(t, err, bson.D{{Key: "row", Value: int32(1)}, {Key: "seat", Value: int32(-1)}}, bson.D{{Key: "row", Value: "A"}, {Key: "seat", Value: int32(2)}})
	_, err = seats.InsertOne(cx, bson.D{{Key: "_id", Value: 6}, {Key: "row", Value: "B"}, {Key: "seat", Value: nil}})
	wantDuplicate(t, err, bson.D{{Key: "row", Value: int32(1)}, {Key: "seat", Value: int32(-1)}}, bson.D{{Key: "row", Value: "B"}, {Key: "seat", Value: nil}})

	// Two arrays in one document cannot be indexed together (171), in any
	// compound index; one array makes an entry per element.
	_, err = seats.InsertOne(cx, bson.D{{Key: "_id", Value: 7}, {Key: "row", Value: bson.A{"C", "D"}}, {Key: "seat", Value: bson.A{1, 2}}})
	if codeOf(err) != 171 {
		t.Fatalf("parallel arrays: err = %v, want 171 CannotIndexParallelArrays", err)
	}
	_, err = seats.InsertOne(cx, bson.D{{Key: "_id", Value: 8}, {Key: "row", Value: bson.A{"C", "A"}}, {Key: "seat", Value: 2}})
	wantDuplicate(t, err, bson.D{{Key: "row", Value: int32(1)}, {Key: "seat", Value: int32(-1)}}, bson.D{{Key: "row", Value: "A"}, {Key: "seat", Value: int32(2)}})
	_, err = db.Collection("plain").Indexes().CreateOne(cx, mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 1}}})
	must(t, err)
	_, err = db.Collection("plain").InsertOne(cx, bson.D{{Key: "a", Value: bson.A{1}}, {Key: "b", Value: bson.A{2}}})
	if codeOf(err) != 171 {
		t.Fatalf("parallel arrays in a non-unique index: err = %v, want 171", err)
	}
	_, err = db.Collection("arrays").InsertOne(cx, bson.D{{Key: "a", Value: bson.A{1}}, {Key: "b", Value: bson.A{2}}})
	must(t, err)
	_, err = db.Collection("arrays").Indexes().CreateOne(cx, mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 1}}})
	if codeOf(err) != 171 {
		t.Fatalf("an index over parallel arrays already there: err = %v, want 171", err)
	}
}

func TestUniqueMultikeyIndex(t *testing.T) {
	db, cx := setup(t)
	posts := db.Collection("posts")
	uniqueIndex(t, posts, bson.D{{Key: "slugs", Value: 1}})
	uniqueIndex(t, posts, bson.D{{Key: "links.url", Value: 1}})
	// A document may repeat a key within itself.
	_, err := posts.InsertOne(cx, bson.D{{Key: "_id", Value: 1}, {Key: "slugs", Value: bson.A{"x", "x", "y"}},
		{Key: "links", Value: bson.A{bson.D{{Key: "url", Value: "u1"}}, bson.D{{Key: "url", Value: "u1"}}}}})
	must(t, err)
	// Another may not hold any of its elements.
	_, err = posts.InsertOne(cx, bson.D{{Key: "_id", Value: 2}, {Key: "slugs", Value: bson.A{"z", "y"}}, {Key: "links", Value: bson.A{}}})
	wantDuplicate(t, err, bson.D{{Key: "slugs", Value: int32(1)}}, bson.D{{Key: "slugs", Value: "y"}})
	_, err = posts.InsertOne(cx, bson.D{{Key: "_id", Value: 3}, {Key: "slugs", Value: "z"},
		{Key: "links", Value: bson.A{bson.D{{Key: "url", Value: "u2"}}, bson.D{{Key: "url", Value: "u1"}}}}})
	wantDuplicate(t, err, bson.D{{Key: "links.url", Value: int32(1)}}, bson.D{{Key: "links.url", Value: "u1"}})
	// The document may change its own array, keeping a key it held.
	_, err = posts.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$push", Value: bson.D{{Key: "slugs", Value: "w"}}}})
	must(t, err)
	_, err = posts.InsertOne(cx, bson.D{{Key: "_id", Value: 4}, {Key: "slugs", Value: "w"}})
	wantDuplicate(t, err, bson.D{{Key: "slugs", Value: int32(1)}}, bson.D{{Key: "slugs", Value: "w"}})
}

// TestUniqueIndexUpdates: update, replace, upsert and findAndModify are
// refused as inserts are; a multi-update keeps what it wrote before the
// document it was refused at, as mongod's does; a refused write records no
// change event; dropping the index drops the constraint.
func TestUniqueIndexUpdates(t *testing.T) {
	db, cx := setup(t)
	users := db.Collection("users")
	uniqueIndex(t, users, bson.D{{Key: "email", Value: 1}})
	_, err := users.InsertMany(cx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "a"}, {Key: "n", Value: 1}},
		bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "b"}, {Key: "n", Value: 2}},
	})
	must(t, err)
	cs, err := users.Watch(cx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(50*time.Millisecond))
	must(t, err)
	defer cs.Close(cx)
	email := func(v any) bson.D { return bson.D{{Key: "email", Value: v}} }
	pattern := bson.D{{Key: "email", Value: int32(1)}}

	_, err = users.UpdateOne(cx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "$set", Value: email("a")}})
	wantDuplicate(t, err, pattern, email("a"))
	_, err = users.ReplaceOne(cx, bson.D{{Key: "_id", Value: 2}}, email("a"))
	wantDuplicate(t, err, pattern, email("a"))
	_, err = users.UpdateOne(cx, bson.D{{Key: "_id", Value: 3}}, bson.D{{Key: "$set", Value: email("b")}}, options.UpdateOne().SetUpsert(true))
	wantDuplicate(t, err, pattern, email("b"))
	err = users.FindOneAndUpdate(cx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "$set", Value: email("a")}}).Err()
	wantDuplicate(t, err, pattern, email("a"))
	err = users.FindOneAndUpdate(cx, bson.D{{Key: "_id", Value: 3}}, bson.D{{Key: "$set", Value: email("a")}}, options.FindOneAndUpdate().SetUpsert(true)).Err()
	wantDuplicate(t, err, pattern, email("a"))
	// Unsetting the key makes it null, free once.
	_, err = users.UpdateOne(cx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "$unset", Value: email("")}})
	must(t, err)
	_, err = users.UpdateOne(cx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: email(nil)}})
	wantDuplicate(t, err, pattern, email(nil))

	// Both documents to "c": the first is written, the second refused.
	_, err = users.UpdateMany(cx, bson.D{}, bson.D{{Key: "$set", Value: email("c")}, {Key: "$inc", Value: bson.D{{Key: "n", Value: 10}}}})
	wantDuplicate(t, err, pattern, email("c"))
	var docs []bson.M
	cursor, err := users.Find(cx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	must(t, err)
	must(t, cursor.All(cx, &docs))
	if len(docs) != 2 || docs[0]["email"] != "c" || docs[0]["n"] != int32(11) || docs[1]["email"] != nil || docs[1]["n"] != int32(2) {
		t.Fatalf("after the refused multi-update: %v; want 1 written, 2 unchanged", docs)
	}
	_, err = users.InsertOne(cx, bson.D{{Key: "_id", Value: "marker"}, {Key: "email", Value: "m"}})
	must(t, err)
	// Of all the writes above, the $unset, the multi-update's first
	// document and the marker changed something.
	for _, want := range []string{"update", "update", "insert"} {
		if ev := next(t, cs); opType(ev) != want {
			t.Fatalf("event %v, want %s: a refused write records nothing", ev, want)
		}
	}

	err = users.Indexes().DropOne(cx, "email_1")
	must(t, err)
	_, err = users.InsertOne(cx, bson.D{{Key: "_id", Value: 5}, {Key: "email", Value: "c"}})
	must(t, err)
}

// TestUniqueIndexInTransactions: a transaction's own writes and what is
// committed both hold keys; a duplicate key fails the statement and ends
// the transaction; a key another transaction wrote is a WriteConflict,
// and a write outside transactions waits for the holder, as for _id
// (https://www.mongodb.com/docs/manual/core/transactions-production-consideration/).
func TestUniqueIndexInTransactions(t *testing.T) {
	db, cx := setup(t)
	users := db.Collection("users")
	uniqueIndex(t, users, bson.D{{Key: "email", Value: 1}})
	_, err := users.InsertMany(cx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "a"}},
		bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "b"}},
	})
	must(t, err)
	email := func(v any) bson.D { return bson.D{{Key: "email", Value: v}} }
	pattern := bson.D{{Key: "email", Value: int32(1)}}
	var se mongo.ServerError

	// Committed data hold keys; the failure ends the transaction.
	sess := startSession(t, db.Client())
	must(t, sess.StartTransaction())
	sc := mongo.NewSessionContext(cx, sess)
	_, err = users.InsertOne(sc, bson.D{{Key: "_id", Value: 3}, {Key: "email", Value: "z"}})
	must(t, err)
	_, err = users.InsertOne(sc, bson.D{{Key: "_id", Value: 4}, {Key: "email", Value: "a"}})
	wantDuplicate(t, err, pattern, email("a"))
	_, err = users.InsertOne(sc, bson.D{{Key: "_id", Value: 5}})
	if !errors.As(err, &se) || !se.HasErrorCode(251) {
		t.Fatalf("after a duplicate key: err = %v, want 251 NoSuchTransaction", err)
	}
	_ = sess.AbortTransaction(cx)
	if n := count(t, users, bson.D{{Key: "email", Value: "z"}}); n != 0 {
		t.Fatal("the failed transaction's insert stayed")
	}

	// Its own writes hold keys too.
	must(t, sess.StartTransaction())
	_, err = users.InsertOne(sc, bson.D{{Key: "_id", Value: 3}, {Key: "email", Value: "z"}})
	must(t, err)
	_, err = users.UpdateOne(sc, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: email("z")}})
	wantDuplicate(t, err, pattern, email("z"))
	_ = sess.AbortTransaction(cx)

	// Keys it frees are its to take: a swap through a third value, a
	// delete and an insert of its key.
	must(t, sess.StartTransaction())
	for _, step := range []struct {
		id  int
		key string
	}{{1, "tmp"}, {2, "a"}, {1, "b"}} {
		_, err = users.UpdateOne(sc, bson.D{{Key: "_id", Value: step.id}}, bson.D{{Key: "$set", Value: email(step.key)}})
		must(t, err)
	}
	_, err = users.DeleteOne(sc, bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	_, err = users.InsertOne(sc, bson.D{{Key: "_id", Value: 6}, {Key: "email", Value: "a"}})
	must(t, err)

	// Meanwhile the keys it holds, in its writes and in the committed
	// versions, are a conflict for another transaction...
	other := startSession(t, db.Client())
	oc := mongo.NewSessionContext(cx, other)
	for _, key := range []string{"a", "b"} {
		must(t, other.StartTransaction())
		_, err = users.InsertOne(oc, bson.D{{Key: "_id", Value: "other " + key}, {Key: "email", Value: key}})
		if !errors.As(err, &se) || !se.HasErrorCode(112) || !se.HasErrorLabel("TransientTransactionError") {
			t.Fatalf("another transaction's insert of %q: err = %v, want 112 WriteConflict, TransientTransactionError", key, err)
		}
		_ = other.AbortTransaction(cx)
	}
	// ... and make a write outside transactions wait (given up at maxTimeMS).
	err = db.RunCommand(cx, bson.D{{Key: "insert", Value: "users"}, {Key: "maxTimeMS", Value: 100},
		{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 7}, {Key: "email", Value: "b"}}}}}).Err()
	if codeOf(err) != 50 {
		t.Fatalf("an insert of a key a transaction holds, with maxTimeMS: err = %v, want 50 MaxTimeMSExpired", err)
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := users.InsertOne(cx, bson.D{{Key: "_id", Value: 8}, {Key: "email", Value: "b"}})
		waiting <- err
	}()
	must(t, sess.CommitTransaction(cx))
	// Committed, the transaction's 1 holds b: the waiting insert is refused.
	wantDuplicate(t, <-waiting, pattern, email("b"))
	var got []bson.M
	cursor, err := users.Find(cx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	must(t, err)
	must(t, cursor.All(cx, &got))
	if len(got) != 2 || got[0]["email"] != "b" || got[1]["_id"] != int32(6) || got[1]["email"] != "a" {
		t.Fatalf("after the commit: %v, want 1 holding b and 6 holding a", got)
	}

	// A key committed after a transaction read its snapshot is a conflict,
	// a unique index's as an _id.
	for _, c := range []struct {
		what              string
		committed, insert bson.D
	}{
		{"email", bson.D{{Key: "_id", Value: 9}, {Key: "email", Value: "late"}}, bson.D{{Key: "_id", Value: 10}, {Key: "email", Value: "late"}}},
		{"_id", bson.D{{Key: "_id", Value: 11}, {Key: "email", Value: "later"}}, bson.D{{Key: "_id", Value: 11}, {Key: "email", Value: "other"}}},
	} {
		must(t, sess.StartTransaction())
		must(t, users.FindOne(sc, bson.D{{Key: "_id", Value: 1}}).Err())
		_, err = users.InsertOne(cx, c.committed)
		must(t, err)
		_, err = users.InsertOne(sc, c.insert)
		if !errors.As(err, &se) || !se.HasErrorCode(112) {
			t.Fatalf("an %s committed after the transaction's snapshot: err = %v, want 112 WriteConflict", c.what, err)
		}
		_ = sess.AbortTransaction(cx)
	}
}

// TestUniqueKeysHeldByTransaction: the key of a document a transaction
// changed stays held, in its committed version, until the transaction ends,
// and comes back if it aborts; a multi-document update outside transactions
// that meets a held key waits, then goes on as if it had not waited (each
// document written once).
func TestUniqueKeysHeldByTransaction(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("held")
	uniqueIndex(t, coll, bson.D{{Key: "k", Value: 1}})
	_, err := coll.InsertMany(cx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "k", Value: 1}},
		bson.D{{Key: "_id", Value: 2}, {Key: "k", Value: 10}},
		bson.D{{Key: "_id", Value: "solo"}, {Key: "k", Value: "solo"}},
	})
	must(t, err)
	key := func(v any) bson.D { return bson.D{{Key: "k", Value: v}} }
	var se mongo.ServerError

	holder := startSession(t, db.Client())
	must(t, holder.StartTransaction())
	hc := mongo.NewSessionContext(cx, holder)
	_, err = coll.UpdateOne(hc, bson.D{{Key: "_id", Value: "solo"}}, bson.D{{Key: "$set", Value: key("solo2")}})
	must(t, err)
	other := startSession(t, db.Client())
	must(t, other.StartTransaction())
	_, err = coll.InsertOne(mongo.NewSessionContext(cx, other), bson.D{{Key: "_id", Value: 3}, {Key: "k", Value: "solo"}})
	if !errors.As(err, &se) || !se.HasErrorCode(112) {
		t.Fatalf("a key a transaction moved away from, before its commit: err = %v, want 112 WriteConflict", err)
	}
	_ = other.AbortTransaction(cx)
	must(t, holder.AbortTransaction(cx))
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 3}, {Key: "k", Value: "solo"}})
	wantDuplicate(t, err, bson.D{{Key: "k", Value: int32(1)}}, key("solo"))
	_, err = coll.InsertOne(cx, bson.D{{Key: "_id", Value: 3}, {Key: "k", Value: "solo2"}})
	must(t, err)

	// The transaction takes 11; an $inc of every k moves 1 to 2, then
	// meets 11.
	must(t, holder.StartTransaction())
	_, err = coll.InsertOne(hc, bson.D{{Key: "_id", Value: "t"}, {Key: "k", Value: 11}})
	must(t, err)
	waiting := make(chan error, 1)
	go func() {
		_, err := coll.UpdateMany(cx, bson.D{{Key: "k", Value: bson.D{{Key: "$type", Value: "number"}}}}, bson.D{{Key: "$inc", Value: key(1)}})
		waiting <- err
	}()
	// (This one waits too, long enough for the update to be waiting.)
	err = db.RunCommand(cx, bson.D{{Key: "insert", Value: "held"}, {Key: "maxTimeMS", Value: 100},
		{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 4}, {Key: "k", Value: 11}}}}}).Err()
	if codeOf(err) != 50 {
		t.Fatalf("an insert of a key a transaction inserted, with maxTimeMS: err = %v, want 50 MaxTimeMSExpired", err)
	}
	must(t, holder.CommitTransaction(cx))
	wantDuplicate(t, <-waiting, bson.D{{Key: "k", Value: int32(1)}}, key(11))
	var one, two bson.M
	must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: 1}}).Decode(&one))
	must(t, coll.FindOne(cx, bson.D{{Key: "_id", Value: 2}}).Decode(&two))
	if one["k"] != int32(2) || two["k"] != int32(10) {
		t.Fatalf("after the update: 1 holds %v, 2 holds %v; want 2 (incremented once) and 10", one["k"], two["k"])
	}
}
