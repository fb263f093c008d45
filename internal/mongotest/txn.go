package mongotest

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// transaction is a multi-document transaction of one session
// (https://www.mongodb.com/docs/manual/core/transactions/). Its writes go
// to the records at once, held by the transaction: others see what was
// committed before (record.before) and a write of theirs to a held record
// waits for the transaction to end, as mongod's write-conflict retry loop
// does. Its change events are kept until commit, which gives them one
// cluster time. Guarded by Server.mu.
type transaction struct {
	sess   *session
	number int64
	state  txnState
	// snapshot is the cluster time the transaction started at: a record
	// written by someone else after it is a write conflict, as in
	// WiredTiger's snapshot isolation.
	snapshot bson.Timestamp
	began    time.Time // for Options.TransactionLifetime
	touched  []heldRecord
	created  []*collection // collections created in the transaction
	events   []*event
}

type txnState int

const (
	txnActive txnState = iota
	txnCommitted
	txnAborted
)

// heldRecord is a record the transaction wrote, with its collection.
type heldRecord struct {
	c *collection
	r *record
}

// errBlocked is a write outside any transaction that met a record, or a
// collection, a transaction holds: the statement runs again once a
// transaction ends.
type errBlocked struct{}

func (errBlocked) Error() string { return "blocked by a transaction" }

func isBlocked(err error) bool {
	_, blocked := err.(errBlocked)
	return blocked
}

func writeConflict() error {
	return errorf(codeWriteConflict, "Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction.")
}

// claim checks that the command may write r, and makes a write in a
// transaction hold it. r may be another transaction's view copy (see
// collection.visible): its txn field says so.
func (cx *cmdCtx) claim(c *collection, r *record) error {
	if err := cx.cappedInTransaction(c); err != nil {
		return err
	}
	if r.txn != nil && r.txn != cx.txn {
		if cx.txn != nil {
			return writeConflict()
		}
		return errBlocked{}
	}
	if cx.txn == nil || r.txn == cx.txn {
		return nil
	}
	if tsLess(cx.txn.snapshot, r.lastWrite) {
		return writeConflict()
	}
	r.txn, r.before = cx.txn, r.doc
	cx.txn.touched = append(cx.txn.touched, heldRecord{c, r})
	return nil
}

// claimColl checks that the command may write into c: a collection a
// transaction created is its own until it commits.
func (cx *cmdCtx) claimColl(c *collection) error {
	if err := cx.cappedInTransaction(c); err != nil {
		return err
	}
	if c.createdBy == nil || c.createdBy == cx.txn {
		return nil
	}
	if cx.txn != nil {
		return writeConflict()
	}
	return errBlocked{}
}

// cappedInTransaction refuses a transaction's write to a capped collection,
// as MongoDB 5.0+ does
// (https://www.mongodb.com/docs/manual/core/transactions-operations/).
func (cx *cmdCtx) cappedInTransaction(c *collection) error {
	if cx.txn != nil && c.capped {
		return errorf(codeOperationNotSupportedInTransaction, "Collection '%s' is a capped collection. Writes in transactions are not allowed on capped collections.", c.ns())
	}
	return nil
}

// holdsAny reports whether an active transaction other than cx's has
// written c: DDL on it waits, as it would for the transaction's locks.
func (cx *cmdCtx) holdsAny(c *collection) bool {
	if c.createdBy != nil && c.createdBy != cx.txn {
		return true
	}
	for _, r := range c.records {
		if r.txn != nil && r.txn != cx.txn {
			return true
		}
	}
	return false
}

// commitLocked makes the transaction's writes everyone's and records its
// events, all at one new cluster time, in statement order, each with its
// index in the transaction (mongod's txnOpIndex) and the session.
func (s *Server) commitLocked(t *transaction) {
	t.state = txnCommitted
	if len(t.events) == 0 && len(t.touched) == 0 && len(t.created) == 0 {
		return // a read-only transaction writes no oplog entry
	}
	ts := s.tickLocked()
	wall := time.Now()
	number := t.number
	for i, e := range t.events {
		e.ts, e.wall, e.opIndex = ts, wall, uint32(i)
		e.lsid, e.txnNumber = t.sess.eventLsid, &number
		s.log.append(e)
	}
	for _, h := range t.touched {
		r := h.r
		if r.pendingDelete {
			h.c.remove(r)
		}
		r.txn, r.before, r.pendingDelete, r.lastWrite = nil, nil, false, ts
	}
	for _, c := range t.created {
		c.createdBy = nil
	}
	t.touched, t.created, t.events = nil, nil, nil
}

// abortLocked undoes the transaction's writes, newest first, and wakes
// the writes that waited for it.
func (s *Server) abortLocked(t *transaction) {
	if t.state != txnActive {
		return
	}
	t.state = txnAborted
	for i := len(t.touched) - 1; i >= 0; i-- {
		c, r := t.touched[i].c, t.touched[i].r
		if r.before == nil { // inserted by the transaction
			c.remove(r)
		} else {
			r.doc = r.before
			c.ids[idIndexKey(r.doc.Lookup("_id"))] = r // a deleted record's key may have been reused
		}
		r.txn, r.before, r.pendingDelete = nil, nil, false
	}
	for _, c := range t.created {
		if d := s.dbs[c.db]; d != nil && d.colls[c.name] == c {
			delete(d.colls, c.name)
		}
	}
	t.touched, t.created, t.events = nil, nil, nil
	s.notifyLocked()
}

// expireTransactions aborts the transactions open for longer than
// Options.TransactionLifetime, as mongod's periodic job does: their next
// statement, or commit, fails with 251 NoSuchTransaction.
func (s *Server) expireTransactions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := time.Now().Add(-s.opts.TransactionLifetime)
	for _, sess := range s.sessions {
		if t := sess.txn; t != nil && t.state == txnActive && t.began.Before(cutoff) {
			s.abortLocked(t)
		}
	}
}
