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

// heartbeat is one report.
type heartbeat struct {
	status     string
	scope      string    // the source's database, "" for the whole cluster
	checkpoint time.Time // everything up to here is in the store; zero when unknown
	lastEvent  time.Time // the newest stored event
	firstOplog time.Time // the oldest stored event
	errText    string    // the current error; "" clears it
	running    bool      // the process holds the source (pid is ours)
}

// program names this collector in collector_status.collector.
const collectorProgram = "oplog_collector (Go)"

// report upserts the source's document.
func (h *heartbeats) report(ctx context.Context, name string, hb heartbeat) error {
	if h.coll == nil {
		return nil
	}
	r := hbdoc.Report{
		Status: hb.status, Scope: hb.scope, Checkpoint: hb.checkpoint, LastEvent: hb.lastEvent,
		FirstOplog: hb.firstOplog, Error: hb.errText, Collector: collectorProgram,
	}
	if hb.running {
		r.PID = os.Getpid()
	}
	_, err := h.coll.UpdateOne(ctx, hbdoc.Filter(name), r.Update(time.Now()), options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("writing the heartbeat: %w", err)
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
