package exporter

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Namespace verdicts, the verifier's own: mismatched when any task failed or found a
// metadata mismatch; complete when tasks finished and none is queued or running.
const (
	nsComplete   = "complete"
	nsInProgress = "in_progress"
	nsMismatched = "mismatched"
)

var namespaceStatuses = []string{nsComplete, nsInProgress, nsMismatched}

type namespaceState struct {
	pending, finished, mismatched float64
}

func (s namespaceState) status() string {
	switch {
	case s.mismatched > 0:
		return nsMismatched
	case s.finished > 0 && s.pending == 0:
		return nsComplete
	}
	return nsInProgress
}

// countsForNamespaces tells whether tasks of this type make a namespace's verdict.
func countsForNamespaces(k taskKey) bool {
	return k.Type == taskVerifyDocuments || k.Type == taskVerifyCollection
}

// add counts n tasks of key in namespace.
func (ns namespaceStates) add(key taskKey, namespace string, n float64) {
	if namespace == "" || !countsForNamespaces(key) {
		return
	}
	s := ns[namespace]
	switch key.Status {
	case statusAdded, statusProcessing:
		s.pending += n
	case statusFailed, statusMismatch:
		s.mismatched += n
		s.finished += n
	default:
		s.finished += n
	}
	ns[namespace] = s
}

// namespaceStates is the per-namespace picture of one generation.
type namespaceStates map[string]namespaceState

// namespaceCache holds generation 0's per-namespace aggregation while the exporter sums
// that generation on the server (taskTally does it otherwise): the aggregation scans the
// whole generation (no index fits a group by namespace), so it is reused for refresh.
type namespaceCache struct {
	refresh   time.Duration
	database  string
	stats     namespaceStates
	problems  problemList
	fetchedAt time.Time
}

// readNamespaces provides the verdict generation's namespaces: a generation before the
// current one is final and read once; the current one (generation 0) comes from the
// running totals or from the cache.
func (r *verifierReader) readNamespaces(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	if m.verdict < m.generation {
		if v, ok := cached(r.verdictNS, m, m.verdict); ok {
			m.namespaces = v
			return nil
		}
		g, problems, err := readNamespaceGroups(ctx, db, m)
		if err != nil {
			return err
		}
		r.verdictNS = &generationCache[namespaceStates]{database: m.database, generation: m.verdict, value: g, problems: problems}
		m.namespaces = g
		m.problems.addAll(problems)
		return nil
	}
	if m.namespaces != nil { // from the running totals
		return nil
	}
	c := &r.namespaces
	if c.stats == nil || c.database != m.database || time.Since(c.fetchedAt) >= c.refresh {
		g, problems, err := readNamespaceGroups(ctx, db, m)
		if err != nil {
			return err
		}
		c.database, c.stats, c.problems, c.fetchedAt = m.database, g, problems, time.Now()
	}
	m.namespaces = c.stats
	m.problems.addAll(c.problems)
	return nil
}

func readNamespaceGroups(ctx context.Context, db *mongo.Database, m *verifierMetadata) (namespaceStates, problemList, error) {
	var problems problemList
	g, err := readTaskGroups(ctx, db, bson.D{
		{Key: "generation", Value: m.verdict},
		{Key: "type", Value: bson.D{{Key: "$in", Value: bson.A{taskVerifyDocuments, taskVerifyCollection}}}},
	}, true, &problems)
	if err != nil {
		return nil, problems, err
	}
	return g.namespaces, problems, nil
}
