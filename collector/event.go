package collector

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// capturedOperations are the event types the old collector kept (its $match), plus the
// sharding DDL events that showExpandedEvents adds.
var capturedOperations = []string{
	"insert", "update", "delete", "replace", "drop", "rename", "dropDatabase", "invalidate",
	"createIndexes", "dropIndexes", "create", "modify",
	"shardCollection", "reshardCollection", "refineCollectionShardKey",
}

// item is one entry of the buffer between reading and writing: a change event to store,
// or only a position (a post-batch resume token on a quiet source).
type item struct {
	doc        bson.Raw // the store document, marshalled once; nil for a position only
	token      bson.Raw
	tokenTime  bson.Timestamp // zero when the token's time cannot be told
	opType     string
	size       int  // BSON bytes of the store document
	startAfter bool // the token is an invalidate's: resume with startAfter
}

// splitState carries what later fragments of a split event lack: the first fragment
// has the event's type and cluster time, the others only their share of the fields.
type splitState struct {
	opType      string
	clusterTime bson.Timestamp
}

// errNoToken is an event without a usable resume token: it could be neither
// deduplicated nor resumed from, which a change stream never produces.
var errNoToken = errors.New("change event without a resume token {_data: <string>}")

// toItem converts a change event, or one fragment of a split event, into the store
// layout of the old Python collector (../shared/reference/oplog-collector.md), plus the
// fields it dropped. _id is the token's _data, so storing an event twice is a no-op.
func toItem(cluster string, event bson.Raw, received time.Time, split *splitState) (item, error) {
	tokenValue, err := event.LookupErr("_id")
	if err != nil {
		return item{}, errNoToken
	}
	token, ok := tokenValue.DocumentOK()
	if !ok {
		return item{}, errNoToken
	}
	data, ok := token.Lookup("_data").StringValueOK()
	if !ok || data == "" {
		return item{}, errNoToken
	}
	opType, _ := event.Lookup("operationType").StringValueOK()
	clusterT, clusterI, hasTime := event.Lookup("clusterTime").TimestampOK()
	clusterTime := bson.Timestamp{T: clusterT, I: clusterI}
	if splitEvent, ok := lookup(event, "splitEvent").DocumentOK(); ok {
		if fragment, _ := splitEvent.Lookup("fragment").AsInt64OK(); fragment == 1 || opType != "" {
			*split = splitState{opType: opType, clusterTime: clusterTime}
		} else {
			opType, clusterTime, hasTime = split.opType, split.clusterTime, true
		}
	}
	if !hasTime {
		return item{}, fmt.Errorf("change event %s has no clusterTime", data)
	}
	doc := bson.D{
		{Key: "_id", Value: data},
		{Key: "_resume_token", Value: token},
		{Key: "cluster_name", Value: cluster},
		{Key: "ts", Value: clusterTime},
		{Key: "wall", Value: bson.NewDateTimeFromTime(received)},
		{Key: "op_type", Value: opType},
		{Key: "ns", Value: namespace(event)},
		{Key: "doc_key", Value: orNull(lookup(event, "documentKey"))},
		{Key: "full_document", Value: orNull(lookup(event, "fullDocument"))},
		{Key: "update_description", Value: orNull(lookup(event, "updateDescription"))},
		{Key: "to", Value: orNull(lookup(event, "to"))},
		{Key: "operation_description", Value: orNull(lookup(event, "operationDescription"))},
	}
	// Kept in addition to the old layout: what a faithful replay needs.
	for _, extra := range []struct{ from, to string }{
		{"lsid", "lsid"},
		{"txnNumber", "txn_number"},
		{"wallTime", "wall_time"},
		{"collectionUUID", "collection_uuid"},
		{"fullDocumentBeforeChange", "full_document_before_change"},
		{"splitEvent", "split_event"},
	} {
		if v := lookup(event, extra.from); v.Type != 0 {
			doc = append(doc, bson.E{Key: extra.to, Value: v})
		}
	}
	raw, err := bson.Marshal(doc)
	if err != nil {
		return item{}, fmt.Errorf("change event %s: %w", data, err)
	}
	return item{
		doc:        raw,
		token:      token,
		tokenTime:  clusterTime,
		opType:     opType,
		size:       len(raw),
		startAfter: opType == "invalidate",
	}, nil
}

func lookup(doc bson.Raw, key string) bson.RawValue {
	v, err := doc.LookupErr(key)
	if err != nil {
		return bson.RawValue{}
	}
	return v
}

// orNull stores an absent field as null, as the old collector did.
func orNull(v bson.RawValue) any {
	if v.Type == 0 {
		return nil
	}
	return v
}

// namespace is the event's ns as the old collector wrote it: "db.coll", or "db" for
// database-wide events, null when the event has none.
func namespace(event bson.Raw) any {
	ns, ok := lookup(event, "ns").DocumentOK()
	if !ok {
		return nil
	}
	db, _ := ns.Lookup("db").StringValueOK()
	if coll, ok := ns.Lookup("coll").StringValueOK(); ok {
		return db + "." + coll
	}
	return db
}

// tokenTime reads the cluster time a resume token stands for. The server's _data is a
// hex KeyString that starts with 0x82 (a Timestamp) and the timestamp's 8 bytes, big
// endian; it is how a post-batch resume token, which comes with no event, tells how far
// the stream has read. ok is false for a token of another shape.
func tokenTime(token bson.Raw) (ts bson.Timestamp, ok bool) {
	data, isString := lookup(token, "_data").StringValueOK()
	if !isString || len(data) < 18 || data[:2] != "82" {
		return bson.Timestamp{}, false
	}
	raw, err := hex.DecodeString(data[2:18])
	if err != nil {
		return bson.Timestamp{}, false
	}
	be := func(b []byte) uint32 { return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) }
	return bson.Timestamp{T: be(raw[:4]), I: be(raw[4:8])}, true
}
