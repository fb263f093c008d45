package pitr

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// applier applies events to the target, each as its kind asks: a document event through
// the batch of its collection (write, batch.go), a collection or database event alone
// once the batch before it is written (ddl, ddl.go and indexes.go), the writes of one
// source transaction in one transaction (txn.go).
type applier struct {
	client *mongo.Client
	reg    *registry
	park   *parking
	stats  *Summary
	batch  batch
	// command is the insert command being built, reused from batch to batch.
	command []byte
	// deferred are index builds the target refused during the replay, built again at the end.
	deferred []deferredIndex
	// transactions: the target runs them (a replica set or a sharded cluster).
	transactions bool
	// upsertsLeft counts down the events that apply inserts as upserts (overlapSpan).
	upsertsLeft int
	// selected are the namespaces of --namespace: a dropDatabase drops no other.
	selected selection
	// hist is what the range's collection events say (history).
	hist *history
	// capped are the range's deletes of capped collections (capped.go).
	capped cappedDeletes
}

// newApplier reads what the target holds and, before anything is written, finds which
// source collection each of its collections holds, or refuses.
func newApplier(ctx context.Context, store *mongo.Database, target *mongo.Client, opts *Options, summary *Summary, h *history) (*applier, error) {
	if target == nil {
		return nil, errors.New("no target to replay onto")
	}
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
	}
	if err := target.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return nil, fmt.Errorf("asking the target what it is (hello): %w", err)
	}
	reg, err := mapCollections(ctx, store, target, opts, h)
	if err != nil {
		return nil, err
	}
	park, err := loadParking(ctx, target)
	if err != nil {
		return nil, err
	}
	capped, err := readCappedDeletes(ctx, store, opts, h, reg)
	if err != nil {
		return nil, err
	}
	a := &applier{client: target, reg: reg, park: park, stats: summary, selected: opts.Namespaces, hist: h, capped: capped,
		transactions: hello.SetName != "" || hello.Msg == "isdbgrid"}
	if !a.transactions {
		summary.Warnings = append(summary.Warnings, warnStandalone)
	}
	return a, nil
}

// warnStandalone is the summary's warning for a target that runs no transactions.
const warnStandalone = "the target is a standalone server: the source's transactions were applied as separate writes, not atomically"

// mapCollections reads the target's collections and finds which source collection each
// one holds: by the UUIDs the range's events carry (claimSnapshotCollections), else by
// the names the range's history gives them at the base's time (resolveBase). It refuses
// a range the events cannot rebuild from the earliest moment the target can be at
// (unbuildable), and records the mapping on the target for the runs that follow.
func mapCollections(ctx context.Context, store *mongo.Database, target *mongo.Client, opts *Options, h *history) (*registry, error) {
	reg, err := loadRegistry(ctx, target)
	if err != nil {
		return nil, err
	}
	if _, err := reg.claimSnapshotCollections(ctx, store, opts.Source, opts.From, opts.To); err != nil {
		return nil, err
	}
	if len(reg.untracked()) > 0 {
		if err := reg.resolveBase(h, opts.Namespaces); err != nil {
			return nil, err
		}
	}
	earliest := 0 // the first step of the range the target can be at
	if len(reg.byNS) > 0 {
		if moments := reg.matchingMoments(h, opts.Namespaces); len(moments) > 0 {
			earliest = moments[0]
		}
	}
	if err := h.unbuildable(earliest, opts.Namespaces); err != nil {
		return nil, err
	}
	return reg, reg.persist(ctx)
}

// applyGroup applies one event, or the events of one transaction.
func applyGroup(ctx context.Context, a *applier, group []oplogstore.Event, summary *Summary) error {
	if len(group) == 0 {
		return nil
	}
	if a == nil { // dry run
		for i := range group {
			if err := checkEvent(&group[i]); err != nil {
				return err
			}
			if skip := skipReason(&group[i]); skip != "" {
				summary.Skipped[skip]++
				continue
			}
			summary.count(&group[i])
			summary.Last = point(group[i].TS)
		}
		return nil
	}
	if len(group) == 1 || !a.transactions {
		for i := range group {
			if err := a.apply(ctx, &group[i]); err != nil {
				return err
			}
		}
		return nil
	}
	// A transaction can create collections and indexes (implicitly, for its first
	// write to a new collection): those go first, on their own, as each is
	// idempotent and none depends on the transaction's writes; the writes then go in
	// one transaction.
	var writes []oplogstore.Event
	for i := range group {
		if isDocumentEvent(group[i].OpType) {
			writes = append(writes, group[i])
		} else if err := a.apply(ctx, &group[i]); err != nil {
			return err
		}
	}
	switch len(writes) {
	case 0:
		return nil
	case 1:
		return a.apply(ctx, &writes[0])
	}
	return a.transaction(ctx, writes)
}

// apply applies one event.
func (a *applier) apply(ctx context.Context, e *oplogstore.Event) error {
	if skip := skipReason(e); skip != "" {
		a.stats.Skipped[skip]++
		return nil
	}
	if err := checkEvent(e); err != nil {
		return err
	}
	if isDocumentEvent(e.OpType) {
		if a.capped.deletedLater(e) {
			a.stats.Skipped[skipCappedDeletedLater]++
			return nil
		}
		c, err := a.reg.locate(ctx, e, a.implicitCreation(e))
		if err != nil {
			return err
		}
		if c == nil || c.view {
			if err := a.gone(e); err != nil {
				return err
			}
			a.stats.Skipped[skipGone]++
			return nil
		}
		if err := a.write(ctx, c, e); err != nil {
			return err
		}
	} else if err := a.ddl(ctx, e); err != nil {
		return err
	}
	a.stats.count(e)
	a.stats.Last = point(e.TS)
	return nil
}

// Why events are not applied: the summary counts them by these.
const (
	skipGone       = "collection no longer on the target (it is dropped later in the source's history)"
	skipSharding   = "sharding change (shard the target yourself)"
	skipInvalid    = "invalidate (marks the end of a database-scoped stream; nothing to apply)"
	skipTimeseries = "time-series collection made or changed (change streams carry none of its data: restore it from the base backup)"
)

// skipReason says why an event is not applied, or "".
func skipReason(e *oplogstore.Event) string {
	switch {
	case shardingEvents[e.OpType]:
		return skipSharding
	case e.OpType == "invalidate":
		return skipInvalid
	case (e.OpType == "create" || e.OpType == "modify") && isTimeseries(e.OperationDescription):
		return skipTimeseries
	}
	return ""
}

// isTimeseries tells whether a create or modify event's operationDescription is a
// time-series collection's: servers that report one describe the view over its buckets
// collection (viewOn system.buckets.<name>, a $_internalUnpackBucket pipeline:
// mongodb/mongo jstests/change_streams/ddl_view_events.js), or its timeseries options.
func isTimeseries(description bson.Raw) bool {
	viewOn, _ := description.Lookup("viewOn").StringValueOK()
	_, hasOptions := description.Lookup("timeseries").DocumentOK()
	return strings.HasPrefix(viewOn, "system.buckets.") || hasOptions
}

// checkEvent refuses an event the store holds incompletely.
func checkEvent(e *oplogstore.Event) error {
	if e.OpType == "" {
		return fmt.Errorf("the store document at %s (token %s) has no op_type: a fragment of a split event stored without its event (a capture defect); replay cannot rebuild that event", oplogstore.FormatTS(e.TS), e.Token)
	}
	return nil
}

func isDocumentEvent(op string) bool {
	return op == "insert" || op == "update" || op == "replace" || op == "delete"
}

// implicitCreation is how a write or an index build of e makes its collection when the
// target has none, as the source's server did: only where the range has the collection
// made (its create event went first), or dropped later (the target is ahead of e, and
// the events up to the drop must still apply, a rename's over another collection among
// them). Else the collection existed before the range, and the target should have it:
// gone says what is wrong. Events without a collection UUID (the old collector's) make it.
func (a *applier) implicitCreation(e *oplogstore.Event) creator {
	if e.CollectionUUID == nil {
		return createPlain
	}
	if id := uuidID(e.CollectionUUID); a.hist.created[id] || a.hist.droppedAfter(id, e.TS) {
		return createPlain
	}
	return nil
}

// gone checks that the collection of e, which the target does not hold, is dropped
// later in the range: the target is then ahead of e, and e has nothing to change.
// Otherwise the target lacks a collection the source still had at --to, and the replay
// cannot make it exact. Events without a collection UUID (the old collector's) are not
// checked.
func (a *applier) gone(e *oplogstore.Event) error {
	if e.CollectionUUID == nil || a.hist.droppedAfter(uuidID(e.CollectionUUID), e.TS) {
		return nil
	}
	return fmt.Errorf("%s event at %s on %s: the target holds no collection for it, and the source kept it after the event: the target is not the source's state at a time between --from and --to (is only part of the base backup restored, or a collection of it dropped?). Restore the whole base backup, or select what it holds with --namespace",
		e.OpType, oplogstore.FormatTS(e.TS), e.Namespace())
}

// finish writes what is pending and brings back what was set aside.
func (a *applier) finish(ctx context.Context) error {
	if err := a.flush(ctx); err != nil {
		return err
	}
	if err := a.buildDeferred(ctx); err != nil {
		return err
	}
	left, err := a.restoreAll(ctx)
	if err != nil {
		return err
	}
	if left > 0 {
		return fmt.Errorf("%d document(s) set aside over a unique key could not come back (their keys are held): they are in %s.parked; the target has not converged on the source's state at --to", left, ReplayDatabase)
	}
	return nil
}
