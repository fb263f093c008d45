package exporter

// The verifier's series, from one read of its metadata database and of its API.

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// emitMetadata sends the series read from the metadata database, with what the API (nil
// when not read) adds to them.
func (t *verifierTarget) emitMetadata(out emitter, m *verifierMetadata, api *verifierProgress) {
	phase := m.phase(api)
	out.stateSet(verifierPhase, verifierPhases, &phase)
	if m.database == "" {
		return
	}
	out.gauge(verifierTotalsRead, &m.totalsRead)
	out.gauge(verifierMetadataVersion, m.metadataVersion)
	if m.hasGenerationDoc {
		generation := float64(m.generation)
		out.gauge(verifierGeneration, &generation)
	}
	// Until the running totals are read, only the unfinished tasks and the primary task
	// are known.
	known := func(pair taskKey) bool { return m.complete || pair.unfinished() || pair.Type == taskPrimary }
	for _, pair := range verifierTaskPairs {
		if known(pair) {
			count := m.tasks[pair].count
			out.gauge(verifierTasks, &count, pair.Type, pair.Status)
		}
	}
	for _, pair := range slices.SortedFunc(maps.Keys(m.tasks), compareTaskKeys) {
		if !slices.Contains(verifierTaskPairs, pair) && known(pair) {
			count := m.tasks[pair].count
			out.gauge(verifierTasks, &count, pair.Type, pair.Status)
		}
	}
	for _, role := range []string{"source", "destination"} {
		counts := m.changeEvents[role]
		kept := eventTypesToExport(counts, *t.ChangeEventTypeLimit)
		for _, op := range kept {
			n := counts[op]
			out.counter(verifierChangeEvents, &n, role, op)
		}
		if counts != nil {
			omitted := float64(len(counts) - len(kept))
			out.gauge(verifierChangeTypesLeft, &omitted, role)
		}
	}
	out.gauge(verifierOldestTask, m.oldestProcessing)
	if m.complete {
		t.emitTotals(out, m, api)
	}
}

// emitTotals sends the series computed from the running totals (or the server's sums),
// which are absent until those are complete.
func (t *verifierTarget) emitTotals(out emitter, m *verifierMetadata, api *verifierProgress) {
	out.gauge(verifierMalformed, &m.malformed)
	legacy := m.legacyFields()
	current := progressOf(m.tasks, m.generation, legacy).withInProgress(api, m.generation)
	out.gauge(verifierDocsCompared, &current.docsCompared)
	out.gauge(verifierDocsToCompare, &current.docsToCompare)
	out.gauge(verifierBytesCompared, &current.bytesCompared)
	out.gauge(verifierBytesToCompare, &current.bytesToCompare)
	initial := current
	if m.generation > 0 {
		initial = progressOf(m.initial, 0, legacy)
	}
	out.gauge(verifierInitDocsDone, &initial.docsCompared)
	out.gauge(verifierInitDocsToDo, &initial.docsToCompare)
	out.gauge(verifierInitBytesDone, &initial.bytesCompared)
	out.gauge(verifierInitBytesToDo, &initial.bytesToCompare)

	if m.mismatch != nil {
		for _, kind := range mismatchKinds {
			n := m.mismatch[kind]
			out.gauge(verifierMismatches, &n, kind)
		}
	}
	t.emitNamespaceMismatches(out, m.namespaceMismatches)
	for _, g := range slices.Sorted(maps.Keys(m.generationMismatches)) {
		if n := m.generationMismatches[g]; n > 0 {
			out.gauge(verifierGenerationCount, &n, strconv.FormatInt(g, 10))
		}
	}
	t.emitNamespaces(out, m.namespaces)
	for _, role := range []string{"source", "destination"} {
		out.gauge(verifierLastRechecked, m.lastRechecked[role], role)
	}
	out.counter(verifierRechecks, m.rechecksReported)
	out.gauge(verifierLastChange, m.lastChange())
}

// eventTypesToExport picks at most limit operation types of counts: the verifier's own
// first, then the others in name order.
func eventTypesToExport(counts map[string]float64, limit int) []string {
	var kept []string
	for _, op := range changeEventTypes {
		if _, ok := counts[op]; ok {
			kept = append(kept, op)
		}
	}
	for _, op := range slices.Sorted(maps.Keys(counts)) {
		if !slices.Contains(changeEventTypes, op) {
			kept = append(kept, op)
		}
	}
	return kept[:min(len(kept), limit)]
}

// emitNamespaces sends the verdict counts, and one 0/1 series per namespace for at most
// namespace_limit namespaces that namespace_include keeps, mismatched ones first.
func (t *verifierTarget) emitNamespaces(out emitter, stats namespaceStates) {
	counts := map[string]float64{}
	for _, state := range stats {
		counts[state.status()]++
	}
	for _, status := range namespaceStatuses {
		n := counts[status]
		out.gauge(verifierNamespaces, &n, status)
	}
	mismatched := func(name string) float64 { return boolValue(stats[name].status() == nsMismatched) }
	kept := t.namespacesToExport(slices.Collect(maps.Keys(stats)), mismatched)
	for _, name := range kept {
		out.flag(verifierNamespaceBad, new(mismatched(name) == 1), name)
	}
	omitted := float64(len(stats) - len(kept))
	out.gauge(verifierNamespacesLeft, &omitted)
}

// emitNamespaceMismatches sends the mismatch count of the namespaces that have some, at
// most namespace_limit of those namespace_include keeps, most mismatches first.
func (t *verifierTarget) emitNamespaceMismatches(out emitter, counts map[string]float64) {
	var names []string
	for name, n := range counts {
		if n > 0 {
			names = append(names, name)
		}
	}
	for _, name := range t.namespacesToExport(names, func(name string) float64 { return counts[name] }) {
		n := counts[name]
		out.gauge(verifierNamespaceCounts, &n, name)
	}
}

// namespacesToExport keeps the names namespace_include matches, highest rank first, then
// by name, at most namespace_limit of them.
func (t *verifierTarget) namespacesToExport(names []string, rank func(string) float64) []string {
	kept := slices.DeleteFunc(names, func(name string) bool { return !t.include.MatchString(name) })
	slices.SortFunc(kept, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(b), rank(a)), strings.Compare(a, b))
	})
	return kept[:min(len(kept), *t.NamespaceLimit)]
}

func emitVerifierAPI(out emitter, p *verifierProgress) {
	for role, stats := range map[string]*verifierChangeStats{"source": p.SrcChangeStats, "destination": p.DstChangeStats} {
		if stats == nil {
			continue
		}
		out.gauge(verifierChangeLag, stats.LagSecs, role)
		out.gauge(verifierChangeBuffer, stats.BufferSaturation, role)
		out.gauge(verifierChangeRate, stats.EventsPerSecond, role)
	}
	if p.LongestDocMismatch != nil {
		out.gauge(verifierLongestMismatch, p.LongestDocMismatch.DurationSecs)
	}
}

func compareTaskKeys(a, b taskKey) int {
	return cmp.Or(strings.Compare(a.Type, b.Type), strings.Compare(a.Status, b.Status))
}
