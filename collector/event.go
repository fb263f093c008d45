package collector

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
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
	raw, err := storeDocument(cluster, data, token, clusterTime, received, opType, event)
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

// copiedFields are the event's fields the store keeps as they are, under its own names:
// first the old collector's (stored as null when absent), then the additions it dropped,
// which a faithful replay needs (stored only when present).
var copiedFields = []struct {
	from, to string
	old      bool
}{
	{"documentKey", "doc_key", true},
	{"fullDocument", "full_document", true},
	{"updateDescription", "update_description", true},
	{"to", "to", true},
	{"operationDescription", "operation_description", true},
	{"lsid", "lsid", false},
	{"txnNumber", "txn_number", false},
	{"wallTime", "wall_time", false},
	{"collectionUUID", "collection_uuid", false},
	{"fullDocumentBeforeChange", "full_document_before_change", false},
	{"splitEvent", "split_event", false},
}

// storeDocument builds the store document in BSON directly, copying the event's values
// byte for byte: no decoding and re-encoding of full documents, which are most of an
// event's size.
func storeDocument(cluster, data string, token bson.Raw, ts bson.Timestamp, received time.Time, opType string, event bson.Raw) (bson.Raw, error) {
	start, dst := bsoncore.AppendDocumentStart(make([]byte, 0, len(event)+len(token)+128))
	dst = bsoncore.AppendStringElement(dst, "_id", data)
	dst = bsoncore.AppendDocumentElement(dst, "_resume_token", token)
	dst = bsoncore.AppendStringElement(dst, "cluster_name", cluster)
	dst = bsoncore.AppendTimestampElement(dst, "ts", ts.T, ts.I)
	dst = bsoncore.AppendDateTimeElement(dst, "wall", received.UnixMilli())
	dst = bsoncore.AppendStringElement(dst, "op_type", opType)
	if ns, ok := namespace(event).(string); ok {
		dst = bsoncore.AppendStringElement(dst, "ns", ns)
	} else {
		dst = bsoncore.AppendNullElement(dst, "ns")
	}
	for _, f := range copiedFields {
		v := lookup(event, f.from)
		switch {
		case v.Type != 0:
			dst = append(bsoncore.AppendHeader(dst, bsoncore.Type(v.Type), f.to), v.Value...)
		case f.old:
			dst = bsoncore.AppendNullElement(dst, f.to)
		}
	}
	return bsoncore.AppendDocumentEnd(dst, start)
}

func lookup(doc bson.Raw, key string) bson.RawValue {
	v, err := doc.LookupErr(key)
	if err != nil {
		return bson.RawValue{}
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
