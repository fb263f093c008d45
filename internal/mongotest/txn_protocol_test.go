package mongotest_test

import (
	"bytes"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// TestTransactionProtocol drives a session's transaction numbers by hand,
// as the Transactions and Retryable Writes specifications describe the
// server's answers.
func TestTransactionProtocol(t *testing.T) {
	nc := dial(t)
	lsid := bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{7}, 16)}}}
	run := func(cmd bson.D, txn int64, extra ...bson.E) bson.Raw {
		t.Helper()
		cmd = append(cmd, bson.E{Key: "lsid", Value: lsid}, bson.E{Key: "txnNumber", Value: txn})
		return rawCommand(t, nc, append(cmd, extra...))
	}
	inTxn := bson.E{Key: "autocommit", Value: false}
	start := bson.E{Key: "startTransaction", Value: true}
	insert := func(id int) bson.D {
		return bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: id}}}}, {Key: "$db", Value: "proto"}}
	}
	commit := bson.D{{Key: "commitTransaction", Value: 1}, {Key: "$db", Value: "admin"}}
	abort := bson.D{{Key: "abortTransaction", Value: 1}, {Key: "$db", Value: "admin"}}
	expect := func(what string, reply bson.Raw, code int32, label string) {
		t.Helper()
		got, _ := reply.Lookup("code").AsInt64OK()
		if code == 0 && reply.Lookup("ok").Double() != 1 || code != 0 && int32(got) != code {
			t.Fatalf("%s: %v, want code %d", what, reply, code)
		}
		if label != "" && !bytes.Contains(reply.Lookup("errorLabels").Value, []byte(label)) {
			t.Fatalf("%s: %v, want label %s", what, reply, label)
		}
	}
	expect("start", run(insert(1), 1, inTxn, start), 0, "")
	expect("commit", run(commit, 1, inTxn), 0, "")
	expect("commit again", run(commit, 1, inTxn), 0, "")
	expect("abort after commit", run(abort, 1, inTxn), 256, "")
	expect("statement after commit", run(insert(2), 1, inTxn), 256, "")
	expect("restart at the same number", run(insert(2), 1, inTxn, start), 117, "")
	expect("start 2", run(insert(2), 2, inTxn, start), 0, "")
	expect("abort 2", run(abort, 2, inTxn), 0, "")
	expect("commit after abort", run(commit, 2, inTxn), 251, "TransientTransactionError")
	expect("an older number", run(insert(3), 1, inTxn), 225, "")
	expect("no startTransaction", run(insert(3), 3, inTxn), 251, "TransientTransactionError")
	expect("retryable write with an older number", run(insert(3), 1), 225, "")
	expect("retryable write", run(insert(3), 4), 0, "")
	expect("its retry", run(insert(3), 4), 0, "") // not a duplicate key: it already ran
	find := rawCommand(t, nc, bson.D{{Key: "find", Value: "c"}, {Key: "$db", Value: "proto"}})
	if docs, _ := find.Lookup("cursor", "firstBatch").Array().Values(); len(docs) != 2 {
		t.Fatalf("after the protocol: %v, want _id 1 and 3", find)
	}
}

// TestTransactionStatementErrorAborts: a duplicate key in a transaction is
// a write error, and it ends the transaction (mongod aborts a transaction
// whose statement failed).
func TestTransactionStatementErrorAborts(t *testing.T) {
	db, cx := setup(t)
	coll := db.Collection("dups")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	sess := startSession(t, db.Client())
	must(t, sess.StartTransaction())
	sc := mongo.NewSessionContext(cx, sess)
	_, err = coll.InsertOne(sc, bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	_, err = coll.InsertOne(sc, bson.D{{Key: "_id", Value: 1}})
	if codeOf(err) != 11000 {
		t.Fatalf("duplicate key in a transaction: err = %v", err)
	}
	err = sess.CommitTransaction(cx)
	var se mongo.ServerError
	if !errors.As(err, &se) || !se.HasErrorCode(251) {
		t.Fatalf("commit after a failed statement: err = %v, want NoSuchTransaction", err)
	}
	if n, _ := coll.CountDocuments(cx, bson.D{}); n != 1 {
		t.Fatalf("%d documents: the aborted transaction's insert stayed", n)
	}
}
