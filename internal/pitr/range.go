package pitr

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// Window is what the store holds of a source, and where it can recover to.
type Window struct {
	Source string `json:"source"`
	// StoreDocuments counts the source's documents in the store: one an event, more for
	// events stored in parts or fragments.
	StoreDocuments int64  `json:"store_documents"`
	Oldest         *Point `json:"oldest_event"`
	Newest         *Point `json:"newest_event"`
	// Checkpoint is the saved capture position: the store holds every event up to it.
	Checkpoint *Point `json:"checkpoint"`
	// CheckpointFromToken: the position's time was read from the resume token itself
	// (always, unless the token tells none).
	CheckpointFromToken bool  `json:"checkpoint_from_token,omitempty"`
	Gaps                []Gap `json:"gaps"`
	// Recoverable are the stretches with no gap inside: a base backup taken at a time
	// in one can be brought to any later time in the same one.
	Recoverable []Stretch `json:"recoverable"`
	Warnings    []string  `json:"warnings,omitempty"`
}

// Point is a cluster time, in both forms --from and --to take.
type Point struct {
	Timestamp string    `json:"timestamp"` // seconds,increment
	Time      time.Time `json:"time"`
	ts        bson.Timestamp
}

func point(ts bson.Timestamp) *Point {
	return &Point{Timestamp: fmt.Sprintf("%d,%d", ts.T, ts.I), Time: time.Unix(int64(ts.T), 0).UTC(), ts: ts}
}

func (p *Point) String() string {
	if p == nil {
		return "-"
	}
	return oplogstore.FormatTS(p.ts)
}

// Gap is a stretch of history the store may not hold: events after After and before
// Before can be missing. A nil After is "from the beginning", a nil Before "until now".
type Gap struct {
	Reason        string    `json:"reason"`
	After         *Point    `json:"after"`
	Before        *Point    `json:"before"`
	DetectedAt    time.Time `json:"detected_at"`
	Detail        string    `json:"detail,omitempty"`
	EventsDeleted int64     `json:"events_deleted,omitempty"`
}

func (g Gap) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: events after %s and before %s may be missing (detected %s)", g.Reason,
		orText(g.After, "the beginning"), orText(g.Before, "now"), g.DetectedAt.Format(time.RFC3339))
	if g.Detail != "" {
		fmt.Fprintf(&b, "; %s", g.Detail)
	}
	if g.EventsDeleted > 0 {
		fmt.Fprintf(&b, "; %d events deleted", g.EventsDeleted)
	}
	return b.String()
}

func orText(p *Point, none string) string {
	if p == nil {
		return none
	}
	return p.String()
}

// overlaps tells whether the gap may have lost events with after < ts <= upTo (after
// nil: no lower bound). It errs on the side of yes: a gap whose Before is the very
// next timestamp after the range's start can hold nothing, and still counts.
func (g Gap) overlaps(after *bson.Timestamp, upTo bson.Timestamp) bool {
	lower := after
	if g.After != nil && (lower == nil || g.After.ts.After(*lower)) {
		lower = &g.After.ts
	}
	if lower == nil {
		return true
	}
	return lower.Before(upTo) && (g.Before == nil || lower.Before(g.Before.ts))
}

// Stretch is a recoverable stretch of history.
type Stretch struct {
	From *Point `json:"from"`
	To   *Point `json:"to"`
}

// Range reads the window of source in the store db.
func Range(ctx context.Context, db *mongo.Database, source string) (*Window, error) {
	w := &Window{Source: source, Gaps: []Gap{}, Recoverable: []Stretch{}}
	var err error
	if w.StoreDocuments, err = oplogstore.CountEvents(ctx, db, source, nil, bson.Timestamp{T: ^uint32(0), I: ^uint32(0)}); err != nil {
		return nil, err
	}
	oldest, hasOldest, err := oplogstore.Edge(ctx, db, source, false)
	if err != nil {
		return nil, err
	}
	newest, _, err := oplogstore.Edge(ctx, db, source, true)
	if err != nil {
		return nil, err
	}
	checkpoint, err := oplogstore.ReadCheckpoint(ctx, db, source)
	if err != nil {
		return nil, err
	}
	gaps, err := oplogstore.ReadGaps(ctx, db, source)
	if err != nil {
		return nil, err
	}
	for _, g := range gaps {
		w.Gaps = append(w.Gaps, gapFrom(g))
	}
	if hasOldest {
		w.Oldest, w.Newest = point(oldest), point(newest)
		if oldest.IsZero() {
			w.Warnings = append(w.Warnings, "the oldest stored document has ts 0,0: a fragment of a split event stored without its event's time (a capture defect of collectors that resumed inside a split event); replay stops at it unless --from is given")
		}
	}
	if checkpoint.Known {
		w.Checkpoint, w.CheckpointFromToken = point(checkpoint.TS), checkpoint.FromToken
	} else {
		w.Warnings = append(w.Warnings, "no capture position is saved: the store cannot prove it holds any stretch completely")
	}
	if err := w.warnOfForeignWrites(ctx, db); err != nil {
		return nil, err
	}
	if hasOldest && checkpoint.Known && !checkpoint.TS.Before(oldest) {
		w.Recoverable = stretches(oldest, checkpoint.TS, w.Gaps)
	}
	return w, nil
}

// warnOfForeignWrites says what the store holds that no holder of the source's lease
// wrote: another collector's, or the old collector's (its manager restarts it beside
// this one). Their events are stored alongside, but the checkpoint may be theirs.
func (w *Window) warnOfForeignWrites(ctx context.Context, db *mongo.Database) error {
	found, positionForeign, err := oplogstore.ReadForeignWrites(ctx, db, w.Source)
	if err != nil {
		return err
	}
	if found != nil {
		w.Warnings = append(w.Warnings, fmt.Sprintf("a process that holds no lease wrote into this source's store: the collector found %d documents and %d position saves of its, the last at %s "+
			"(another collector, or the old Python tool restarted by its manager; see the runbook, OplogCaptureForeignWriter)",
			found.Documents, found.Positions, found.LastSeen.Time().UTC().Format(time.RFC3339)))
	}
	if positionForeign {
		w.Warnings = append(w.Warnings, "the saved position was written by a process that holds no lease, not by the collector that captured this source: the checkpoint is that process's")
	}
	return nil
}

func gapFrom(g oplogstore.Gap) Gap {
	out := Gap{Reason: g.Reason, DetectedAt: g.DetectedAt.Time().UTC(), Detail: g.Detail, EventsDeleted: g.EventsDeleted}
	if !g.After.IsZero() {
		out.After = point(g.After)
	}
	if !g.Before.IsZero() {
		out.Before = point(g.Before)
	}
	return out
}

// stretches cuts [from, to] at every gap inside it.
func stretches(from, to bson.Timestamp, gaps []Gap) []Stretch {
	type doubt struct{ after, before bson.Timestamp } // open interval; zero after: -inf, max before: +inf
	var doubts []doubt
	for _, g := range gaps {
		d := doubt{before: bson.Timestamp{T: ^uint32(0), I: ^uint32(0)}}
		if g.After != nil {
			d.after = g.After.ts
		}
		if g.Before != nil {
			d.before = g.Before.ts
		}
		doubts = append(doubts, d)
	}
	slices.SortFunc(doubts, func(a, b doubt) int { return a.after.Compare(b.after) })
	var out []Stretch
	start := from
	for _, d := range doubts {
		if !d.before.After(start) {
			continue // the gap ends before the stretch starts
		}
		if !d.after.Before(to) {
			break // this gap, and those after it, start after the checkpoint
		}
		if d.after.Compare(start) >= 0 {
			out = append(out, Stretch{From: point(start), To: point(d.after)})
		}
		start = d.before
		if start.After(to) {
			return out
		}
	}
	return append(out, Stretch{From: point(start), To: point(to)})
}

// WriteText writes the window for people.
func (w *Window) WriteText(out io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Source %s: %d documents in the store.\n", w.Source, w.StoreDocuments)
	fmt.Fprintf(&b, "  oldest event  %s\n", w.Oldest)
	fmt.Fprintf(&b, "  newest event  %s\n", w.Newest)
	fmt.Fprintf(&b, "  checkpoint    %s", w.Checkpoint)
	if w.Checkpoint != nil {
		b.WriteString("  (every event up to here is in the store")
		if !w.CheckpointFromToken {
			b.WriteString("; time from the token document's cluster_time, as the token tells none")
		}
		b.WriteString(")")
	}
	b.WriteString("\n")
	if len(w.Gaps) == 0 {
		b.WriteString("Gaps: none recorded.\n")
	} else {
		b.WriteString("Gaps:\n")
		for _, g := range w.Gaps {
			fmt.Fprintf(&b, "  %s\n", g)
		}
	}
	if len(w.Recoverable) == 0 {
		b.WriteString("Recoverable: nothing the store can prove complete.\n")
	} else {
		b.WriteString("Recoverable (replay a base backup taken at a time in a stretch to any later time in the same stretch):\n")
		for _, s := range w.Recoverable {
			fmt.Fprintf(&b, "  %s  to  %s\n", s.From, s.To)
		}
	}
	for _, warning := range w.Warnings {
		fmt.Fprintf(&b, "Warning: %s\n", warning)
	}
	_, err := io.WriteString(out, b.String())
	return err
}
