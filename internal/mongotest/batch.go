package mongotest

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// Batch writes: the statements of insert, update and delete, their results
// and write errors, retried statements, and statements that wait for a
// transaction.

// writeError is a per-statement failure of insert/update/delete, reported
// in writeErrors with the command still ok:1.
type writeError struct {
	code  int32
	msg   string
	extra bson.D // e.g. keyPattern and keyValue of a duplicate key
}

func (e *writeError) Error() string { return e.msg }

// writeErrors collects statement errors; ordered writes stop at the first.
type writeErrors struct {
	list    bson.A
	indexes []int // of the statements that failed
}

// add records err for statement i; it returns false when err is not a
// statement error and must fail the whole command.
func (w *writeErrors) add(i int, err error) bool {
	ce, ok := asCmdError(err)
	if !ok {
		return false
	}
	doc := bson.D{{Key: "index", Value: int32(i)}, {Key: "code", Value: ce.code}, {Key: "errmsg", Value: ce.msg}}
	w.list = append(w.list, append(doc, ce.extra...))
	w.indexes = append(w.indexes, i)
	return true
}

// failedIn reports whether a statement in [from, to) failed.
func (w *writeErrors) failedIn(from, to int) bool {
	for _, i := range w.indexes {
		if i >= from && i < to {
			return true
		}
	}
	return false
}

func (w *writeErrors) appendTo(res bson.D) bson.D {
	if len(w.list) > 0 {
		res = append(res, bson.E{Key: "writeErrors", Value: w.list})
	}
	return res
}

// stmtResult is what one statement of a batch write did.
type stmtResult struct {
	n, modified int32
	upserted    bsoncore.Value // the _id of a document an update inserted
}

// batchResult is what a batch write did, statement by statement.
type batchResult struct {
	n, modified int32
	upserted    bson.A
	werrs       writeErrors
}

// runBatch runs fn on each statement of a batch write (insert's documents,
// update's updates, delete's deletes). Statement errors are collected for
// writeErrors, and an ordered batch, or a transaction's, stops at the
// first; any other error fails the whole command. A statement of a
// retryable write that already ran under this txnNumber does not run again:
// what it did counts.
func (cx *cmdCtx) runBatch(stmts []bsoncore.Value, ordered bool, fn func(i int, s bsoncore.Value) (stmtResult, error)) (*batchResult, error) {
	var out batchResult
	for i, s := range stmts {
		res, done := cx.sess.executedStmt(cx.retryable, i)
		if !done {
			var err error
			res, err = untilUnblocked(cx, func() (stmtResult, error) { return fn(i, s) })
			if err != nil {
				if ce, ok := asCmdError(err); ok && cx.txn != nil && transientTxnError(ce.code, false) {
					return nil, err
				}
				if !out.werrs.add(i, err) {
					return nil, err
				}
				if cx.txn != nil {
					cx.s.abortLocked(cx.txn) // a failed statement ends its transaction
					break
				}
				if ordered {
					break
				}
				continue
			}
			if cx.retryable {
				cx.sess.executed[i] = res
			}
		}
		out.n += res.n
		out.modified += res.modified
		if res.upserted.Type != 0 {
			out.upserted = append(out.upserted, bson.D{{Key: "index", Value: int32(i)}, {Key: "_id", Value: query.RawValue(res.upserted)}})
		}
	}
	return &out, nil
}

// executedStmt returns what statement i of the retryable write did if it
// already ran.
func (sess *session) executedStmt(retryable bool, i int) (stmtResult, bool) {
	if !retryable {
		return stmtResult{}, false
	}
	res, ok := sess.executed[i]
	return res, ok
}

// untilUnblocked runs a statement, and runs it again each time a
// transaction ends while one blocks it, until maxTimeMS runs out.
func untilUnblocked[T any](cx *cmdCtx, run func() (T, error)) (T, error) {
	for {
		res, err := run()
		if !isBlocked(err) {
			return res, err
		}
		if err := cx.awaitChange(); err != nil {
			return res, err
		}
	}
}

// awaitChange waits, without the data lock, for the next change; maxTimeMS
// running out or the client leaving ends the wait with an error.
func (cx *cmdCtx) awaitChange() error {
	for {
		deadline := cx.deadline
		if deadline.IsZero() {
			deadline = time.Now().Add(time.Minute)
		}
		if cx.waitForChange(deadline) {
			return nil
		}
		select {
		case <-cx.c.done:
			return errorf(codeInterrupted, "operation was interrupted: the client closed the connection")
		default:
		}
		if !cx.deadline.IsZero() && !time.Now().Before(cx.deadline) {
			return maxTimeExpired()
		}
	}
}
