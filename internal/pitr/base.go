package pitr

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// resolveBase finds, before anything is written, which source collection each of the
// target's collections holds where its name held several in the range (history): the
// target is the source's state at the base's time b, so its names are the source's names
// at b. Of the moments of the range, those whose names (of the databases the target has)
// are the target's are where b can be; where a name's holder is the same at all of
// them, that is the one. Where it is not, one case is still exact: the earliest holder
// is dropped within the range and every later one is made within it, so
// that applying the events from the earliest one rebuilds the later ones whole ($out,
// drop and create again). Else it refuses. Events without collection UUIDs (the old
// collector's) go by name, which is exact only when the earliest holder is the one.
func (r *registry) resolveBase(h *history, selected selection) error {
	located := map[collID]string{} // source collections the target holds, where
	for source, target := range r.mapping {
		if c := r.byUUID[target]; c != nil {
			located[uuidID([]byte(source))] = c.ns()
		}
	}
	type open struct {
		c     *collection
		cands []collID
	}
	var unresolved []open
	for _, ns := range slices.Sorted(maps.Keys(r.byNS)) {
		c := r.byNS[ns]
		db, coll, _ := strings.Cut(ns, ".")
		if c.view || r.tracked[string(c.uuid)] || len(h.held[ns]) == 0 || !selected.has(db, coll) {
			continue
		}
		var cands []collID
		for _, stay := range h.held[ns] {
			if where := located[stay.id]; (where == "" || where == ns) && !slices.Contains(cands, stay.id) {
				cands = append(cands, stay.id)
			}
		}
		if len(cands) == 1 && !h.uncertain[ns] {
			if err := r.take(c, cands[0], h, located); err != nil {
				return err
			}
			continue
		}
		if len(cands) > 0 {
			unresolved = append(unresolved, open{c: c, cands: cands})
		}
	}
	if len(unresolved) == 0 {
		return nil
	}
	moments := r.matchingMoments(h, selected)
	if len(moments) == 0 {
		return &Refusal{r.noMoment(h, selected)}
	}
	for _, u := range unresolved {
		ns := u.c.ns()
		var holders []collID
		for _, id := range h.holdersAt(ns, moments) {
			if where := located[id]; where == "" || where == ns {
				holders = append(holders, id) // else not then: that one is elsewhere on the target
			}
		}
		if len(holders) == 0 {
			return &Refusal{r.noMoment(h, selected)}
		}
		chosen := holders[0]
		if len(holders) > 1 && !earliestRebuildsTheRest(h, holders) {
			return &Refusal{ambiguousBase(h, ns, slices.ContainsFunc(u.cands, func(id collID) bool { return id.uuid() == nil }))}
		}
		if chosen == "" {
			continue // the name held nothing at b: the target's is not the source's
		}
		if chosen.uuid() == nil && chosen != h.held[ns][0].id {
			// By name, the target's collection takes the events of the first collection
			// that held the name in the range, which is not the one it holds.
			return &Refusal{ambiguousBase(h, ns, true)}
		}
		if err := r.take(u.c, chosen, h, located); err != nil {
			return err
		}
	}
	return nil
}

// take maps target collection c to source collection id (a UUID; one without goes by
// name anyway).
func (r *registry) take(c *collection, id collID, h *history, located map[collID]string) error {
	if where := located[id]; where != "" && where != c.ns() {
		return &Refusal{fmt.Sprintf("the target's %s and %s could both be the same collection of the source (%s); replay cannot tell which one holds it. Restore the base with mongorestore --preserveUUID (or from a file-system snapshot), or use a base backup taken after %s.",
			c.ns(), where, h.describe(c.ns()), oplogstore.FormatTS(h.lastChange(c.ns())))}
	}
	located[id] = c.ns()
	if uuid := id.uuid(); uuid != nil {
		r.claim(uuid, c)
	}
	return nil
}

// matchingMoments are the steps of the range at which the source's names, among those
// the range's collection events change, are the target's: of the databases the target
// has, selected, and whose holders the events tell for certain.
func (r *registry) matchingMoments(h *history, selected selection) []int {
	steps := len(h.events) + 1
	// mismatches[k] - mismatches[k-1]: how many names start or stop differing at step k.
	mismatches := make([]int, steps+1)
	differ := func(from, to int) {
		if to < 0 {
			to = steps
		}
		if from < to {
			mismatches[from]++
			mismatches[to]--
		}
	}
	for _, ns := range r.tellingNames(h, selected) {
		stays := slices.SortedFunc(slices.Values(h.held[ns]), func(a, b residence) int { return a.from - b.from })
		if r.byNS[ns] == nil {
			for _, stay := range stays {
				differ(stay.from, stay.to) // the source had it, the target has not
			}
			continue
		}
		held := 0 // differs where nothing held it
		for _, stay := range stays {
			differ(held, stay.from)
			if stay.to < 0 {
				held = steps
				break
			}
			held = max(held, stay.to)
		}
		differ(held, steps)
	}
	var moments []int
	for step, n := 0, 0; step < steps; step++ {
		if n += mismatches[step]; n == 0 {
			moments = append(moments, step)
		}
	}
	return moments
}

func (r *registry) tellingNames(h *history, selected selection) []string {
	dbs := map[string]bool{}
	for _, c := range r.byNS {
		dbs[c.db] = true
	}
	var names []string
	for _, ns := range slices.Sorted(maps.Keys(h.held)) {
		db, coll, _ := strings.Cut(ns, ".")
		if dbs[db] && !h.uncertain[ns] && selected.has(db, coll) {
			names = append(names, ns)
		}
	}
	return names
}

// earliestRebuildsTheRest tells whether the first of holders, the collections that held
// ns at the moments the target can be at, is dropped within the range, and every other
// one is made within the range: the events then rebuild whichever the target holds (the
// first one's events go where it is mapped, and leave with it; a rename of it over a
// collection the target holds for another stops the replay when that one's events come).
func earliestRebuildsTheRest(h *history, holders []collID) bool {
	if holders[0] == "" || h.dropped[holders[0]] == "" {
		return false
	}
	for _, id := range holders[1:] {
		if id != "" && !h.created[id] {
			return false
		}
	}
	return true
}

func (r *registry) noMoment(h *history, selected selection) string {
	var diffs []string
	for _, ns := range r.tellingNames(h, selected) {
		switch had, has := h.holderAt(ns, 0) != "", r.byNS[ns] != nil; {
		case had && !has:
			diffs = append(diffs, "the source had "+ns+" and the target has not")
		case has && !had:
			diffs = append(diffs, "the target has "+ns+", which the source had not")
		}
	}
	if len(diffs) > 3 {
		diffs = append(diffs[:3], fmt.Sprintf("%d more", len(diffs)-3))
	}
	return fmt.Sprintf("the target's collections are the source's at no moment between --from and --to (at --from: %s), so replay cannot tell which source collection each one holds. Is --from after the base backup's time, or only part of the backup restored (then select that part with --namespace)?",
		strings.Join(diffs, "; "))
}

// ambiguousBase is the refusal for a name whose holder at the base's time replay cannot
// tell.
func ambiguousBase(h *history, ns string, byName bool) string {
	var how []string
	if !byName {
		how = append(how, "restore the base with mongorestore --preserveUUID (or from a file-system snapshot): replay then finds each collection by its UUID")
	}
	how = append(how, "start the replay at the base backup's exact time (--from), if --from is before it", "use a base backup taken after "+oplogstore.FormatTS(h.lastChange(ns)))
	what := "it has not the source's collection UUIDs (a plain mongorestore)"
	if byName {
		what = "the store's events have no collection UUIDs (the old collector's), so replay goes by name"
	}
	return fmt.Sprintf("the target's %s may hold either of several collections of the source: between --from and --to, %s. The target's names match the source's at moments when different ones held it, and %s: replay cannot tell which one it holds. To replay exactly, %s.",
		ns, h.describe(ns), what, strings.Join(how, "; or "))
}
