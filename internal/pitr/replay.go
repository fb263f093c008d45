package pitr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// Options of a replay.
type Options struct {
	Source string
	// From: events after it are replayed; nil replays from the oldest stored event.
	From *bson.Timestamp
	// To: events up to and including it are replayed.
	To bson.Timestamp
	// Namespaces limits the replay to these "db.coll" (or "db" for a whole database);
	// none replays everything.
	Namespaces []string
	// DryRun reads the events and counts what would be applied, writing nothing.
	DryRun bool
	// AllowGap replays across the store's recorded gaps.
	AllowGap bool
	// AllowBeyondCheckpoint replays past the checkpoint: the store cannot show that it holds
	// every event after it.
	AllowBeyondCheckpoint bool
	// Progress receives a line every ProgressInterval while the replay runs.
	Progress         io.Writer
	ProgressInterval time.Duration
}

// Refusal is a replay refused for the safety of the result: it would cross a gap of the
// store, or reach past what the store can show it holds. Nothing was written.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

// Summary is what a replay did, or, for a dry run, would do.
type Summary struct {
	Source string
	DryRun bool
	From   *Point // nil: from the oldest stored event
	To     *Point
	// Events are the events read from the store in the range; Applied counts those
	// applied (or, in a dry run, to apply) by namespace and operation type.
	Events  int64
	Applied map[string]map[string]int64
	// NotSelected are events outside the --namespace selection.
	NotSelected int64
	// Skipped counts events left out, by reason.
	Skipped map[string]int64
	// Transactions and TransactionEvents count the source's transactions applied as
	// transactions on the target.
	Transactions, TransactionEvents int64
	// ClientSideUpdates are updates applied by read-modify-replace.
	ClientSideUpdates int64
	// LookedUpUpdates are updates applied as the document updateLookup read: events
	// that cannot say which dots of their paths are inside field names (MongoDB 6.0)
	// on documents with such names.
	LookedUpUpdates int64
	// Parked counts documents set aside over a unique key; Restored those brought back,
	// Superseded those that their own later event (an insert, replace or delete) replaced
	// or removed instead.
	Parked, Restored, Superseded int64
	Last                         *Point
	Elapsed                      time.Duration
	Warnings                     []string
}

func newSummary(o *Options) *Summary {
	s := &Summary{Source: o.Source, DryRun: o.DryRun, To: point(o.To), Applied: map[string]map[string]int64{}, Skipped: map[string]int64{}}
	if o.From != nil {
		s.From = point(*o.From)
	}
	return s
}

func (s *Summary) count(e *oplogstore.Event) {
	ns := e.Namespace()
	if s.Applied[ns] == nil {
		s.Applied[ns] = map[string]int64{}
	}
	s.Applied[ns][e.OpType]++
}

// Skip reasons.
const (
	skipGone       = "collection no longer on the target (it is dropped later in the source's history)"
	skipSharding   = "sharding change (shard the target yourself)"
	skipInvalid    = "invalidate (marks the end of a database-scoped stream; nothing to apply)"
	skipTimeseries = "time-series collection made or changed (change streams carry none of its data: restore it from the base backup)"
	warnStandalone = "the target is a standalone server: the source's transactions were applied as separate writes, not atomically"
)

// Replay applies the stored events of a source to target, in stream order, up to and
// including opts.To. Each step is idempotent, and events are applied so that a replay
// run again, or begun before the target's state, converges on the source's state at
// opts.To (docs/pitr.md). store is the oplog store's database; target may be nil for a
// dry run.
func Replay(ctx context.Context, store *mongo.Database, target *mongo.Client, opts Options) (*Summary, error) {
	start := time.Now()
	summary := newSummary(&opts)
	defer func() { summary.Elapsed = time.Since(start) }()
	if opts.From != nil && !opts.From.Before(opts.To) {
		return summary, fmt.Errorf("--from %s is not before --to %s", oplogstore.FormatTS(*opts.From), oplogstore.FormatTS(opts.To))
	}
	total, err := checkRange(ctx, store, &opts, summary)
	if err != nil {
		return summary, err
	}
	h, err := readHistory(ctx, store, opts.Source, opts.From, opts.To)
	if err != nil {
		return summary, err
	}
	var a *applier
	if opts.DryRun {
		err = h.unbuildable(0, opts.Namespaces)
	} else {
		a, err = newApplier(ctx, store, target, &opts, summary, h)
	}
	if err != nil {
		return summary, err
	}
	reader, err := oplogstore.ReadEvents(ctx, store, opts.Source, opts.From, opts.To)
	if err != nil {
		return summary, err
	}
	defer reader.Close(context.WithoutCancel(ctx))
	batches, stop := readAhead(ctx, reader)
	defer stop()
	prog := newProgress(&opts, total)
	var group []oplogstore.Event
	done := int64(0)
	for batch := range batches {
		for i := range batch.events {
			e := &batch.events[i]
			summary.Events++
			done += int64(e.Fragments)
			if !selected(e, selection(opts.Namespaces)) {
				summary.NotSelected++
				continue
			}
			if len(group) > 0 && !oplogstore.SameTransaction(&group[len(group)-1], e) {
				if err := applyGroup(ctx, a, group, summary); err != nil {
					return summary, err
				}
				group = group[:0]
			}
			group = append(group, *e)
			prog.update(done, e.TS)
		}
		if batch.err != nil {
			return summary, batch.err
		}
	}
	if err := applyGroup(ctx, a, group, summary); err != nil {
		return summary, err
	}
	if a != nil {
		if err := a.finish(ctx); err != nil {
			return summary, err
		}
	}
	return summary, nil
}

// checkRange refuses a range the store cannot vouch for, and counts its documents for
// the progress lines.
func checkRange(ctx context.Context, store *mongo.Database, opts *Options, summary *Summary) (int64, error) {
	checkpoint, err := oplogstore.ReadCheckpoint(ctx, store, opts.Source)
	if err != nil {
		return 0, err
	}
	switch {
	case !checkpoint.Known && !opts.AllowBeyondCheckpoint:
		return 0, &Refusal{fmt.Sprintf("source %s has no saved capture position: the store cannot show that it holds every event up to --to. Give --allow-beyond-checkpoint to replay what it holds anyway.", opts.Source)}
	case checkpoint.Known && checkpoint.TS.Before(opts.To) && !opts.AllowBeyondCheckpoint:
		return 0, &Refusal{fmt.Sprintf("--to %s is after the checkpoint %s: the store cannot show that it holds every event after the checkpoint. Give a --to at or before it (oplog_collector range shows it), wait for the capture to pass --to, or give --allow-beyond-checkpoint to replay what the store holds.", oplogstore.FormatTS(opts.To), oplogstore.FormatTS(checkpoint.TS))}
	case checkpoint.Known && checkpoint.TS.Before(opts.To):
		summary.Warnings = append(summary.Warnings, fmt.Sprintf("--to is after the checkpoint %s: events after it may be missing (--allow-beyond-checkpoint)", oplogstore.FormatTS(checkpoint.TS)))
	}
	oldest, hasOldest, err := oplogstore.Edge(ctx, store, opts.Source, false)
	if err != nil {
		return 0, err
	}
	lower := opts.From
	switch {
	case !hasOldest:
		summary.Warnings = append(summary.Warnings, fmt.Sprintf("the store holds no event of source %s", opts.Source))
	case oldest.After(opts.To):
		summary.Warnings = append(summary.Warnings, fmt.Sprintf("the oldest stored event, %s, is after --to: nothing to replay", oplogstore.FormatTS(oldest)))
	case lower == nil:
		// The replay starts with the oldest event, so a gap before it is no concern.
		before := justBefore(oldest)
		lower = &before
	}
	if hasOldest && opts.From != nil && opts.From.Before(oldest) {
		summary.Warnings = append(summary.Warnings, fmt.Sprintf("--from %s is before the oldest stored event %s: the store cannot show whether events before that existed (expired by retention, or before the capture began); the base backup must be from after any of them", oplogstore.FormatTS(*opts.From), oplogstore.FormatTS(oldest)))
	}
	gaps, err := oplogstore.ReadGaps(ctx, store, opts.Source)
	if err != nil {
		return 0, err
	}
	var crossed []string
	for _, g := range gaps {
		if gap := gapFrom(g); gap.overlaps(lower, opts.To) {
			crossed = append(crossed, gap.String())
		}
	}
	if len(crossed) > 0 {
		if !opts.AllowGap {
			return 0, &Refusal{fmt.Sprintf("the range crosses %d gap(s) of the store, where events may be missing:\n  %s\nReplay from a base backup taken after the gap, or give --allow-gap to replay across it anyway.", len(crossed), strings.Join(crossed, "\n  "))}
		}
		summary.Warnings = append(summary.Warnings, fmt.Sprintf("replayed across %d gap(s) of the store (--allow-gap): events may be missing:\n  %s", len(crossed), strings.Join(crossed, "\n  ")))
	}
	if opts.Progress == nil {
		return 0, nil // the count is for the progress lines' share done and time left
	}
	return oplogstore.CountEvents(ctx, store, opts.Source, opts.From, opts.To)
}

// justBefore is the timestamp right before ts.
func justBefore(ts bson.Timestamp) bson.Timestamp {
	switch {
	case ts.I > 0:
		return bson.Timestamp{T: ts.T, I: ts.I - 1}
	case ts.T > 0:
		return bson.Timestamp{T: ts.T - 1, I: ^uint32(0)}
	}
	return ts
}

// selection is the --namespace list: "db.coll", or "db" (or "db.*") for a database.
type selection []string

// has tells whether the namespace db.coll is selected (coll "" for a database: any of
// its selected namespaces).
func (s selection) has(db, coll string) bool {
	if len(s) == 0 {
		return true
	}
	for _, ns := range s {
		sdb, scoll, _ := strings.Cut(ns, ".")
		if sdb == db && (scoll == "" || scoll == "*" || coll == "" || scoll == coll) {
			return true
		}
	}
	return false
}

// whole tells whether all of database db is selected.
func (s selection) whole(db string) bool {
	if len(s) == 0 {
		return true
	}
	for _, ns := range s {
		sdb, scoll, _ := strings.Cut(ns, ".")
		if sdb == db && (scoll == "" || scoll == "*") {
			return true
		}
	}
	return false
}

// selected tells whether e is in the --namespace selection: its namespace, the target
// of a rename, or, for a database's event, any selected namespace of that database.
func selected(e *oplogstore.Event, namespaces selection) bool {
	if namespaces.has(e.DB, e.Coll) {
		return true
	}
	if e.OpType == "rename" {
		db, _ := e.To.Lookup("db").StringValueOK()
		coll, _ := e.To.Lookup("coll").StringValueOK()
		return namespaces.has(db, coll)
	}
	return false
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
	if err := reg.persist(ctx); err != nil {
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

func isDocumentEvent(op string) bool {
	return op == "insert" || op == "update" || op == "replace" || op == "delete"
}

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
