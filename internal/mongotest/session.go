package mongotest

import (
	"crypto/sha256"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// session is the server side of a logical session
// (https://www.mongodb.com/docs/manual/reference/server-sessions/): the
// highest transaction number it used, the transaction of that number if it
// started one, and what the statements of the retryable write of that
// number returned, so that a retry runs none of them twice (Retryable
// Writes specification,
// https://github.com/mongodb/specifications/blob/master/source/retryable-writes/retryable-writes.md).
// Guarded by Server.mu.
type session struct {
	// eventLsid is the lsid as change events show it: the client's id and
	// the uid of the user, the SHA-256 of "" without authentication (mongod's
	// kNoAuthDigest).
	eventLsid bsoncore.Document
	txnNumber int64
	used      bool // txnNumber has been used
	txn       *transaction
	// executed holds the results of the statements, by index, of the
	// retryable write numbered txnNumber; reply, a findAndModify's reply.
	executed map[int]stmtResult
	reply    bson.D
}

// noAuthUID is the uid of a session without an authenticated user.
var noAuthUID = sha256.Sum256(nil)

// sessionLocked returns the session with lsid's id, creating it.
func (s *Server) sessionLocked(lsid bsoncore.Document) (*session, error) {
	id := lsid.Lookup("id")
	if sub, data, ok := id.BinaryOK(); !ok || sub != 4 || len(data) != 16 {
		return nil, errorf(codeBadValue, "lsid.id must be a UUID (BSON binary subtype 4), got %s", id)
	}
	key := string(id.Data)
	if sess := s.sessions[key]; sess != nil {
		return sess, nil
	}
	sess := &session{eventLsid: query.BuildDoc([]query.Field{
		{Key: "id", Val: id},
		{Key: "uid", Val: bsoncore.Value{Type: bsoncore.TypeBinary, Data: bsoncore.AppendBinary(nil, 0, noAuthUID[:])}},
	})}
	s.sessions[key] = sess
	return sess, nil
}

// begin moves the session to transaction number n, ending (aborting) an
// active transaction of a lower number as mongod does.
func (s *Server) beginLocked(sess *session, n int64) {
	if sess.txn != nil {
		s.abortLocked(sess.txn)
	}
	sess.txnNumber, sess.used, sess.txn = n, true, nil
	sess.executed, sess.reply = map[int]stmtResult{}, nil
}

// commitOrAbort names the commands that end a transaction.
func commitOrAbort(name string) bool {
	return name == "commitTransaction" || name == "abortTransaction"
}

// bindSession ties the command to its session: the transaction it runs in,
// or the retryable write it is (or retries). It runs with the data lock.
func (cx *cmdCtx) bindSession(cmd command) error {
	if cx.lsid == nil {
		switch {
		case cx.txnNumber != nil:
			return errorf(codeInvalidOptions, "Transaction number requires a session ID to also be specified")
		case cx.autocommit:
			return errorf(codeInvalidOptions, "'autocommit' field requires a transaction number to also be specified")
		}
		return nil
	}
	sess, err := cx.s.sessionLocked(cx.lsid)
	if err != nil {
		return err
	}
	cx.sess = sess
	switch {
	case cx.autocommit:
		return cx.bindTransaction(cmd)
	case cx.txnNumber != nil && cmd.write:
		return cx.bindRetryableWrite()
	}
	return nil
}

func (cx *cmdCtx) bindRetryableWrite() error {
	sess, n := cx.sess, *cx.txnNumber
	switch {
	case sess.used && n < sess.txnNumber:
		return errorf(codeTransactionTooOld, "Retryable write with txnNumber %d is prohibited on session because a newer retryable write with txnNumber %d has already started on this session.", n, sess.txnNumber)
	case !sess.used || n > sess.txnNumber:
		cx.s.beginLocked(sess, n)
	case sess.txn != nil:
		return errorf(codeConflictingOperationInProgress, "Retryable write with txnNumber %d is prohibited on session because a transaction with this number exists.", n)
	}
	cx.retryable = true
	return nil
}

// Commands a transaction may run (https://www.mongodb.com/docs/manual/core/transactions-operations/).
var transactionCommands = []string{
	"find", "getMore", "killCursors", "aggregate", "insert", "update", "delete",
	"findAndModify", "create", "createIndexes", "commitTransaction", "abortTransaction",
}

func (cx *cmdCtx) bindTransaction(cmd command) error {
	if cx.txnNumber == nil {
		return errorf(codeInvalidOptions, "'autocommit' field requires a transaction number to also be specified")
	}
	if !slices.Contains(transactionCommands, cx.name) {
		return errorf(codeOperationNotSupportedInTransaction, "Cannot run '%s' in a multi-document transaction.", cx.name)
	}
	sess, n := cx.sess, *cx.txnNumber
	_, hasReadConcern := cx.field("readConcern")
	if sess.used && n < sess.txnNumber {
		return errorf(codeTransactionTooOld, "Cannot start transaction %d on session because a newer transaction with txnNumber %d has started.", n, sess.txnNumber)
	}
	if cx.startTxn {
		switch {
		case sess.used && n == sess.txnNumber:
			return errorf(codeConflictingOperationInProgress, "Cannot start a transaction at given transaction number %d: it was already used on this session.", n)
		}
		cx.s.beginLocked(sess, n)
		sess.txn = &transaction{sess: sess, number: n, snapshot: cx.s.clock.now(), began: time.Now()}
	} else {
		t := sess.txn
		switch {
		case t == nil || n != sess.txnNumber:
			return errorf(codeNoSuchTransaction, "Given transaction number %d does not match any in-progress transactions. The active transaction number is %d", n, sess.txnNumber)
		case t.state == txnAborted:
			return errorf(codeNoSuchTransaction, "Transaction with { txnNumber: %d } has been aborted.", n)
		case t.state == txnCommitted && cx.name != "commitTransaction":
			return errorf(codeTransactionCommitted, "Transaction with { txnNumber: %d } has been committed.", n)
		case hasReadConcern:
			return errorf(codeInvalidOptions, "Only the first command in a transaction may specify a readConcern")
		}
	}
	if _, ok := cx.field("writeConcern"); ok && !commitOrAbort(cx.name) {
		return errorf(codeInvalidOptions, "Cannot set write concern after starting a transaction.")
	}
	cx.txn = sess.txn
	return nil
}

// abortOnFailure aborts the command's transaction after it failed, as
// mongod does for any failed statement of a transaction (commit and abort
// excepted: a failed commit can be retried).
func (cx *cmdCtx) abortOnFailure() {
	if cx.txn != nil && cx.txn.state == txnActive && !commitOrAbort(cx.name) {
		cx.s.abortLocked(cx.txn)
	}
}

var sessionCommands = map[string]command{
	"commitTransaction": {run: commitTransaction, fields: []string{"recoveryToken"}},
	"abortTransaction":  {run: abortTransaction, fields: []string{"recoveryToken"}},
	"endSessions":       {run: endSessions, freeForm: true},
	"killSessions":      {run: killSessions, freeForm: true},
	// Sessions do not expire here; refreshing them has nothing to do.
	"refreshSessions": {run: func(*cmdCtx) (bson.D, error) { return nil, nil }, freeForm: true},
}

// transactionEnd checks what commitTransaction and abortTransaction share.
func (cx *cmdCtx) transactionEnd() (*transaction, error) {
	if cx.db != "admin" {
		return nil, errorf(codeUnauthorized, "%s may only be run against the admin database.", cx.name)
	}
	if cx.txn == nil {
		return nil, errorf(codeInvalidOptions, "%s must be run within a transaction", cx.name)
	}
	return cx.txn, nil
}

// commitTransaction commits; a commit of a committed transaction succeeds
// again, so that a driver can retry it.
func commitTransaction(cx *cmdCtx) (bson.D, error) {
	t, err := cx.transactionEnd()
	if err != nil {
		return nil, err
	}
	if t.state == txnActive {
		cx.s.commitLocked(t)
	}
	return nil, nil
}

func abortTransaction(cx *cmdCtx) (bson.D, error) {
	t, err := cx.transactionEnd()
	if err != nil {
		return nil, err
	}
	if t.state == txnCommitted {
		return nil, errorf(codeTransactionCommitted, "Transaction with { txnNumber: %d } has been committed.", t.number)
	}
	cx.s.abortLocked(t)
	return nil, nil
}

// endSessions forgets the sessions, aborting their transactions.
func endSessions(cx *cmdCtx) (bson.D, error) {
	ids, err := cx.arrayArg("endSessions")
	if err != nil {
		return nil, err
	}
	for _, v := range ids {
		d, ok := v.DocumentOK()
		if !ok {
			continue
		}
		key := string(d.Lookup("id").Data)
		if sess := cx.s.sessions[key]; sess != nil {
			if sess.txn != nil {
				cx.s.abortLocked(sess.txn)
			}
			delete(cx.s.sessions, key)
		}
	}
	return nil, nil
}

// killSessions aborts the named sessions' open transactions, releasing the
// documents they hold, as mongod's killSessions does for transactions not
// prepared (https://www.mongodb.com/docs/manual/reference/command/killSessions/;
// jstests/replsets/kill_sessions_with_prepared_transaction.js in
// mongodb/mongo). The sessions stay usable. Killing every session (an empty
// list) is refused: nothing here needs it.
func killSessions(cx *cmdCtx) (bson.D, error) {
	if cx.db != "admin" {
		return nil, errorf(codeUnauthorized, "killSessions may only be run against the admin database.")
	}
	ids, err := cx.arrayArg("killSessions")
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errorf(codeCommandNotSupported, "mongotest: killSessions of all sessions (an empty list) is not supported")
	}
	for _, v := range ids {
		d, ok := v.DocumentOK()
		if !ok {
			return nil, errorf(codeTypeMismatch, "killSessions: each element must be a document {id: <UUID>}, got %s", v)
		}
		if sess := cx.s.sessions[string(d.Lookup("id").Data)]; sess != nil && sess.txn != nil && sess.txn.state == txnActive {
			cx.s.abortLocked(sess.txn)
		}
	}
	return nil, nil
}

// transientTxnError is mongod's rule for the TransientTransactionError
// label (error_labels.cpp, isTransientTransactionError): the whole
// transaction may be retried.
func transientTxnError(code int32, commitOrAbort bool) bool {
	switch code {
	case codeWriteConflict, codeLockTimeout:
		return true
	case codeNoSuchTransaction:
		return true
	}
	return !commitOrAbort && retryableWriteCodes[code]
}
