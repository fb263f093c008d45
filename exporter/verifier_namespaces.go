package exporter

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Namespace verdicts of the current generation. Complete and in progress are the
// verifier's own (statistics.go, getComparisonStatistics in summary.go): a namespace is
// complete when at least one of its verifyDocuments tasks is finished and none is added
// or processing; its verifyCollection task does not count. Mismatched is this exporter's:
// a verifyDocuments task failed (document mismatches) or the verifyCollection task failed
// or found a metadata mismatch, which the verifier's own report of the generation lists
// (reportDocumentMismatches, reportCollectionMetadataMismatches).
const (
	nsComplete   = "complete"
	nsInProgress = "in_progress"
	nsMismatched = "mismatched"
)

var namespaceStatuses = []string{nsComplete, nsInProgress, nsMismatched}

// namespaceState counts one namespace's tasks: pending and finished are its
// verifyDocuments tasks; mismatched counts the tasks of either type that found a mismatch.
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

func (s namespaceState) plus(o namespaceState) namespaceState {
	return namespaceState{s.pending + o.pending, s.finished + o.finished, s.mismatched + o.mismatched}
}

// namespaceStates is the per-namespace picture of one generation.
type namespaceStates map[string]namespaceState

// add counts n tasks of key in namespace. A namespace with only a verifyCollection task
// is listed (the verifier counts it among the generation's namespaces) but not complete.
func (ns namespaceStates) add(key taskKey, namespace string, n float64) {
	if namespace == "" || (key.Type != taskVerifyDocuments && key.Type != taskVerifyCollection) {
		return
	}
	s := ns[namespace]
	switch {
	case key.Type == taskVerifyCollection:
		if key.Status == statusFailed || key.Status == statusMismatch {
			s.mismatched += n
		}
	case key.unfinished():
		s.pending += n
	case key.Status == statusFailed:
		s.mismatched += n
		s.finished += n
	default:
		s.finished += n
	}
	ns[namespace] = s
}

func (ns namespaceStates) addAll(o namespaceStates) {
	for name, s := range o {
		ns[name] = ns[name].plus(s)
	}
}

// refreshed holds a figure read by an aggregation that scans a whole generation (no index
// fits a group by namespace): reused for a generation for the refresh interval.
type refreshed[T any] struct {
	generation int64
	value      T
	problems   problemList
	fetchedAt  time.Time
}

// fresh tells whether c holds generation's figure, read less than refresh ago.
func (c *refreshed[T]) fresh(generation int64, refresh time.Duration) bool {
	return c != nil && c.generation == generation && time.Since(c.fetchedAt) < refresh
}

// readNamespaces provides the current generation's namespaces: from the running totals,
// or, while the generation is summed on the server, from an aggregation at most every
// namespace_refresh_interval.
func (r *verifierReader) readNamespaces(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	if m.namespaces != nil { // from the running totals
		return nil
	}
	if !r.namespaces.fresh(m.generation, r.refresh) {
		var problems problemList
		g, err := readTaskGroups(ctx, db, bson.D{
			{Key: "generation", Value: m.generation},
			{Key: "type", Value: bson.D{{Key: "$in", Value: bson.A{taskVerifyDocuments, taskVerifyCollection}}}},
		}, true, &problems)
		if err != nil {
			return err
		}
		r.namespaces = &refreshed[namespaceStates]{generation: m.generation, value: g.namespaces, problems: problems, fetchedAt: time.Now()}
	}
	m.namespaces = r.namespaces.value
	m.problems.addAll(r.namespaces.problems)
	return nil
}

// readNamespaceMismatches counts the verdict generation's mismatches by namespace
// (detail.namespace; the verifier's summary counts them so, DocMismatchSummary.ByNamespace
// in summary_api.go), at most every namespace_refresh_interval: the count reads every
// mismatch of the generation.
func (r *verifierReader) readNamespaceMismatches(ctx context.Context, db *mongo.Database, m *verifierMetadata) error {
	if m.mismatch == nil { // before metadata v6
		return nil
	}
	if !r.namespaceMismatches.fresh(m.verdict, r.refresh) {
		cursor, err := aggregate(ctx, db, "mismatches", mongo.Pipeline{
			{{Key: "$match", Value: bson.D{{Key: "generation", Value: m.verdict}}}},
			{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$detail.namespace"}, {Key: "count", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
		})
		if err != nil {
			return fmt.Errorf("counting mismatches by namespace: %w", err)
		}
		defer cursor.Close(context.WithoutCancel(ctx))
		c := &refreshed[map[string]float64]{generation: m.verdict, value: map[string]float64{}, fetchedAt: time.Now()}
		for cursor.Next(ctx) {
			id := cursor.Current.Lookup("_id")
			name, ok := id.StringValueOK()
			if !ok {
				c.problems.add(fmt.Sprintf("%.0f mismatch(es) whose detail.namespace is %s; left out of the per-namespace counts", numberOrZero(cursor.Current, "count"), describeValue(id)))
				continue
			}
			c.value[name] += numberOrZero(cursor.Current, "count")
		}
		if err := cursor.Err(); err != nil {
			return fmt.Errorf("counting mismatches by namespace: %w", err)
		}
		r.namespaceMismatches = c
	}
	m.namespaceMismatches = r.namespaceMismatches.value
	m.problems.addAll(r.namespaceMismatches.problems)
	return nil
}
