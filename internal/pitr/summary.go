package pitr

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

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

// ByOperation totals Applied over the namespaces.
func (s *Summary) ByOperation() map[string]int64 {
	out := map[string]int64{}
	for _, ops := range s.Applied {
		for op, n := range ops {
			out[op] += n
		}
	}
	return out
}

// AppliedEvents is how many events were applied (or, in a dry run, would be).
func (s *Summary) AppliedEvents() int64 {
	var n int64
	for _, c := range s.ByOperation() {
		n += c
	}
	return n
}

// WriteText writes the summary for people: for a dry run, a table of what would be
// applied per namespace and operation.
func (s *Summary) WriteText(out io.Writer) error {
	var b strings.Builder
	from := "the oldest stored event"
	if s.From != nil {
		from = "after " + s.From.String()
	}
	applied := s.AppliedEvents()
	if s.DryRun {
		fmt.Fprintf(&b, "Dry run of source %s, from %s up to %s: %d events to apply, of %d read; nothing was written.\n", s.Source, from, s.To, applied, s.Events)
	} else {
		rate := ""
		if secs := s.Elapsed.Seconds(); secs > 0 {
			rate = fmt.Sprintf(", %.0f events/s", float64(s.Events)/secs)
		}
		fmt.Fprintf(&b, "Replayed source %s, from %s up to %s: %d events applied, of %d read, in %s%s.\n", s.Source, from, s.To, applied, s.Events, s.Elapsed.Round(1e6), rate)
		if s.Last != nil {
			fmt.Fprintf(&b, "Last event applied: %s.\n", s.Last)
		}
	}
	ops := s.ByOperation()
	if len(ops) > 0 {
		parts := make([]string, 0, len(ops))
		for _, op := range slices.Sorted(maps.Keys(ops)) {
			parts = append(parts, fmt.Sprintf("%s %d", op, ops[op]))
		}
		fmt.Fprintf(&b, "By operation: %s.\n", strings.Join(parts, ", "))
	}
	if s.Transactions > 0 {
		fmt.Fprintf(&b, "Transactions: %d (%d operations), each applied as one transaction on the target.\n", s.Transactions, s.TransactionEvents)
	}
	if s.ClientSideUpdates > 0 {
		fmt.Fprintf(&b, "Updates applied by read-modify-replace (paths update operators cannot address, or that the target's document refused): %d.\n", s.ClientSideUpdates)
	}
	if s.LookedUpUpdates > 0 {
		fmt.Fprintf(&b, "Warning: %d updates (MongoDB 6.0 events with dots in their paths, on documents with dots in field names) were applied as the document updateLookup read, a little after each event: a --to between an event and its lookup gets that later version of the document.\n", s.LookedUpUpdates)
	}
	if s.Parked > 0 || s.Restored > 0 || s.Superseded > 0 {
		fmt.Fprintf(&b, "Documents set aside over a unique key: %d; brought back: %d; replaced or deleted by their own later events: %d.\n", s.Parked, s.Restored, s.Superseded)
	}
	if s.NotSelected > 0 {
		fmt.Fprintf(&b, "Not selected by --namespace: %d events.\n", s.NotSelected)
	}
	for _, reason := range slices.Sorted(maps.Keys(s.Skipped)) {
		fmt.Fprintf(&b, "Skipped: %d events: %s.\n", s.Skipped[reason], reason)
	}
	for _, w := range s.Warnings {
		fmt.Fprintf(&b, "Warning: %s\n", w)
	}
	if _, err := io.WriteString(out, b.String()); err != nil {
		return err
	}
	if !s.DryRun || len(s.Applied) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tOPERATION\tEVENTS\t")
	for _, ns := range slices.Sorted(maps.Keys(s.Applied)) {
		for _, op := range slices.Sorted(maps.Keys(s.Applied[ns])) {
			fmt.Fprintf(tw, "%s\t%s\t%d\t\n", ns, op, s.Applied[ns][op])
		}
	}
	return tw.Flush()
}
