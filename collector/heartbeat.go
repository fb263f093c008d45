package collector

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	hbdoc "github.com/mongomigrate/observability/internal/heartbeat"
)

// heartbeats writes each source's collector_status to the central metadata collection,
// in the old collector's format (internal/heartbeat). No connection string is ever
// written.
type heartbeats struct {
	coll *mongo.Collection // nil when no metadata database is configured
}

// collectorProgram names this collector in collector_status.collector.
const collectorProgram = "oplog_collector (Go)"

// holding is the pid a report gives for a process that holds the source: this one.
func holding(running bool) int {
	if running {
		return os.Getpid()
	}
	return 0
}

// report upserts the source's document with r.
func (h *heartbeats) report(ctx context.Context, name string, r hbdoc.Report) error {
	if h.coll == nil {
		return nil
	}
	r.Collector = collectorProgram
	_, err := h.coll.UpdateOne(ctx, hbdoc.Filter(name), r.Update(time.Now()), options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("writing the heartbeat: %w", err)
	}
	return nil
}

// reportStandby says that this collector stands by to take the source over, leaving the
// holder's report as it is (the last standby to report, when there are several).
func (h *heartbeats) reportStandby(ctx context.Context, name string, me Instance) error {
	if h.coll == nil {
		return nil
	}
	if _, err := h.coll.UpdateOne(ctx, hbdoc.Filter(name), hbdoc.StandbyUpdate(me, time.Now())); err != nil {
		return fmt.Errorf("writing the standby heartbeat: %w", err)
	}
	return nil
}

// remove deletes the source's document: the last step of de-registering it.
func (h *heartbeats) remove(ctx context.Context, name string) error {
	if h.coll == nil {
		return nil
	}
	if _, err := h.coll.DeleteOne(ctx, hbdoc.Filter(name)); err != nil {
		return fmt.Errorf("deleting the metadata document: %w", err)
	}
	return nil
}
