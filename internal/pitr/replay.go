package pitr

import (
	"context"
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

// Replay applies the stored events of a source to target, in stream order, up to and
// including opts.To. Each step is idempotent, and events are applied so that a replay
// run again, or begun before the target's state, converges on the source's state at
// opts.To (docs/pitr.md). store is the oplog store's database; target may be nil for a
// dry run.
//
// Before anything is written, it refuses a range the store cannot vouch for
// (checkRange), reads the range's collection events (history) and finds which source
// collection each of the target's collections holds (newApplier); then it applies the
// events (applyEvents) and what was left for the end (finish).
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
	if err := applyEvents(ctx, store, a, &opts, summary, total); err != nil {
		return summary, err
	}
	if a != nil {
		if err := a.finish(ctx); err != nil {
			return summary, err
		}
	}
	return summary, nil
}

// applyEvents reads the range's events, a batch ahead, and applies the selected ones
// with a, one event or one transaction at a time (a nil a: a dry run, which counts
// them). total, the store documents in the range, is for the progress lines.
func applyEvents(ctx context.Context, store *mongo.Database, a *applier, opts *Options, summary *Summary, total int64) error {
	reader, err := oplogstore.ReadEvents(ctx, store, opts.Source, opts.From, opts.To)
	if err != nil {
		return err
	}
	defer reader.Close(context.WithoutCancel(ctx))
	batches, stop := readAhead(ctx, reader)
	defer stop()
	prog := newProgress(opts, total)
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
					return err
				}
				group = group[:0]
			}
			group = append(group, *e)
			prog.update(done, e.TS)
		}
		if batch.err != nil {
			return batch.err
		}
	}
	return applyGroup(ctx, a, group, summary)
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
