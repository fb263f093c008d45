package collector

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// heartbeats writes each source's collector_status to the central metadata collection,
// in the old collector's format: ISO-8601 strings with +00:00 and 1-second precision,
// $set on dotted collector_status.<field> paths, the same status values. Its own
// additions are new fields. No connection string is ever written.
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
	holder     *Instance // the collector holding the source's lease
}

// pythonISO is Python's datetime.isoformat() of an aware UTC time without microseconds.
const pythonISO = "2006-01-02T15:04:05+00:00"

func iso(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(pythonISO)
}

// report upserts the source's document. last_oplog_time_utc is the checkpoint: on a
// quiet source the newest event may be old while the capture is complete up to now,
// and the old UI's GAP (now - last_oplog_time_utc) must not cry wolf.
func (h *heartbeats) report(ctx context.Context, name string, hb heartbeat) error {
	if h.coll == nil {
		return nil
	}
	now := time.Now()
	var pid any
	if hb.running {
		pid = os.Getpid()
	}
	var errText any
	if hb.errText != "" {
		errText = hb.errText
	}
	set := bson.D{
		{Key: "collector_status.status", Value: hb.status},
		{Key: "collector_status.last_collector_reported_utc", Value: iso(now)},
		{Key: "collector_status.pid", Value: pid},
		{Key: "collector_status.error_message", Value: errText},
		{Key: "collector_status.collector", Value: "oplog_collector (Go)"},
	}
	if hb.holder != nil {
		set = append(set, bson.E{Key: "collector_status.holder", Value: hb.holder})
	}
	for _, t := range []struct {
		key string
		at  time.Time
	}{
		{"collector_status.last_oplog_time_utc", hb.checkpoint},
		{"collector_status.last_event_time_utc", hb.lastEvent},
		{"collector_status.first_oplog_time_utc", hb.firstOplog},
	} {
		if !t.at.IsZero() {
			set = append(set, bson.E{Key: t.key, Value: iso(t.at)})
		}
	}
	var scope any
	if hb.scope != "" {
		scope = hb.scope
	}
	_, err := h.coll.UpdateOne(ctx, bson.D{{Key: "name", Value: name}}, bson.D{
		{Key: "$set", Value: set},
		{Key: "$setOnInsert", Value: bson.D{
			{Key: "_id", Value: newUUID()},
			{Key: "change_stream_target_db", Value: scope},
			{Key: "registration_utc", Value: iso(now)},
		}},
	}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("writing the heartbeat: %w", err)
	}
	return nil
}

// reportStandby says that a collector stands by to take the source over, without
// touching the holder's report: only collector_status.standby changes (the last standby
// to report, when there are several).
func (h *heartbeats) reportStandby(ctx context.Context, name string, me Instance) error {
	if h.coll == nil {
		return nil
	}
	_, err := h.coll.UpdateOne(ctx, bson.D{{Key: "name", Value: name}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "collector_status.standby", Value: bson.D{
			{Key: "id", Value: me.ID}, {Key: "host", Value: me.Host}, {Key: "pid", Value: me.PID},
			{Key: "reported_utc", Value: iso(time.Now())},
		}},
	}}})
	if err != nil {
		return fmt.Errorf("writing the standby heartbeat: %w", err)
	}
	return nil
}

// remove deletes the source's document: the last step of de-registering it.
func (h *heartbeats) remove(ctx context.Context, name string) error {
	if h.coll == nil {
		return nil
	}
	if _, err := h.coll.DeleteOne(ctx, bson.D{{Key: "name", Value: name}}); err != nil {
		return fmt.Errorf("deleting the metadata document: %w", err)
	}
	return nil
}
