package demo

import (
	"time"

	vf "github.com/mongomigrate/observability/internal/verifierfixture"
)

// progress is what migration-verifier's GET /api/v1/progress answers inside its
// "progress" object (docs/migration-verifier.md, "The HTTP API"), from what this one
// wrote.
func (v *verifier) progress(now time.Time) map[string]any {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := map[string]any{"phase": "idle", "generation": v.generation, "error": nil}
	if !v.started {
		return p
	}
	current, unfinished := v.generationStats(v.generation)
	p["generationStats"] = current
	switch {
	case unfinished && v.generation == 0:
		p["phase"] = "check"
	case unfinished:
		p["phase"] = "recheck"
	}
	if v.generation > 0 {
		p["gen0Stats"], _ = v.generationStats(0)
	}

	status := map[string]int{}
	var rechecked int64
	var lastRechecked time.Time
	for _, t := range v.tasks {
		if t.generation == v.generation && t.typ != vf.TaskPrimary {
			status[t.status]++
			status["total"]++
		}
		if t.generation > 0 && t.typ == vf.TaskVerifyDocuments {
			if t.status == vf.StatusCompleted || t.status == vf.StatusFailed {
				rechecked += t.documents
			}
			if t.srcTS.After(lastRechecked) {
				lastRechecked = t.srcTS
			}
		}
	}
	p["verificationStatus"] = map[string]int{
		"totalTasks": status["total"], "addedTasks": status[vf.StatusAdded], "processingTasks": status[vf.StatusProcessing],
		"failedTasks": status[vf.StatusFailed], "completedTasks": status[vf.StatusCompleted], "metadataMismatchTasks": status[vf.StatusMismatch],
	}
	p["totalRechecksDone"] = rechecked
	p["srcLastRecheckedTS"], p["dstLastRecheckedTS"] = nil, nil
	if !lastRechecked.IsZero() {
		ts := map[string]any{"$timestamp": map[string]any{"t": lastRechecked.Unix(), "i": 1}}
		p["srcLastRecheckedTS"], p["dstLastRecheckedTS"] = ts, ts
	}

	counts := map[string]int64{}
	for _, e := range v.load.counts(v.share) {
		counts[e.Key] = e.Value.(int64)
	}
	wobble := 0.5 + 0.05*float64(now.Second()%10) // the change readers keep up, give or take
	for _, side := range []string{"srcChangeStats", "dstChangeStats"} {
		p[side] = map[string]any{"eventsPerSecond": v.load.perSecond() * v.share, "lagSecs": 1 + wobble, "bufferSaturation": 0.02 * wobble, "eventCounts": counts}
	}
	if m := v.longestMismatch(); m != nil {
		detail := "Different"
		if m.kind == "missingOnDst" {
			detail = "Missing"
		}
		p["longestDocMismatch"] = map[string]any{"type": m.kind, "namespace": m.namespace, "_id": m.id,
			"field": m.field, "detail": detail, "durationSecs": now.Sub(m.first).Seconds()}
	}
	return p
}

// generationStats are the verifier's figures for generation g (its own definition: the
// documents of the verifyCollection tasks in generation 0, of the recheck tasks after),
// and whether any of its tasks is unfinished.
func (v *verifier) generationStats(g int32) (stats map[string]any, unfinished bool) {
	var compared, total, bytesCompared, totalBytes int64
	namespaces := map[string]bool{}
	for _, t := range v.tasks {
		if t.generation != g || t.typ == vf.TaskPrimary || t.typ == vf.TaskProcessRecheckQueue {
			continue
		}
		namespaces[t.namespace] = true
		finished := t.status != vf.StatusAdded && t.status != vf.StatusProcessing
		unfinished = unfinished || !finished
		switch {
		case t.typ == vf.TaskVerifyCollection:
			total += t.documents
			totalBytes += t.size
		case g > 0:
			total += t.documents
		}
		if t.typ == vf.TaskVerifyDocuments && finished {
			compared += t.found
			bytesCompared += t.size
		}
	}
	stats = map[string]any{"docsCompared": compared, "totalDocs": total, "srcBytesCompared": bytesCompared, "totalNamespaces": len(namespaces)}
	if totalBytes > 0 {
		stats["totalSrcBytes"] = totalBytes
	}
	return stats, unfinished
}

// longestMismatch is the oldest document mismatch of the verdict generation (the one
// before the current), which the API reports while rechecking; nil when none.
func (v *verifier) longestMismatch() *simMismatch {
	if v.generation == 0 {
		return nil
	}
	var longest *simMismatch
	for i, m := range v.mismatches {
		if m.generation == v.generation-1 && m.kind != "metadata" && (longest == nil || m.first.Before(longest.first)) {
			longest = &v.mismatches[i]
		}
	}
	return longest
}
