package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/go-kit/log/level"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// Fencing. A lease keeps two live collectors apart, but a holder that was paused (a
// long GC, SIGSTOP, a frozen VM) or cut off from the store for longer than lease_ttl
// does not know, when it comes back, that another collector took its source over, or
// that the source was reset; whatever it was about to write would land. So every write
// of a holder to the store runs in a transaction whose first statement writes the
// source's lease document, on the condition that its epoch is still the one the holder
// acquired: a takeover, a reset or a de-registration bumps that epoch first, and from
// then on the holder's transactions match nothing and abort (errFenced), or, caught in
// the middle, meet a write conflict and abort too. The check is a write, not a read, so
// that a bump between check and commit cannot slip through (write skew). It holds
// wherever the metadata database is, since the lease lives in the store.

// errFenced is a store write refused because the source's lease is no longer at the
// writer's epoch.
var errFenced = errors.New("the store refused the write: another collector, or a reset or de-registration, has taken this source's lease since")

// transaction is how every fenced write commits: acknowledged by a majority, as every
// store write is.
var transaction = options.Transaction().SetWriteConcern(writeconcern.Majority())

// fenced runs fn in a transaction on the store that first updates the source's lease
// document at epoch (counting the write, and with update's changes besides). It returns
// errFenced when the lease is at another epoch; fn's writes are then undone, and so is
// any collection they created. A transaction that fails is not retried here: the
// caller retries (and counts, and reports) as it does any store write.
func (s *sourceStore) fenced(ctx context.Context, epoch int64, update bson.D, fn func(context.Context) error) error {
	s.fencing.mu.Lock()
	defer s.fencing.mu.Unlock()
	sess, err := s.fencingSession(ctx, epoch)
	if err != nil {
		return err
	}
	if err := sess.StartTransaction(transaction); err != nil {
		return fmt.Errorf("starting a transaction on the store: %w", err)
	}
	ctx = mongo.NewSessionContext(ctx, sess)
	err = func() error {
		claim := append(bson.D{{Key: "$inc", Value: bson.D{{Key: oplogstore.LeaseFieldWrites, Value: 1}}}}, update...)
		res, err := s.leases.UpdateOne(ctx, bson.D{{Key: "_id", Value: s.name}, epochIs(epoch)}, claim)
		switch {
		case err != nil:
			return fmt.Errorf("checking the source's lease: %w", err)
		case res.MatchedCount == 0:
			return errFenced
		}
		return fn(ctx)
	}()
	if err == nil {
		if err = sess.CommitTransaction(ctx); err != nil {
			err = fmt.Errorf("committing to the store: %w", err)
		}
	}
	if err != nil {
		abortCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalReportTimeout)
		_ = sess.AbortTransaction(abortCtx)
		cancel()
	}
	return err
}

// fencing is the one session in which a source store runs its fenced transactions, one
// at a time (they all write the lease document, so they could not overlap anyway). Its
// id is in the lease: a holder killed in the middle of a transaction leaves it open,
// holding the lease document, and the server would keep every other write to that
// document waiting until it expires the transaction (transactionLifetimeLimitSeconds,
// 60 s by default, and then its periodic check); the collector that takes the lease over kills
// the session first (killHolderSession), which aborts the transaction at once.
type fencing struct {
	mu   sync.Mutex
	sess *mongo.Session
	// recorded is the epoch at which the lease names sess.
	recorded int64
}

// fencingSession returns the store's fencing session, started if need be, once the
// lease at epoch names it; errFenced when the lease is at another epoch.
func (s *sourceStore) fencingSession(ctx context.Context, epoch int64) (*mongo.Session, error) {
	if s.fencing.sess == nil {
		sess, err := s.client.StartSession()
		if err != nil {
			return nil, fmt.Errorf("starting a session on the store: %w", err)
		}
		s.fencing.sess, s.fencing.recorded = sess, 0
	}
	if s.fencing.recorded == epoch {
		return s.fencing.sess, nil
	}
	res, err := s.leases.UpdateOne(ctx, bson.D{{Key: "_id", Value: s.name}, epochIs(epoch)},
		bson.D{{Key: "$set", Value: bson.D{{Key: oplogstore.LeaseFieldSession, Value: s.fencing.sess.ID()}}}})
	switch {
	case err != nil:
		return nil, fmt.Errorf("recording the store session in the source's lease: %w", err)
	case res.MatchedCount == 0:
		return nil, errFenced
	}
	s.fencing.recorded = epoch
	return s.fencing.sess, nil
}

// close ends the store's fencing session.
func (s *sourceStore) close(ctx context.Context) {
	s.fencing.mu.Lock()
	defer s.fencing.mu.Unlock()
	if s.fencing.sess != nil {
		s.fencing.sess.EndSession(ctx)
		s.fencing.sess = nil
	}
}

// killHolderSession kills the session in which l's holder runs its fenced transactions,
// before this collector takes the lease over: a transaction the holder left open (it
// was killed, or its lease expired while it was cut off) is aborted, and writes
// nothing; it no longer keeps the lease document from this collector. The server
// kills only sessions of the same user: with another user, or where killSessions is
// not allowed, the takeover waits for the server to expire the transaction, as it
// would without this.
func (ls *leases) killHolderSession(ctx context.Context, l *lease) {
	if len(l.Session) == 0 || l.Holder.ID == ls.me.ID {
		return
	}
	err := ls.coll.Database().Client().Database("admin").RunCommand(ctx, bson.D{{Key: "killSessions", Value: bson.A{l.Session}}}).Err()
	if err != nil {
		level.Warn(ls.logger).Log("msg", "The previous holder's store session could not be killed; if it left a transaction open, taking the lease waits until the store expires it (transactionLifetimeLimitSeconds). Run a source's collectors as one store user, or grant them killAnySession",
			"holder", l.Holder.ID, "err", describe(err))
	}
}
