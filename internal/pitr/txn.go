package pitr

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// txnWriteError is a write the target refused inside a transaction: the server aborts
// the transaction, so the refusal is dealt with outside it and the transaction runs
// again.
type txnWriteError struct {
	index int
	err   error
}

func (e *txnWriteError) Error() string { return e.err.Error() }
func (e *txnWriteError) Unwrap() error { return e.err }

// transaction applies the document events of one source transaction in one transaction
// on the target (the driver's WithTransaction, which retries on transient errors).
// Collections are made, and parked documents brought back, before it starts: both are
// idempotent on their own.
func (a *applier) transaction(ctx context.Context, group []oplogstore.Event) error {
	if err := a.flush(ctx); err != nil {
		return err
	}
	colls := make([]*collection, len(group))
	plans := make([]writePlan, len(group))
	for i := range group {
		e := &group[i]
		c, err := a.reg.locate(ctx, e, createPlain)
		if err != nil {
			return err
		}
		if c == nil || c.view {
			continue
		}
		if id := docID(e); a.park.has(c, id) {
			if err := a.unpark(ctx, c, e, id); err != nil {
				return err
			}
		}
		if plans[i], err = planWrite(e, false); err != nil {
			return err
		}
		colls[i] = c
	}
	session, err := a.client.StartSession()
	if err != nil {
		return fmt.Errorf("starting a session on the target: %w", err)
	}
	defer session.EndSession(context.WithoutCancel(ctx))
	for attempt := 0; ; attempt++ {
		_, err := session.WithTransaction(ctx, func(tctx context.Context) (any, error) {
			for i := range group {
				if colls[i] == nil || (!plans[i].clientSide && len(plans[i].models) == 0) {
					continue
				}
				handle := a.client.Database(colls[i].db).Collection(colls[i].name)
				var err error
				if plans[i].clientSide {
					err = a.writeOnce(tctx, handle, &group[i], plans[i].ud, true)
				} else {
					_, err = handle.BulkWrite(tctx, plans[i].models, options.BulkWrite().SetOrdered(true))
				}
				if _, refused := writeErrorOf(err); refused {
					return nil, &txnWriteError{index: i, err: err}
				}
				if err != nil {
					return nil, err
				}
			}
			return nil, nil
		})
		var refused *txnWriteError
		switch {
		case err == nil:
			a.stats.Transactions++
			a.stats.TransactionEvents += int64(len(group))
			for i := range group {
				if colls[i] == nil {
					a.stats.Skipped[skipGone]++
					continue
				}
				a.stats.count(&group[i])
			}
			a.stats.Last = point(group[len(group)-1].TS)
			return nil
		case !errors.As(err, &refused) || attempt >= 16:
			return fmt.Errorf("the transaction at %s (%d operations): %w", FormatTS(group[0].TS), len(group), err)
		}
		// As writeAlone does, outside the transaction: a unique key held by another
		// document sets it aside; an update the document refuses goes read-modify-replace.
		e, c := &group[refused.index], colls[refused.index]
		we, _ := writeErrorOf(refused.err)
		switch {
		case we.Code == codeDuplicateKey:
			set, err := a.setAside(ctx, c, a.client.Database(c.db).Collection(c.name), we, docID(e))
			if err != nil {
				return err
			}
			if !set {
				return fmt.Errorf("the transaction at %s: %s event on %s: %w", FormatTS(e.TS), e.OpType, c.ns(), refused.err)
			}
		case e.OpType == "update" && !plans[refused.index].clientSide:
			plans[refused.index].clientSide = true
		default:
			return fmt.Errorf("the transaction at %s: %s event on %s: %w", FormatTS(e.TS), e.OpType, c.ns(), refused.err)
		}
	}
}
