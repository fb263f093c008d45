package pitr

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/mongo"

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
// Collections are made, and parked documents brought back, before it starts
// (planTransaction): both are idempotent on their own.
func (a *applier) transaction(ctx context.Context, group []oplogstore.Event) error {
	if err := a.flush(ctx); err != nil {
		return err
	}
	colls, plans, err := a.planTransaction(ctx, group)
	if err != nil {
		return err
	}
	session, err := a.client.StartSession()
	if err != nil {
		return fmt.Errorf("starting a session on the target: %w", err)
	}
	defer session.EndSession(context.WithoutCancel(ctx))
	for attempt := 0; ; attempt++ {
		_, err := session.WithTransaction(ctx, func(tctx context.Context) (any, error) {
			return nil, a.transactionWrites(tctx, group, colls, plans)
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
		case !errors.As(err, &refused) || attempt >= maxRetriesAfterRefusal:
			return fmt.Errorf("the transaction at %s (%d operations): %w", oplogstore.FormatTS(group[0].TS), len(group), err)
		}
		// Outside the transaction, as writeAlone does: the refusal resolved, the
		// transaction runs again.
		e, c := &group[refused.index], colls[refused.index]
		we, _ := writeErrorOf(refused.err)
		retry, err := a.resolveRefusal(ctx, c, e, we, &plans[refused.index].clientSide)
		if err != nil {
			return err
		}
		if !retry {
			return fmt.Errorf("the transaction at %s: %s event on %s: %w", oplogstore.FormatTS(e.TS), e.OpType, c.ns(), refused.err)
		}
	}
}

// planTransaction finds the target collection of each event of group, making those the
// source's server made, brings back the documents it writes that are set aside, and
// plans its writes. An event whose collection is gone from the target has no
// collection (nil) and no writes.
func (a *applier) planTransaction(ctx context.Context, group []oplogstore.Event) ([]*collection, []writePlan, error) {
	colls := make([]*collection, len(group))
	plans := make([]writePlan, len(group))
	for i := range group {
		e := &group[i]
		c, err := a.reg.locate(ctx, e, a.implicitCreation(e))
		if err != nil {
			return nil, nil, err
		}
		if c == nil || c.view {
			if err := a.gone(e); err != nil {
				return nil, nil, err
			}
			continue
		}
		if id := docID(e); a.park.has(c, id) {
			if err := a.unpark(ctx, c, e, id); err != nil {
				return nil, nil, err
			}
		}
		if plans[i], err = planWrite(e, false); err != nil {
			return nil, nil, err
		}
		if plans[i].lookedUp {
			a.stats.LookedUpUpdates++
		}
		colls[i] = c
	}
	return colls, plans, nil
}

// transactionWrites writes a transaction's events inside it: consecutive writes to one
// collection in one ordered bulk write (a batched insert of MongoDB 8.0 is hundreds of
// events of one transaction), a read-modify-replace alone. A write the target refuses
// ends the transaction with a txnWriteError naming its event.
func (a *applier) transactionWrites(ctx context.Context, group []oplogstore.Event, colls []*collection, plans []writePlan) error {
	for i := 0; i < len(group); {
		if colls[i] == nil || (!plans[i].clientSide && len(plans[i].models) == 0) {
			i++
			continue
		}
		handle := a.client.Database(colls[i].db).Collection(colls[i].name)
		if plans[i].clientSide {
			if err := a.writeOnce(ctx, handle, &group[i], plans[i].ud, true); err != nil {
				return refusedIn(err, i)
			}
			i++
			continue
		}
		var models []mongo.WriteModel
		var owners []int
		j := i
		for ; j < len(group) && colls[j] == colls[i] && !plans[j].clientSide; j++ {
			for _, m := range plans[j].models {
				models = append(models, m)
				owners = append(owners, j)
			}
		}
		if len(models) > 0 {
			_, err := handle.BulkWrite(ctx, models, writeOptions())
			var bwe mongo.BulkWriteException
			if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 && bwe.WriteConcernError == nil {
				return &txnWriteError{index: owners[bwe.WriteErrors[0].Index], err: err}
			}
			if err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

// refusedIn marks a write error of event i as the target's refusal.
func refusedIn(err error, i int) error {
	if _, refused := writeErrorOf(err); refused {
		return &txnWriteError{index: i, err: err}
	}
	return err
}
