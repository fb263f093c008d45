package mongotest

import (
	"encoding/binary"
	"encoding/hex"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// event is one change in the server's history: the fake's oplog entry.
type event struct {
	ts   bson.Timestamp
	wall time.Time
	op   string // change stream operationType
	db   string
	coll string // empty for dropDatabase
	uuid []byte
	// Depending on op:
	docKey     bsoncore.Document
	fullDoc    bsoncore.Document // insert, replace
	updateDesc bsoncore.Document // update
	opDesc     bsoncore.Document // create, createIndexes, dropIndexes
	toDB       string            // rename
	toColl     string
	// The session of the write, carried to events as the real server does
	// for retryable writes and transactions.
	lsid      bsoncore.Document
	txnNumber *int64
}

// changeLog is the bounded history change streams read and resume from.
type changeLog struct {
	capacity int
	events   []*event
	// lost is the first position still resumable: anything before it was
	// evicted or truncated (or predates the server).
	lost tokenKey
}

// recordLocked gives e the next cluster time and appends it to the history.
func (s *Server) recordLocked(cx *cmdCtx, e *event) {
	e.ts = s.tickLocked()
	e.wall = time.Now()
	if cx != nil && cx.txnNumber != nil {
		e.lsid, e.txnNumber = cx.lsid, cx.txnNumber
	}
	l := &s.log
	l.events = append(l.events, e)
	if over := len(l.events) - l.capacity; over > 0 {
		// As on the real server, a position before the oldest entry left is
		// lost, even if no event of its stream went with the evicted ones.
		l.lost = tokenKey{ts: l.events[over].ts, kind: kindStartAt}
		// Slicing off the front, not copying the rest, keeps an insert O(1) on a
		// full history (a copy cost ~1 ms per event at 100,000): append moves the
		// window to a new array only when it outgrows the old one.
		clear(l.events[:over])
		l.events = l.events[over:]
	}
}

// TruncateHistory forgets every change so far, as if the oplog had rolled
// over: resuming from any token or time issued until now fails with
// ChangeStreamHistoryLost. A real server offers no such command.
func (s *Server) TruncateHistory() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.events = nil
	s.log.lost = tokenKey{ts: s.tickLocked(), kind: kindHighWaterMark}
}

// firstAfter is the index of the first event whose own position is after pos.
func (l *changeLog) firstAfter(pos tokenKey) int {
	return sort.Search(len(l.events), func(i int) bool {
		ts := l.events[i].ts
		return tsLess(pos.ts, ts) || (ts == pos.ts && pos.kind < kindHighWaterMark)
	})
}

func (l *changeLog) at(ts bson.Timestamp) *event {
	i := sort.Search(len(l.events), func(i int) bool { return !tsLess(l.events[i].ts, ts) })
	if i < len(l.events) && l.events[i].ts == ts {
		return l.events[i]
	}
	return nil
}

// tokenKey is a position in the history. Resume tokens encode it as a hex
// string in {_data: ...} like the real server's, ordered the same way as
// the positions: by cluster time, then kind, then fragment.
type tokenKey struct {
	ts   bson.Timestamp
	kind byte
	frag uint16 // 1-based fragment of a split event, 0 if whole
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
	return k.frag < o.frag
}

// tokenVersion prefixes our tokens (the real server's start with "82" too,
// its KeyString type byte for a Timestamp).
const tokenVersion = "82"

// data is the token's _data: the version, then the timestamp, kind and fragment as
// upper-case hex. Built without fmt: every change event has one.
func (k tokenKey) data() string {
	var raw [11]byte
	binary.BigEndian.PutUint32(raw[0:], k.ts.T)
	binary.BigEndian.PutUint32(raw[4:], k.ts.I)
	raw[8] = k.kind
	binary.BigEndian.PutUint16(raw[9:], k.frag)
	return tokenVersion + strings.ToUpper(hex.EncodeToString(raw[:]))
}

func (k tokenKey) doc() bsoncore.Document {
	return buildDoc([]field{{"_data", stringValue(k.data())}})
}

func parseToken(v bsoncore.Value) (tokenKey, error) {
	bad := errorf(codeInvalidResumeToken, "mongotest: invalid resume token %s", v)
	d, ok := v.DocumentOK()
	if !ok {
		return tokenKey{}, bad
	}
	s, ok := d.Lookup("_data").StringValueOK()
	if !ok || len(s) != 2+8+8+2+4 || s[:2] != tokenVersion {
		return tokenKey{}, bad
	}
	raw, err := hex.DecodeString(s[2:])
	if err != nil {
		return tokenKey{}, bad
	}
	be := func(b []byte) uint32 { return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) }
	k := tokenKey{ts: bson.Timestamp{T: be(raw[0:4]), I: be(raw[4:8])}, kind: raw[8], frag: uint16(raw[9])<<8 | uint16(raw[10])}
	switch k.kind {
	case kindEvent, kindInvalidate, kindHighWaterMark:
		return k, nil
	}
	return tokenKey{}, bad
}
