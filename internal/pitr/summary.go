package pitr

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

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
