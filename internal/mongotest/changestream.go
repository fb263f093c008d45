package mongotest

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// changeStream is an open change stream cursor's state
// (https://www.mongodb.com/docs/manual/changeStreams/).
type changeStream struct {
	db, coll    string // both empty: whole cluster; coll empty: one database
	pos         tokenKey
	lookup      bool   // fullDocument: updateLookup
	postImage   string // fullDocument: whenAvailable or required, "" otherwise
	preImage    string // fullDocumentBeforeChange: whenAvailable or required, "" for off
	expanded    bool   // showExpandedEvents
	stages      []query.Stage
	split       bool // $changeStreamSplitLargeEvent
	invalidated bool
	busy        bool // a getMore is waiting on it
	// resumeFrom is the event token the stream was opened after, until the
	// stream has returned past it: passing it without meeting its event
	// fails with 280, as mongod's ensure-resume-token-present stage does.
	resumeFrom *tokenKey
	// pending are the fragments of a split event that a full batch left over: the next
	// getMore returns them first, as mongod's split stage queues the fragments of one
	// rendering in the cursor. Rendering the event again would look its document up
	// again (updateLookup), and a write since could change the split, or end it.
	pending []positioned
}

// Internal databases never appear in cluster streams, nor system
// collections in any (https://www.mongodb.com/docs/manual/changeStreams/#watch-a-collection--database--or-deployment).
func internalDB(db string) bool { return db == "admin" || db == "config" || db == "local" }

func systemColl(coll string) bool { return len(coll) >= 7 && coll[:7] == "system." }

// expandedOnly events need showExpandedEvents.
var expandedOnly = map[string]bool{"create": true, "createIndexes": true, "dropIndexes": true, "modify": true}

// positioned is one document a stream returns, with its position; doc is
// nil when the pipeline filtered it out (the position still moves).
type positioned struct {
	key tokenKey
	doc bsoncore.Document
}

// render returns what e produces on this stream: nothing, the event, or
// the event followed by an invalidate.
func (cs *changeStream) render(s *Server, e *event) ([]positioned, error) {
	if systemColl(e.coll) || (cs.db == "" && internalDB(e.db)) || (expandedOnly[e.op] && !cs.expanded) {
		return nil, nil
	}
	if !cs.watches(e.db, e.coll) && !(e.op == "rename" && cs.watches(e.toDB, e.toColl)) {
		return nil, nil
	}
	if cs.coll != "" && e.op == "dropDatabase" {
		return nil, nil
	}
	doc, err := cs.eventDoc(s, e)
	if err != nil {
		return nil, err
	}
	out := []positioned{{key: tokenKey{ts: e.ts, kind: kindEvent, opIndex: e.opIndex}, doc: doc}}
	invalidates := (cs.coll != "" && (e.op == "drop" || e.op == "rename")) || (cs.coll == "" && cs.db != "" && e.op == "dropDatabase")
	if invalidates {
		k := tokenKey{ts: e.ts, kind: kindInvalidate, opIndex: e.opIndex}
		out = append(out, positioned{key: k, doc: query.BuildDoc([]query.Field{
			{Key: "_id", Val: query.DocValue(k.doc())}, {Key: "operationType", Val: query.StringValue("invalidate")},
			{Key: "clusterTime", Val: query.TimestampValue(e.ts)}, {Key: "wallTime", Val: query.DateValue(e.wall.UnixMilli())},
		})})
	}
	return out, nil
}

// watches reports whether the stream covers namespace db.coll (coll empty:
// the database itself). A rename is seen from both of its namespaces, as
// mongod matches the oplog's "o.to" too.
func (cs *changeStream) watches(db, coll string) bool {
	return (cs.db == "" || db == cs.db) && (cs.coll == "" || coll == cs.coll)
}

func (cs *changeStream) eventDoc(s *Server, e *event) (bsoncore.Document, error) {
	docs, err := cs.documentFields(s, e)
	if err != nil {
		return nil, err
	}
	// Appended in place to one buffer of about the event's size: every event a
	// stream returns is built here.
	size := 256 + len(e.db) + len(e.coll) + len(e.docKey) + len(e.opDesc) + len(e.stateBefore) + len(e.lsid)
	for _, f := range docs {
		size += len(f.Key) + len(f.Val.Data) + 2
	}
	if e.updateDesc != nil {
		size += len(e.updateDesc.Doc) + len(e.updateDesc.Disambiguated)
	}
	start, b := bsoncore.AppendDocumentStart(make([]byte, 0, size))
	b = bsoncore.AppendDocumentElement(b, "_id", tokenKey{ts: e.ts, kind: kindEvent, opIndex: e.opIndex}.doc())
	b = bsoncore.AppendStringElement(b, "operationType", e.op)
	b = bsoncore.AppendTimestampElement(b, "clusterTime", e.ts.T, e.ts.I)
	b = bsoncore.AppendDateTimeElement(b, "wallTime", e.wall.UnixMilli())
	if cs.expanded && e.uuid != nil {
		b = bsoncore.AppendBinaryElement(b, "collectionUUID", 4, e.uuid)
	}
	for _, f := range docs {
		b = bsoncore.AppendValueElement(b, f.Key, f.Val)
	}
	ns, b := bsoncore.AppendDocumentElementStart(b, "ns")
	b = bsoncore.AppendStringElement(b, "db", e.db)
	if e.coll != "" {
		b = bsoncore.AppendStringElement(b, "coll", e.coll)
	}
	b, _ = bsoncore.AppendDocumentEnd(b, ns)
	if e.docKey != nil {
		b = bsoncore.AppendDocumentElement(b, "documentKey", e.docKey)
	}
	if e.updateDesc != nil {
		desc := e.updateDesc.Doc
		if cs.expanded { // disambiguatedPaths: MongoDB 6.1+, with showExpandedEvents
			desc = query.BuildDoc(append(query.Fields(desc), query.Field{Key: "disambiguatedPaths", Val: query.DocValue(e.updateDesc.Disambiguated)}))
		}
		b = bsoncore.AppendDocumentElement(b, "updateDescription", desc)
	}
	if e.op == "rename" {
		to := query.BuildDoc([]query.Field{{Key: "db", Val: query.StringValue(e.toDB)}, {Key: "coll", Val: query.StringValue(e.toColl)}})
		b = bsoncore.AppendDocumentElement(b, "to", to)
		if cs.expanded {
			desc := []query.Field{{Key: "to", Val: query.DocValue(to)}}
			if e.dropTarget != nil {
				desc = append(desc, query.Field{Key: "dropTarget", Val: query.UUIDValue(e.dropTarget)})
			}
			b = bsoncore.AppendDocumentElement(b, "operationDescription", query.BuildDoc(desc))
		}
	}
	if e.opDesc != nil && cs.expanded {
		b = bsoncore.AppendDocumentElement(b, "operationDescription", e.opDesc)
	}
	if e.stateBefore != nil {
		b = bsoncore.AppendDocumentElement(b, "stateBeforeChange", e.stateBefore)
	}
	if e.txnNumber != nil {
		b = bsoncore.AppendDocumentElement(b, "lsid", e.lsid)
		b = bsoncore.AppendInt64Element(b, "txnNumber", *e.txnNumber)
	}
	b, _ = bsoncore.AppendDocumentEnd(b, start)
	return b, nil
}

// historyLost is the real server's error for a resume point that has
// fallen off the oplog; drivers must not retry it.
func historyLost() error {
	return &cmdError{code: codeChangeStreamHistoryLost, labels: []string{"NonResumableChangeStreamError"}, labelsSet: true,
		msg: "Executor error during getMore :: caused by :: Resume of change stream was not possible, as the resume point may no longer be in the oplog."}
}

// read returns the next batch (up to n documents, n < 0 meaning no count
// limit, and 16 MiB), advancing the stream's position. Reaching the end of
// the history moves the position to the current cluster time, so an empty
// batch still has an advancing postBatchResumeToken.
func (cs *changeStream) read(s *Server, n int) ([]bsoncore.Document, error) {
	if s.log.gone(cs.pos) {
		return nil, historyLost()
	}
	if n == 0 {
		return nil, nil
	}
	b := fillingBatch{n: n}
	pending := cs.pending
	cs.pending = nil
	if done, err := b.take(cs, pending); err != nil || done {
		return b.docs, err
	}
	events := s.log.events
	for i := s.log.firstAfter(cs.pos); i < len(events); i++ {
		if cs.passed(events[i]) {
			continue
		}
		rendered, err := cs.render(s, events[i])
		if err != nil {
			return nil, err
		}
		for _, r := range rendered {
			docs, err := cs.transform(r)
			if err != nil {
				return nil, err
			}
			if done, err := b.take(cs, docs); done || err != nil {
				return b.docs, err
			}
		}
	}
	if hwm := (tokenKey{ts: s.clock.now(), kind: kindHighWaterMark}); cs.pos.less(hwm) {
		cs.pos = hwm
	}
	return b.docs, nil
}

// fillingBatch is the batch a getMore is filling: up to n documents (n < 0: no count
// limit) and 16 MiB.
type fillingBatch struct {
	n    int
	docs []bsoncore.Document
	size int
}

// take adds to the batch the documents of docs after the stream's position, moving the
// position with them. It returns true when the batch is done: full (the fragments of a
// split event it has no room for are left in cs.pending), or ended by an invalidate.
func (b *fillingBatch) take(cs *changeStream, docs []positioned) (done bool, err error) {
	if err := cs.checkSplitResume(docs); err != nil {
		return true, err
	}
	for j, d := range docs {
		if err := cs.checkResumeToken(d); err != nil {
			return true, err
		}
		if !cs.pos.less(d.key) {
			continue // the resume point, or a fragment before it
		}
		if len(b.docs) > 0 && (b.size+len(d.doc) > maxBatchBytes || (b.n > 0 && len(b.docs) >= b.n)) {
			if d.key.frag > 0 {
				cs.pending = docs[j:]
			}
			return true, nil
		}
		if d.doc != nil {
			b.docs = append(b.docs, d.doc)
			b.size += len(d.doc)
		}
		cs.pos = d.key
		if d.key.kind == kindInvalidate {
			cs.invalidated = true
			return true, nil
		}
	}
	return false, nil
}

// checkSplitResume fails a stream opened at a fragment of a split event when the
// event, rendered again now, does not reach that fragment: no longer split, or split
// into fewer fragments (updateLookup's document changed since). mongod's split stage
// refuses both (change_stream_split_large_event_stage.cpp); when the event splits into
// more fragments, it returns those after the token's.
func (cs *changeStream) checkSplitResume(docs []positioned) error {
	r := cs.resumeFrom
	if r == nil || r.frag == 0 || len(docs) == 0 || docs[0].doc == nil || !sameEvent(docs[0].key, *r) {
		return nil
	}
	switch last := docs[len(docs)-1].key.frag; {
	case last == 0:
		return errorf(codeChangeStreamFatalError, "Attempted to resume from a split event fragment, but the event in the resumed stream was not large enough to be split")
	case last < r.frag:
		return errorf(codeChangeStreamFatalError, "Attempted to resume from a split event, but the resumed stream produced a different split. Ensure that the pipeline used to resume is the same as the original")
	}
	return nil
}

// sameEvent tells whether a and b are positions in one event: equal, or two of its
// fragments, or the event whole and one of its fragments.
func sameEvent(a, b tokenKey) bool { return a.ts == b.ts && a.kind == b.kind && a.opIndex == b.opIndex }

// passed tells whether e is the split event whose last fragment the stream returned:
// rendered again, its document looked up again could split it into more fragments.
func (cs *changeStream) passed(e *event) bool {
	return cs.pos.frag > 0 && cs.resumeFrom == nil && sameEvent(cs.pos, tokenKey{ts: e.ts, kind: kindEvent, opIndex: e.opIndex})
}

// checkResumeToken follows the resume token through the stream's output:
// its event must come before anything after it. Events the stream does not
// return (another namespace, filtered out by $match) do not count, as
// mongod's user $match and namespace filter run before the check.
func (cs *changeStream) checkResumeToken(d positioned) error {
	switch {
	case cs.resumeFrom == nil || d.doc == nil:
	case d.key == *cs.resumeFrom:
		cs.resumeFrom = nil
	case cs.resumeFrom.less(d.key):
		token := cs.resumeFrom.data()
		cs.resumeFrom = nil
		return errorf(codeChangeStreamFatalError, "cannot resume stream; the resume token was not found. {_data: %q}", token)
	}
	return nil
}

// transform runs the stages after $changeStream on one document; a
// filtered-out document still moves the position (doc nil).
func (cs *changeStream) transform(r positioned) ([]positioned, error) {
	doc := r.doc
	token := doc.Index(0).Value().Data // the event's _id, rendered first
	for _, st := range cs.stages {
		out, err := st.Apply([]bsoncore.Document{doc})
		if err != nil {
			return nil, err
		}
		if len(out) == 0 {
			return []positioned{{key: r.key}}, nil
		}
		doc = out[0]
	}
	// Unmodified means byte for byte: a resume token is {_data: <string>}, which no
	// other encoding can equal.
	if id, err := doc.LookupErr("_id"); err != nil || id.Type != bsoncore.TypeEmbeddedDocument || !bytes.Equal(id.Data, token) {
		return nil, errorf(codeChangeStreamFatalError, "Encountered an event whose _id field, which contains the resume token, was modified by the pipeline. Modifying the _id field of an event makes it impossible to resume the stream from that point. Only transformations that retain the unmodified _id field are allowed.")
	}
	switch {
	case cs.split && len(doc) <= maxChangeEventSize, !cs.split && len(doc) <= maxInternalObjectSize:
		return []positioned{{key: r.key, doc: doc}}, nil
	case !cs.split:
		return nil, errorf(codeBSONObjectTooLarge, "Executor error during getMore :: caused by :: BSONObj size: %d (0x%X) is invalid. Size must be between 0 and %d(16MB) First element: _id: %s", len(doc), len(doc), maxInternalObjectSize, doc.Lookup("_id"))
	}
	return splitEvent(r.key, doc)
}

// Event size limits of mongod: a BSON object it builds may reach
// BSONObjMaxInternalSize (16 MiB + 16 KiB), so a change stream delivers an
// event up to that size; $changeStreamSplitLargeEvent splits one over
// kBSONObjMaxChangeEventSize (BSONObjMaxInternalSize - 8 KiB), leaving room
// for the postBatchResumeToken in the reply (mongo src/mongo/bson/util/builder.h,
// src/mongo/db/pipeline/document_source_change_stream_split_large_event.h).
const (
	maxInternalObjectSize = maxBSONObjectSize + 16<<10
	maxChangeEventSize    = maxInternalObjectSize - 8<<10
)

// splitEvent cuts an event over maxChangeEventSize into fragments, as
// $changeStreamSplitLargeEvent does (MongoDB 7.0,
// https://www.mongodb.com/docs/manual/reference/operator/aggregation/changeStreamSplitLargeEvent/,
// mongod's change_stream_split_event_helpers.cpp): the top-level fields but
// _id, smallest first (by size, then name), packed greedily into fragments
// of at most maxChangeEventSize less the token's size, each with its own
// resume token and splitEvent {fragment, of}. mongod's tokens are longer than
// these, so fragment boundaries can differ by the difference.
func splitEvent(key tokenKey, doc bsoncore.Document) ([]positioned, error) {
	fields := query.Fields(doc)[1:]
	size := func(f query.Field) int { return 1 + len(f.Key) + 1 + len(f.Val.Data) }
	slices.SortStableFunc(fields, func(a, b query.Field) int {
		if c := cmp.Compare(size(a), size(b)); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	limit := maxChangeEventSize - len(key.doc())
	var groups [][]query.Field
	for len(fields) > 0 {
		// The fragment's _id and splitEvent, and the token again as mongod
		// counts its sort key.
		used := len(fragmentDoc(key, 1, 1, nil)) + len(key.doc())
		n := 0
		for n < len(fields) && (n == 0 || used+size(fields[n]) <= limit) {
			used += size(fields[n])
			n++
		}
		if used > limit {
			return nil, errorf(7182500, "Executor error during getMore :: caused by :: Splitting change event failed: fragment size %d is greater than maximum allowed fragment size %d", used, limit)
		}
		groups = append(groups, fields[:n])
		fields = fields[n:]
	}
	out := make([]positioned, len(groups))
	for i, g := range groups {
		k := key
		k.frag = uint16(i + 1)
		out[i] = positioned{key: k, doc: fragmentDoc(k, i+1, len(groups), g)}
	}
	return out, nil
}

func fragmentDoc(k tokenKey, fragment, of int, fields []query.Field) bsoncore.Document {
	split := query.BuildDoc([]query.Field{{Key: "fragment", Val: query.Int32Value(int32(fragment))}, {Key: "of", Val: query.Int32Value(int32(of))}})
	return query.BuildDoc(append([]query.Field{{Key: "_id", Val: query.DocValue(k.doc())}, {Key: "splitEvent", Val: query.DocValue(split)}}, fields...))
}

// streamGetMore waits (awaitData) up to maxTimeMS, one second by default as
// on the real server, for events, then returns what it has.
func (cx *cmdCtx) streamGetMore(c *cursor, batchSize int) (bson.D, error) {
	cs := c.stream
	if cs.busy {
		return nil, errorf(292, "Cursor id %d is already in use", c.id)
	}
	wait := time.Second
	if ms, ok, err := cx.intArg("maxTimeMS"); err != nil {
		return nil, err
	} else if ok && ms > 0 {
		wait = time.Duration(ms) * time.Millisecond
	}
	deadline := time.Now().Add(wait)
	if batchSize == 0 {
		batchSize = -1 // getMore without batchSize: as many as fit
	}
	cs.busy = true
	defer func() { cs.busy = false }()
	for {
		batch, err := cs.read(cx.s, batchSize)
		if err != nil {
			delete(cx.s.cursors.open, c.id)
			return nil, err
		}
		if len(batch) > 0 || cs.invalidated || !cx.waitForChange(deadline) || cx.s.cursors.open[c.id] != c {
			return cx.streamBatch(c, "nextBatch", batch), nil
		}
	}
}

func (cx *cmdCtx) streamBatch(c *cursor, field string, batch []bsoncore.Document) bson.D {
	id := c.id
	if c.stream.invalidated || cx.s.cursors.open[c.id] != c {
		delete(cx.s.cursors.open, c.id)
		id = 0
	}
	return cursorReply(id, c.ns, field, batch, c.stream.pos.doc())
}
