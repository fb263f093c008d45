package mongotest

import (
	"encoding/binary"
	"encoding/hex"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// event is one change in the server's history: the fake's oplog entry.
type event struct {
	ts bson.Timestamp
	// opIndex orders events that share ts: the statements of a transaction
	// or of a batched write, one applyOps oplog entry on mongod (its
	// txnOpIndex).
	opIndex uint32
	wall    time.Time
	op      string // change stream operationType
	db      string
	coll    string // empty for dropDatabase
	uuid    []byte
	// Depending on op:
	docKey      bsoncore.Document
	fullDoc     bsoncore.Document  // insert, replace
	updateDesc  *query.Description // update
	opDesc      bsoncore.Document  // create, createIndexes, dropIndexes, modify
	stateBefore bsoncore.Document  // modify
	toDB        string             // rename
	toColl      string
	dropTarget  []byte // rename: the UUID of the collection it replaced
	// The session of a transaction's write (or of an 8.0 batched retryable
	// insert): mongod puts them on those events only.
	lsid      bsoncore.Document
	txnNumber *int64
	// The document before and after the write, kept when the collection has
	// changeStreamPreAndPostImages (update: both; replace, delete: before).
	preImage, postImage bsoncore.Document
}

// changeLog is the bounded history change streams read and resume from.
type changeLog struct {
	capacity int
	events   []*event
	// lost is the first position still resumable, at the oplog's first entry:
	// anything before it was evicted or truncated (or predates the server).
	lost tokenKey
	// floorMsg and floorWall describe the no-op entry at lost while no event is
	// there: the set's initiation, or a truncation (the oplog's first entry).
	floorMsg  string
	floorWall time.Time
	// truncated is set once the oplog no longer starts with the set's initiation:
	// only then is a position before lost gone. Before, nothing happened before it,
	// and mongod lets a stream start there (it checks for history lost only once the
	// oplog has been truncated: oplogHasBeenTruncated in mongodb/mongo; SERVER-50903).
	truncated bool
}

// gone tells whether the history no longer holds pos.
func (l *changeLog) gone(pos tokenKey) bool { return l.truncated && pos.less(l.lost) }

// recordLocked gives e the next cluster time and appends it to the history;
// in a transaction, it keeps e for the commit.
func (s *Server) recordLocked(cx *cmdCtx, e *event) {
	if cx != nil && cx.txn != nil {
		cx.txn.events = append(cx.txn.events, e)
		return
	}
	e.ts = s.tickLocked()
	e.wall = time.Now()
	s.log.append(e)
}

// recordBatchLocked records events written as one applyOps oplog entry
// (mongod's batched writes): one cluster time, each with its index.
func (s *Server) recordBatchLocked(cx *cmdCtx, events []*event) {
	if cx != nil && cx.txn != nil || len(events) == 1 {
		for _, e := range events {
			s.recordLocked(cx, e)
		}
		return
	}
	ts, wall := s.tickLocked(), time.Now()
	for i, e := range events {
		e.ts, e.wall, e.opIndex = ts, wall, uint32(i)
		s.log.append(e)
	}
}

// append adds an event with its time to the history, evicting the oldest
// ones beyond the capacity.
func (l *changeLog) append(e *event) {
	l.events = append(l.events, e)
	over := len(l.events) - l.capacity
	if over <= 0 {
		return
	}
	// Events that share a cluster time are one oplog entry: evicted together.
	for over < len(l.events) && l.events[over].ts == l.events[over-1].ts {
		over++
	}
	if over == len(l.events) {
		over-- // keep the newest entry whatever its size
		for over > 0 && l.events[over-1].ts == l.events[over].ts {
			over--
		}
		if over == 0 {
			return
		}
	}
	// As on the real server, a position before the oldest entry left is
	// lost, even if no event of its stream went with the evicted ones.
	l.lost = tokenKey{ts: l.events[over].ts, kind: kindStartAt}
	l.truncated = true
	// Slicing off the front, not copying the rest, keeps an insert O(1) on a
	// full history (a copy cost ~1 ms per event at 100,000): append moves the
	// window to a new array only when it outgrows the old one.
	clear(l.events[:over])
	l.events = l.events[over:]
}

// TruncateHistory forgets every change so far, as if the oplog had rolled
// over: resuming from any token or time issued until now fails with
// ChangeStreamHistoryLost. The oplog's first entry is then a no-op written now.
// A real server offers no such command.
func (s *Server) TruncateHistory() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.events = nil
	s.log.startAt(s.tickLocked(), noopPeriodic, s.clock.wall)
	s.log.truncated = true
}

// startAt makes the no-op entry at ts the oplog's first: the history starts there,
// and a stream may start at its time (startAtOperationTime ts).
func (l *changeLog) startAt(ts bson.Timestamp, msg string, wall time.Time) {
	l.lost = tokenKey{ts: ts, kind: kindStartAt}
	l.floorMsg, l.floorWall = msg, wall
}

// firstAfter is the index of the first event whose own position is after pos.
func (l *changeLog) firstAfter(pos tokenKey) int {
	return sort.Search(len(l.events), func(i int) bool {
		ts := l.events[i].ts
		return tsLess(pos.ts, ts) || (ts == pos.ts && pos.kind < kindHighWaterMark)
	})
}

// tokenKey is a position in the history. Resume tokens encode it as a hex
// string in {_data: ...} like the real server's, ordered the same way as
// the positions: by cluster time, then kind, then fragment.
type tokenKey struct {
	ts      bson.Timestamp
	kind    byte
	opIndex uint32 // the event's place among those sharing ts
	frag    uint16 // 1-based fragment of a split event, 0 if whole
}

const (
	kindStartAt       byte = 0x00 // before everything at ts (startAtOperationTime)
	kindEvent         byte = 0x01
	kindInvalidate    byte = 0x02
	kindHighWaterMark byte = 0xFF // after everything at ts (postBatchResumeToken)
)

func (k tokenKey) less(o tokenKey) bool {
	if k.ts != o.ts {
		return tsLess(k.ts, o.ts)
	}
	if k.kind != o.kind {
		return k.kind < o.kind
	}
	if k.opIndex != o.opIndex {
		return k.opIndex < o.opIndex
	}
	return k.frag < o.frag
}

// tokenVersion prefixes our tokens (the real server's start with "82" too,
// its KeyString type byte for a Timestamp).
const tokenVersion = "82"

// tokenBytes is the length of a token's binary form.
const tokenBytes = 8 + 1 + 4 + 2

// data is the token's _data: the version, then the timestamp, kind, index
// and fragment as upper-case hex, fixed-width so that tokens compare as
// strings in the order of their positions. Built without fmt: every change
// event has one.
func (k tokenKey) data() string {
	var raw [tokenBytes]byte
	binary.BigEndian.PutUint32(raw[0:], k.ts.T)
	binary.BigEndian.PutUint32(raw[4:], k.ts.I)
	raw[8] = k.kind
	binary.BigEndian.PutUint32(raw[9:], k.opIndex)
	binary.BigEndian.PutUint16(raw[13:], k.frag)
	return tokenVersion + strings.ToUpper(hex.EncodeToString(raw[:]))
}

func (k tokenKey) doc() bsoncore.Document {
	data := k.data()
	// One allocation of the exact size: every change event carries one.
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, 4+1+len("_data")+1+4+len(data)+1+1))
	b = bsoncore.AppendStringElement(b, "_data", data)
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

func parseToken(v bsoncore.Value) (tokenKey, error) {
	bad := errorf(codeInvalidResumeToken, "mongotest: invalid resume token %s", v)
	d, ok := v.DocumentOK()
	if !ok {
		return tokenKey{}, bad
	}
	s, ok := d.Lookup("_data").StringValueOK()
	if !ok || len(s) != len(tokenVersion)+2*tokenBytes || s[:len(tokenVersion)] != tokenVersion {
		return tokenKey{}, bad
	}
	raw, err := hex.DecodeString(s[len(tokenVersion):])
	if err != nil {
		return tokenKey{}, bad
	}
	be := binary.BigEndian
	k := tokenKey{ts: bson.Timestamp{T: be.Uint32(raw[0:]), I: be.Uint32(raw[4:])}, kind: raw[8],
		opIndex: be.Uint32(raw[9:]), frag: be.Uint16(raw[13:])}
	switch k.kind {
	case kindEvent, kindInvalidate, kindHighWaterMark:
		return k, nil
	}
	return tokenKey{}, bad
}
