package oplogstore

import "go.mongodb.org/mongo-driver/v2/bson"

// DefaultDatabase is the store database when the configuration names none (the old
// collector's choice too).
const DefaultDatabase = "oplog_backup_db"

// EventsCollection holds one document per captured change event of the source.
func EventsCollection(source string) string { return "oplogs_" + source }

// TokensCollection holds the source's resume token document (and nothing else the old
// collector reads).
func TokensCollection(source string) string { return "resume_tokens_for_" + source }

// TokenID is the _id of the resume token document in TokensCollection.
func TokenID(source string) string { return "resume_token_" + source }

// GapsCollection holds one Gap document per stretch of the source's history that the
// store may not hold. It survives a reset, which wipes the other two collections, so
// the record of what was wiped stays.
func GapsCollection(source string) string { return "capture_gaps_" + source }

// Fields of an event document. The first group is the old collector's; the second the
// fields it leaves out that a faithful replay needs (present only when the event has
// them); the last, this project's layout of an event too large for one document (see
// parts.go).
const (
	FieldID                   = "_id" // the resume token's _data string (the old collector's: an ObjectId)
	FieldResumeToken          = "_resume_token"
	FieldClusterName          = "cluster_name"
	FieldTS                   = "ts"   // BSON Timestamp: the event's clusterTime
	FieldWall                 = "wall" // BSON Date: when the collector received it (the TTL index)
	FieldOpType               = "op_type"
	FieldNamespace            = "ns" // "db.coll", or "db." for a database's events
	FieldDocumentKey          = "doc_key"
	FieldFullDocument         = "full_document"
	FieldUpdateDescription    = "update_description"
	FieldTo                   = "to"
	FieldOperationDescription = "operation_description"

	FieldLsid                     = "lsid"
	FieldTxnNumber                = "txn_number"
	FieldWallTime                 = "wall_time"
	FieldCollectionUUID           = "collection_uuid"
	FieldFullDocumentBeforeChange = "full_document_before_change"
	FieldSplitEvent               = "split_event"
	FieldStateBeforeChange        = "state_before_change"

	FieldPart     = "store_part"      // {part: k, of: n}, 1-based
	FieldPartData = "store_part_data" // BSON binary: the k-th slice of the whole document
)

// Fields of the resume token document.
const (
	TokenFieldToken       = "token"
	TokenFieldUpdatedAt   = "updated_at"
	TokenFieldStartAfter  = "start_after"
	TokenFieldClusterTime = "cluster_time"
	// TokenFieldSourceIdentity names the cluster the history comes from, so that it is
	// never continued from another cluster given the same source name.
	TokenFieldSourceIdentity = "source_identity"
	// TokenFieldStartAt is where a resume (oplog_collector resume) starts capture again,
	// in a document without a token: the change stream opens with startAtOperationTime
	// there, and cluster_time is the moment before it, up to which the store claims
	// every event (but for the recorded gaps). The first position saved replaces it.
	TokenFieldStartAt = "start_at_operation_time"
)

// Gap is a stretch of the source's history the store may not hold: events with
// After < ts < Before can be missing. Replay refuses to cross one unless told to.
type Gap struct {
	ID     string `bson:"_id"`
	Reason string `bson:"reason"`
	// After is the last cluster time known to be captured before the gap; zero when
	// unknown (then everything before Before is in doubt).
	After bson.Timestamp `bson:"after,omitempty"`
	// Before is where capture started again; zero while it has not.
	Before     bson.Timestamp `bson:"before,omitempty"`
	DetectedAt bson.DateTime  `bson:"detected_at"`
	// Detail says what happened, for people: who reset, which cluster, how many events
	// were deleted. Never a connection string.
	Detail        string `bson:"detail,omitempty"`
	EventsDeleted int64  `bson:"events_deleted,omitempty"`
}

// Reasons of a Gap.
const (
	GapReset           = "reset"             // the store was wiped on request; capture restarted from then
	GapResumeTokenLost = "resume_token_lost" // the source's oplog no longer held the saved position
	GapPositionMissing = "position_missing"  // events were stored but no position was saved: capture started from then
	GapResumed         = "resumed"           // capture was resumed on request at a time after the saved position
)
