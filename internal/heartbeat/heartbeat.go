package heartbeat

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Field names. Fields under collector_status are given as dotted paths from the
// document's root.
const (
	FieldID               = "_id"
	FieldName             = "name"
	FieldScope            = "change_stream_target_db" // the one database captured; null for the whole cluster
	FieldRegistration     = "registration_utc"
	FieldCollectorStatus  = "collector_status"
	FieldStatus           = FieldCollectorStatus + ".status"
	FieldLastReport       = FieldCollectorStatus + ".last_collector_reported_utc"
	FieldCheckpoint       = FieldCollectorStatus + ".last_oplog_time_utc" // everything up to here is stored
	FieldLastEvent        = FieldCollectorStatus + ".last_event_time_utc"
	FieldFirstOplog       = FieldCollectorStatus + ".first_oplog_time_utc" // oldest event in the store
	FieldPID              = FieldCollectorStatus + ".pid"
	FieldErrorMessage     = FieldCollectorStatus + ".error_message"
	FieldCollectorProgram = FieldCollectorStatus + ".collector"
	// This project's collector only: the instance holding the source's lease, and the
	// last standby to report that it is ready to take the source over.
	FieldHolder  = FieldCollectorStatus + ".holder"
	FieldStandby = FieldCollectorStatus + ".standby"
	// FieldLeaseEpoch is the epoch of the lease its writer held (see the collector's
	// fencing): a report of an earlier epoch never overwrites one of a later.
	FieldLeaseEpoch = FieldCollectorStatus + ".lease_epoch"
	// FieldSourceOplogOldest is the oldest entry the source's oplog still holds (on a
	// sharded source, the newest of the shards' oldest): last_oplog_time_utc less this
	// is the resume headroom. Absent while unknown.
	FieldSourceOplogOldest = FieldCollectorStatus + ".source_oplog_oldest_time_utc"
)

// Values of collector_status.status.
const (
	// Written by the old collector (package oplogstore) and its manager.
	StatusPendingRegistration      = "pending_registration"
	StatusStarting                 = "starting"
	StatusRunning                  = "running"
	StatusRetryingConnection       = "retrying_connection"
	StatusError                    = "error"
	StatusResumeTokenLost          = "error_resume_token_lost"
	StatusMaxRetriesReached        = "error_max_retries_reached"
	StatusStopping                 = "stopping"
	StatusStopped                  = "stopped"
	StatusResettingOplogStore      = "resetting_oplog_store"
	StatusErrorStoppedUnexpectedly = "error_stopped_unexpectedly" // derived by the old manager
	StatusStoppedOrphaned          = "stopped_orphaned"           // derived by the old manager
	// Written by this project's collector only.
	StatusStandby          = "standby"           // another collector holds the source
	StatusStoreUnavailable = "store_unavailable" // the store does not accept writes
	StatusForeignWriter    = "foreign_writer"    // a process that holds no lease writes into the source's store
)

// Statuses lists every known status, in a stable order: a reader exports one series per
// status (a state-set), so a status added here gets its series everywhere at once.
var Statuses = []string{
	StatusPendingRegistration, StatusStarting, StatusRunning, StatusRetryingConnection, StatusError,
	StatusResumeTokenLost, StatusMaxRetriesReached, StatusStopping, StatusStopped,
	StatusResettingOplogStore, StatusErrorStoppedUnexpectedly, StatusStoppedOrphaned,
	StatusStandby, StatusStoreUnavailable, StatusForeignWriter,
}

// TimeLayout is Python's datetime.isoformat() of an aware UTC time without microseconds,
// the old collector's format for every time in the document.
const TimeLayout = "2006-01-02T15:04:05+00:00"

// FormatTime writes t as the old collector does: UTC, whole seconds, "+00:00".
func FormatTime(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format(TimeLayout)
}

// Instance names one collector process: a random id per start, with its host and pid
// for people.
type Instance struct {
	ID   string `bson:"id" json:"id"`
	Host string `bson:"host" json:"host"`
	PID  int    `bson:"pid" json:"pid"`
}

func (i Instance) String() string { return fmt.Sprintf("%s (pid %d on %s)", i.ID, i.PID, i.Host) }

// Report is one heartbeat of one source. A zero time is unknown and left as it is in
// the document; an empty Error clears error_message; PID 0 writes null (the process no
// longer holds the source).
type Report struct {
	Status     string
	Scope      string    // the captured database, "" for the whole cluster
	Checkpoint time.Time // everything up to here is in the store
	LastEvent  time.Time // the newest stored event
	FirstOplog time.Time // the oldest stored event
	// SourceOplogOldest is the oldest entry of the source's oplog; zero removes it from
	// the document: a stale one would overstate the headroom.
	SourceOplogOldest time.Time
	Error             string
	PID               int
	Collector         string    // the writing program, collector_status.collector
	Holder            *Instance // the collector holding the source's lease; nil leaves it as it is
	LeaseEpoch        int64     // the epoch of the lease the writer holds; 0 leaves it as it is
}

// Filter selects the document of the source named name.
func Filter(name string) bson.D {
	return bson.D{{Key: FieldName, Value: name}}
}

// FencedFilter selects the document of the source named name unless a holder of a later
// lease epoch than epoch wrote it.
func FencedFilter(name string, epoch int64) bson.D {
	return bson.D{{Key: FieldName, Value: name}, {Key: "$or", Value: bson.A{
		bson.D{{Key: FieldLeaseEpoch, Value: bson.D{{Key: "$lte", Value: epoch}}}},
		bson.D{{Key: FieldLeaseEpoch, Value: bson.D{{Key: "$exists", Value: false}}}},
	}}}
}

// Update is the upsert that records r at now: $set on collector_status.<field> paths,
// and on insert a random UUID _id, the scope and registration time as the old manager
// registered sources.
//
// last_oplog_time_utc is the checkpoint, not the newest event: on a quiet source the
// newest event may be old while the capture is complete up to now, and the old UI's
// GAP (now - last_oplog_time_utc) must not cry wolf.
func (r Report) Update(now time.Time) bson.D {
	set := bson.D{
		{Key: FieldStatus, Value: r.Status},
		{Key: FieldLastReport, Value: FormatTime(now)},
		{Key: FieldPID, Value: nullIfZero(r.PID)},
		{Key: FieldErrorMessage, Value: nullIfZero(r.Error)},
		{Key: FieldCollectorProgram, Value: r.Collector},
	}
	if r.Holder != nil {
		set = append(set, bson.E{Key: FieldHolder, Value: r.Holder})
	}
	if r.LeaseEpoch > 0 {
		set = append(set, bson.E{Key: FieldLeaseEpoch, Value: r.LeaseEpoch})
	}
	for _, t := range []struct {
		key string
		at  time.Time
	}{
		{FieldCheckpoint, r.Checkpoint},
		{FieldLastEvent, r.LastEvent},
		{FieldFirstOplog, r.FirstOplog},
	} {
		if !t.at.IsZero() {
			set = append(set, bson.E{Key: t.key, Value: FormatTime(t.at)})
		}
	}
	update := bson.D{
		{Key: "$set", Value: set},
		{Key: "$setOnInsert", Value: bson.D{
			{Key: FieldID, Value: newUUID()},
			{Key: FieldScope, Value: nullIfZero(r.Scope)},
			{Key: FieldRegistration, Value: FormatTime(now)},
		}},
	}
	if r.SourceOplogOldest.IsZero() {
		return append(update, bson.E{Key: "$unset", Value: bson.D{{Key: FieldSourceOplogOldest, Value: ""}}})
	}
	update[0].Value = append(set, bson.E{Key: FieldSourceOplogOldest, Value: FormatTime(r.SourceOplogOldest)})
	return update
}

// Insert is the upsert that creates the document with r, when there is none, and
// changes nothing in one that exists: Update's fields all given on insert only (what
// Update removes is absent from a new document anyway).
func (r Report) Insert(now time.Time) bson.D {
	update := r.Update(now)
	fields := append(update[0].Value.(bson.D), update[1].Value.(bson.D)...)
	return bson.D{{Key: "$setOnInsert", Value: fields}}
}

// StandbyUpdate records that standby is ready to take the source over, at now, and
// nothing else: the holder's report stays as it is.
func StandbyUpdate(standby Instance, now time.Time) bson.D {
	return bson.D{{Key: "$set", Value: bson.D{{Key: FieldStandby, Value: bson.D{
		{Key: "id", Value: standby.ID}, {Key: "host", Value: standby.Host}, {Key: "pid", Value: standby.PID},
		{Key: "reported_utc", Value: FormatTime(now)},
	}}}}}
}

func nullIfZero[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

// newUUID is a random UUID in its text form, as the old manager's document ids are.
func newUUID() string { return uuid.NewString() }
