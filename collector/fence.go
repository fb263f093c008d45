package collector

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

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
	sess, err := s.client.StartSession()
	if err != nil {
		return fmt.Errorf("starting a session on the store: %w", err)
	}
	defer sess.EndSession(context.WithoutCancel(ctx))
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
