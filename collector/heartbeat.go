package collector

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
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

// errSuperseded is a report refused because the document records a later lease epoch
// than the writer's, while the writer still holds its lease: another store's collector
// reports under the same source name.
var errSuperseded = errors.New("the heartbeat document records a later lease epoch than this collector's: does a collector with another store report under the same source name?")

// report writes r, the report of the holder of lease epoch r.LeaseEpoch: it updates
// the source's document unless a holder of a later epoch wrote it, and creates it when
// there is none, but only while holds says the lease is still at that epoch, before and
// after: a collector that lost the lease (paused, cut off) neither writes over the next
// holder's report nor brings back a document a de-registration deleted. (A crash
// between the creation and the check after it can leave one behind: the metadata
// database may be another cluster than the store, so the two cannot be one
// transaction.)
func (h *heartbeats) report(ctx context.Context, name string, r hbdoc.Report, holds func(context.Context) (bool, error)) error {
	if h.coll == nil {
		return nil
	}
	r.Collector = collectorProgram
	now := time.Now()
	res, err := h.coll.UpdateOne(ctx, hbdoc.FencedFilter(name, r.LeaseEpoch), r.Update(now))
	if err != nil {
		return fmt.Errorf("writing the heartbeat: %w", err)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	if ok, err := holds(ctx); err != nil || !ok {
		return err
	}
	res, err = h.coll.UpdateOne(ctx, hbdoc.Filter(name), r.Insert(now), options.UpdateOne().SetUpsert(true))
	switch {
	case err != nil:
		return fmt.Errorf("writing the heartbeat: %w", err)
	case res.UpsertedCount == 0:
		return errSuperseded
	}
	if ok, err := holds(ctx); err == nil && !ok {
		_, _ = h.coll.DeleteOne(ctx, bson.D{{Key: hbdoc.FieldName, Value: name}, {Key: hbdoc.FieldLeaseEpoch, Value: r.LeaseEpoch}})
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

// read returns what the source's document says; nil when there is none (or no
// metadata database).
func (h *heartbeats) read(ctx context.Context, name string) (*hbdoc.Heartbeat, error) {
	if h.coll == nil {
		return nil, nil
	}
	raw, err := h.coll.FindOne(ctx, hbdoc.Filter(name), options.FindOne().SetProjection(hbdoc.Projection())).Raw()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading the heartbeat: %w", err)
	}
	hb, _ := hbdoc.Parse(raw)
	return &hb, nil
}

// epoch is the lease epoch the source's document records: 0 when none, or when it
// cannot be read (then a report of the new epoch may be refused, and says so).
func (h *heartbeats) epoch(ctx context.Context, name string) int64 {
	hb, err := h.read(ctx, name)
	if err != nil || hb == nil {
		return 0
	}
	return hb.LeaseEpoch
}

// checkpoint is the checkpoint the source's document records, when this project's
// collector wrote it; zero otherwise.
func (h *heartbeats) checkpoint(ctx context.Context, name string) (time.Time, error) {
	hb, err := h.read(ctx, name)
	if err != nil || hb == nil || hb.HolderID == "" || hb.Checkpoint == nil {
		return time.Time{}, err
	}
	return *hb.Checkpoint, nil
}
