package collector

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/oplogstore"
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
	doc    bson.Raw   // the store document, marshalled once (its first part when too large for one); nil for a position only
	parts  []bson.Raw // the other parts of a store document too large for one (oplogstore.Split)
	pos    position   // where a stream resumes after this item
	opType string
	size   int // BSON bytes of the store document
	// partial marks a fragment of a split event other than its last: the event goes on
	// after it.
	partial bool
	// fragment marks any fragment of a split event, its last too: no stream resumes
	// from a fragment's token. The server renders the event again there, with
	// updateLookup's document as it is then: a stream resumed inside the event would
	// deliver fragments of another split, and one resumed at the last fragment fails
	// (mongod's split stage, ChangeStreamFatalError) once the event no longer splits
	// that far, or gives the fragments of a longer split.
	fragment bool
	// progressOnly marks a position that need not be saved on its own: a post-batch
	// token read between two saves of a quiet source's position. Written, it shows that
	// the store holds every event up to it; saved with the events of its batch when
	// there are some.
	progressOnly bool
	// restart marks a change stream opened (again) at pos: what the store holds after pos
	// is dropped before anything else is written, because it will be written again as
	// read now. Written before a crash, or before the stream failed, it may hold part of
	// an event (some of its fragments, some of its parts) that now reads otherwise: with
	// updateLookup the document is the one at read time, and so is the split.
	restart bool
}

// checkpoint tells whether a stream may resume after this item.
func (it *item) checkpoint() bool { return !it.fragment && !it.restart }

// splitState carries what later fragments of a split event lack: the first fragment
// has the event's type and cluster time, the others only their share of the fields.
type splitState struct {
	opType      string
	clusterTime bson.Timestamp
	wall        time.Time // the event's wallTime, from whichever fragment had it
	// next is the fragment the event's next document must be, of its of; 0 when no
	// split event is under way.
	next, of int64
}

// errSplitBroken is a document that does not continue the split event under way: an
// event, or a fragment of another split. The driver resumed the stream inside the event
// after a failure, from a fragment's token, and the server rendered the event again
// otherwise (updateLookup's document had changed): the stream is opened again before
// the event, which is then read whole.
var errSplitBroken = errors.New("the change stream, resumed inside a split event, does not continue it: its document changed since; reading the event again")

// continues tells whether a document (a fragment when isFragment) continues the split
// event under way, if any.
func (s *splitState) continues(isFragment bool, fragment, of int64) bool {
	return s.next == 0 || isFragment && fragment == s.next && of == s.of
}

// advance records that fragment of of has been read.
func (s *splitState) advance(fragment, of int64) {
	s.next, s.of = fragment+1, of
	if fragment >= of {
		s.next = 0
	}
}

// orphanFragment is a later fragment of a split event whose first fragment this
// stream did not deliver: the stream was opened inside the event.
type orphanFragment struct {
	clusterTime bson.Timestamp // from the fragment's token
	data        string         // the fragment's token _data
}

func (o *orphanFragment) Error() string {
	return "fragment " + o.data + " of a split event whose first fragment was not read"
}

// errNoToken is an event without a usable resume token: it could be neither
// deduplicated nor resumed from, which a change stream never produces.
var errNoToken = errors.New("change event without a resume token {_data: <string>}")

// toItem converts a change event, or one fragment of a split event, into the store
// layout (package oplogstore: the old collector's, plus the fields it dropped).
// _id is the token's _data, so storing an event twice is a no-op.
func toItem(cluster string, event bson.Raw, received time.Time, split *splitState) (item, error) {
	f, err := scanEvent(event)
	if err != nil {
		return item{}, err
	}
	token, ok := f.id.DocumentOK()
	if !ok {
		return item{}, errNoToken
	}
	data, ok := stringBytes(bsoncore.Document(token).Lookup("_data"))
	if !ok || len(data) == 0 {
		return item{}, errNoToken
	}
	opType := operationName(f.operationType)
	clusterT, clusterI, hasTime := f.clusterTime.TimestampOK()
	clusterTime := bson.Timestamp{T: clusterT, I: clusterI}
	var wall time.Time
	if ms, ok := f.copied[wallTimeField].DateTimeOK(); ok {
		wall = time.UnixMilli(ms)
	}
	splitEvent, isFragment := f.copied[splitEventField].DocumentOK()
	var fragment, of int64
	if isFragment { // a lookup in the empty document of an event not split allocates its error
		fragment, _ = splitEvent.Lookup("fragment").AsInt64OK()
		of, _ = splitEvent.Lookup("of").AsInt64OK()
	}
	if !split.continues(isFragment, fragment, of) {
		return item{}, errSplitBroken
	}
	if isFragment {
		switch {
		case fragment == 1 || opType != "":
			*split = splitState{opType: opType, clusterTime: clusterTime, wall: wall}
		case !split.clusterTime.IsZero():
			opType, clusterTime, hasTime = split.opType, split.clusterTime, true
			if wall.IsZero() {
				wall = split.wall
			} else {
				split.wall = wall
			}
		default:
			// The stream began inside the event (at a position an older version of
			// this collector saved): the reader finds the first fragment in the store.
			ts, _ := oplogstore.TokenTime(bson.Raw(token))
			return item{}, &orphanFragment{clusterTime: ts, data: string(data)}
		}
		split.advance(fragment, of)
	}
	if !hasTime {
		return item{}, fmt.Errorf("change event %s has no clusterTime", string(data))
	}
	raw, storedToken, err := storeDocument(cluster, data, token, clusterTime, received, opType, &f)
	if err != nil {
		return item{}, fmt.Errorf("change event %s: %w", string(data), err)
	}
	if wall.IsZero() {
		wall = time.Unix(int64(clusterTime.T), 0) // before MongoDB 6.0, events have no wallTime
	}
	it := item{
		doc:      raw,
		pos:      position{Token: storedToken, StartAfter: opType == "invalidate", ClusterTime: clusterTime, Wall: wall},
		opType:   opType,
		size:     len(raw),
		partial:  isFragment && fragment < of,
		fragment: isFragment,
	}
	if len(raw) > oplogstore.MaxDocumentSize {
		parts, err := oplogstore.Split(raw)
		if err != nil {
			return item{}, fmt.Errorf("change event %s: %w", string(data), err)
		}
		it.doc, it.parts = parts[0], parts[1:]
		it.pos.Token = bytes.Clone(storedToken) // not a slice of raw, which is let go
	}
	return it, nil
}

// copiedFields are the event's fields the store keeps as they are, under its own names:
// first the old collector's (stored as null when absent), then the additions it dropped,
// which a faithful replay needs (stored only when present).
var copiedFields = [...]struct {
	from, to string
	old      bool
}{
	{"documentKey", oplogstore.FieldDocumentKey, true},
	{"fullDocument", oplogstore.FieldFullDocument, true},
	{"updateDescription", oplogstore.FieldUpdateDescription, true},
	{"to", oplogstore.FieldTo, true},
	{"operationDescription", oplogstore.FieldOperationDescription, true},
	{"lsid", oplogstore.FieldLsid, false},
	{"txnNumber", oplogstore.FieldTxnNumber, false},
	{"wallTime", oplogstore.FieldWallTime, false},
	{"collectionUUID", oplogstore.FieldCollectionUUID, false},
	{"fullDocumentBeforeChange", oplogstore.FieldFullDocumentBeforeChange, false},
	{"splitEvent", oplogstore.FieldSplitEvent, false},
	{"stateBeforeChange", oplogstore.FieldStateBeforeChange, false},
}

// copiedField maps an event field's name to its place in copiedFields.
var copiedField = func() map[string]int {
	m := make(map[string]int, len(copiedFields))
	for i, f := range copiedFields {
		m[f.from] = i
	}
	return m
}()

// splitEventField and wallTimeField are where splitEvent and wallTime are in
// copiedFields: toItem reads them too.
var (
	splitEventField = copiedField["splitEvent"]
	wallTimeField   = copiedField["wallTime"]
)

// eventFields are the top-level values of a change event that the store uses; a value
// the event lacks has Type 0.
type eventFields struct {
	id, operationType, clusterTime, ns bsoncore.Value
	copied                             [len(copiedFields)]bsoncore.Value
}

// errMalformedEvent is a change event that is not valid BSON.
var errMalformedEvent = errors.New("malformed change event: not a valid BSON document")

// scanEvent finds the fields the store uses in one pass over the event: looking each
// up in turn would read the event's elements once per field, which cost most of the
// reader's time. Of a field repeated, the first counts, as a lookup would find it.
func scanEvent(event bson.Raw) (eventFields, error) {
	var f eventFields
	length, _, ok := bsoncore.ReadLength(event)
	if !ok || length < 5 || int(length) != len(event) || event[length-1] != 0 {
		return f, errMalformedEvent
	}
	rest := event[4 : length-1]
	for len(rest) > 0 {
		var element bsoncore.Element
		if element, rest, ok = bsoncore.ReadElement(rest); !ok {
			return f, errMalformedEvent
		}
		var slot *bsoncore.Value
		switch key := element.KeyBytes(); string(key) {
		case "_id":
			slot = &f.id
		case "operationType":
			slot = &f.operationType
		case "clusterTime":
			slot = &f.clusterTime
		case "ns":
			slot = &f.ns
		default:
			i, copied := copiedField[string(key)]
			if !copied {
				continue
			}
			slot = &f.copied[i]
		}
		if slot.Type == 0 {
			*slot = element.Value()
		}
	}
	return f, nil
}

// storeDocument builds the store document in BSON directly, copying the event's values
// byte for byte: no decoding and re-encoding of full documents, which are most of an
// event's size. storedToken is the token inside it: holding on to the event's own would
// keep the driver's whole reply buffer in memory while the item waits to be written.
func storeDocument(cluster string, data []byte, token bsoncore.Document, ts bson.Timestamp, received time.Time, opType string, f *eventFields) (doc, storedToken bson.Raw, err error) {
	// Sized to fit: the buffer's byte bound counts the document's length, so spare
	// capacity would be memory it does not see. 128 covers the fixed fields' keys.
	size := 128 + len(data) + len(token) + len(cluster) + len(opType) + len(f.ns.Data)
	for i, field := range copiedFields {
		if v := f.copied[i]; v.Type != 0 || field.old {
			size += 1 + len(field.to) + 1 + len(v.Data)
		}
	}
	start, dst := bsoncore.AppendDocumentStart(make([]byte, 0, size))
	dst = appendString(appendHeader(dst, bsoncore.TypeString, oplogstore.FieldID), data)
	dst = appendHeader(dst, bsoncore.TypeEmbeddedDocument, oplogstore.FieldResumeToken)
	tokenAt := len(dst)
	dst = append(dst, token...)
	dst = bsoncore.AppendString(appendHeader(dst, bsoncore.TypeString, oplogstore.FieldClusterName), cluster)
	dst = bsoncore.AppendTimestamp(appendHeader(dst, bsoncore.TypeTimestamp, oplogstore.FieldTS), ts.T, ts.I)
	dst = bsoncore.AppendDateTime(appendHeader(dst, bsoncore.TypeDateTime, oplogstore.FieldWall), received.UnixMilli())
	dst = bsoncore.AppendString(appendHeader(dst, bsoncore.TypeString, oplogstore.FieldOpType), opType)
	dst = appendNamespace(dst, f.ns)
	for i, field := range copiedFields {
		switch v := f.copied[i]; {
		case v.Type != 0:
			dst = append(appendHeader(dst, v.Type, field.to), v.Data...)
		case field.old:
			dst = appendHeader(dst, bsoncore.TypeNull, field.to)
		}
	}
	if dst, err = bsoncore.AppendDocumentEnd(dst, start); err != nil {
		return nil, nil, err
	}
	return dst, dst[tokenAt : tokenAt+len(token) : tokenAt+len(token)], nil
}

// appendHeader starts an element (type, key, NUL) whose key is one of this file's
// constants, which cannot hold a NUL: bsoncore.AppendHeader would check each key for
// one, and AppendKey allocate key+"\x00", for every field of every event.
func appendHeader(dst []byte, t bsoncore.Type, key string) []byte {
	dst = append(dst, byte(t))
	dst = append(dst, key...)
	return append(dst, 0)
}

// appendNamespace appends the event's ns as the old collector wrote it, so that tools
// reading its layout split it the same way: ns.db + "." + ns.coll, either part "" when
// the event lacks it ("db." for a database event, "." for an event without ns).
func appendNamespace(dst []byte, ns bsoncore.Value) []byte {
	var db, coll []byte
	if doc, ok := ns.DocumentOK(); ok {
		db, _ = stringBytes(doc.Lookup("db"))
		coll, _ = stringBytes(doc.Lookup("coll"))
	}
	dst = appendHeader(dst, bsoncore.TypeString, oplogstore.FieldNamespace)
	dst = bsoncore.AppendInt32(dst, int32(len(db)+1+len(coll)+1))
	dst = append(append(append(dst, db...), '.'), coll...)
	return append(dst, 0)
}

// stringBytes is the text of a BSON string value, read in place: a Go string made of
// each of an event's strings would be an allocation per string per event.
func stringBytes(v bsoncore.Value) ([]byte, bool) {
	if v.Type != bsoncore.TypeString || len(v.Data) < 5 {
		return nil, false
	}
	return v.Data[4 : len(v.Data)-1], true // after the int32 length, before the NUL
}

// appendString appends text as a BSON string value: int32 length, the bytes, NUL.
func appendString(dst, text []byte) []byte {
	dst = bsoncore.AppendInt32(dst, int32(len(text)+1))
	return append(append(dst, text...), 0)
}

// operationName is the event's operationType, one of capturedOperations without
// allocating, or "" when the event has none (a later fragment of a split event).
func operationName(v bsoncore.Value) string {
	name, ok := stringBytes(v)
	if !ok {
		return ""
	}
	for _, known := range capturedOperations {
		if string(name) == known {
			return known
		}
	}
	return string(name)
}
