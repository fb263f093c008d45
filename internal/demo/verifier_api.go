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
	stats := func(g int32) (map[string]any, bool) {
		var compared, total, bytesCompared, totalBytes int64
		namespaces := map[string]bool{}
		unfinished := false
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
		st := map[string]any{"docsCompared": compared, "totalDocs": total, "srcBytesCompared": bytesCompared, "totalNamespaces": len(namespaces)}
		if totalBytes > 0 {
			st["totalSrcBytes"] = totalBytes
		}
		return st, unfinished
	}
	current, unfinished := stats(v.generation)
	p["generationStats"] = current
	if unfinished {
		p["phase"] = map[bool]string{true: "check", false: "recheck"}[v.generation == 0]
	}
	if v.generation > 0 {
		p["gen0Stats"], _ = stats(0)
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
	rate := v.load.perSecond() * v.share
	counts := map[string]int64{}
	for _, e := range v.load.counts(v.share) {
		counts[e.Key] = e.Value.(int64)
	}
	wobble := 0.5 + 0.5*float64(now.Second()%10)/10
	for _, side := range []string{"srcChangeStats", "dstChangeStats"} {
		p[side] = map[string]any{"eventsPerSecond": rate, "lagSecs": 1 + wobble, "bufferSaturation": 0.02 * wobble, "eventCounts": counts}
	}
	if v.generation > 0 {
		var longest *simMismatch
		for i, m := range v.mismatches {
			if m.generation == v.generation-1 && m.kind != "metadata" && (longest == nil || m.first.Before(longest.first)) {
				longest = &v.mismatches[i]
			}
		}
		if longest != nil {
			p["longestDocMismatch"] = map[string]any{"type": longest.kind, "namespace": longest.namespace, "_id": longest.id,
				"field": longest.field, "detail": "Different", "durationSecs": now.Sub(longest.first).Seconds()}
		}
	}
	return p
}
