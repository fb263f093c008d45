package mongotest

import (
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// cursor is an open server cursor: query results waiting to be fetched, or
// a change stream. Guarded by Server.mu.
type cursor struct {
	id     int64
	ns     string
	docs   []bsoncore.Document // remaining results of a query
	stream *changeStream
	// lastUsed is when a command last used the cursor: idle longer than the
	// cursor timeout, it dies, unless noTimeout (find's noCursorTimeout).
	lastUsed  time.Time
	noTimeout bool
	// budget is what is left of the maxTimeMS of the command that opened the
	// cursor, for its getMores; zero: no limit.
	budget time.Duration
}

type cursorTable struct {
	open    map[int64]*cursor
	next    int64
	timeout time.Duration
}

func (t *cursorTable) init(timeout time.Duration) {
	t.open = map[int64]*cursor{}
	t.next = 1 << 32 // ids stay clear of small integers tests might guess
	t.timeout = timeout
}

// add registers c, first closing the cursors that timed out, as mongod's
// cursor monitor does (cursorTimeoutMillis).
func (t *cursorTable) add(c *cursor) {
	now := time.Now()
	for id, old := range t.open {
		if t.expired(old, now) {
			delete(t.open, id)
		}
	}
	t.next++
	c.id, c.lastUsed = t.next, now
	t.open[c.id] = c
}

func (t *cursorTable) expired(c *cursor, now time.Time) bool {
	return !c.noTimeout && (c.stream == nil || !c.stream.busy) && now.Sub(c.lastUsed) > t.timeout
}

// get returns the open cursor id, nil if there is none or it timed out.
func (t *cursorTable) get(id int64) *cursor {
	c := t.open[id]
	if c != nil && t.expired(c, time.Now()) {
		delete(t.open, id)
		return nil
	}
	return c
}

// Default batch sizes of the real server: 101 documents in the first batch,
// then as many as fit in 16 MiB.
const (
	defaultFirstBatch = 101
	maxBatchBytes     = maxBSONObjectSize
)

// takeBatch splits off the next batch: up to n documents (n <= 0: no count
// limit) and 16 MiB, but always at least one document so a large one can pass.
func takeBatch(docs []bsoncore.Document, n int) (batch, rest []bsoncore.Document) {
	size := 0
	i := 0
	for ; i < len(docs); i++ {
		if n > 0 && i >= n {
			break
		}
		size += len(docs[i])
		if i > 0 && size > maxBatchBytes {
			break
		}
	}
	return docs[:i], docs[i:]
}

// cursorReply is the {cursor: {...}} field of find, aggregate, list* and
// getMore replies, with a change stream's resumeToken (nil for other cursors).
// A zero id means the cursor is exhausted.
func cursorReply(id int64, ns, batchField string, batch []bsoncore.Document, resumeToken bsoncore.Document) bson.D {
	// Built in BSON at its size, the batch copied in once: through the encoder a
	// getMore's megabytes would be walked document by document and copied again.
	size := 64 + len(ns) + len(resumeToken)
	for i, d := range batch {
		size += 1 + digits(i) + 1 + len(d)
	}
	start, c := bsoncore.AppendDocumentStart(make([]byte, 0, size))
	array, c := bsoncore.AppendArrayElementStart(c, batchField)
	for i, d := range batch {
		c = append(strconv.AppendInt(append(c, byte(bsoncore.TypeEmbeddedDocument)), int64(i), 10), 0) // the key: the index
		c = append(c, d...)
	}
	c, _ = bsoncore.AppendArrayEnd(c, array)
	c = bsoncore.AppendInt64Element(c, "id", id)
	c = bsoncore.AppendStringElement(c, "ns", ns)
	if resumeToken != nil {
		c = bsoncore.AppendDocumentElement(c, "postBatchResumeToken", resumeToken)
	}
	c, _ = bsoncore.AppendDocumentEnd(c, start)
	return bson.D{{Key: "cursor", Value: bson.Raw(c)}}
}

// digits is the length of i (not negative) in decimal.
func digits(i int) int {
	n := 1
	for ; i >= 10; i /= 10 {
		n++
	}
	return n
}

// batchSizeOf validates a batchSize value; absent means "not given".
func batchSizeOf(field string, v bsoncore.Value) (int, bool, error) {
	if v.Type == 0 {
		return 0, false, nil
	}
	n, err := query.AsInt(field, v)
	if err != nil {
		return 0, false, err
	}
	if n < 0 {
		return 0, false, errorf(codeBadValue, "BSON field '%s' value must be >= 0, actual value '%d'", field, n)
	}
	return int(n), true, nil
}

// cursorBatchSize reads the batchSize in the command's cursor option
// (aggregate, listCollections, listIndexes); absent means "not given".
func (cx *cmdCtx) cursorBatchSize() (int, bool, error) {
	opt, err := cx.docArg("cursor")
	if err != nil {
		return 0, false, err
	}
	return batchSizeOf(cx.name+".cursor.batchSize", opt.Lookup("batchSize"))
}

// openCursor returns the first batch of results and keeps the rest, if
// any, in a new cursor.
func (cx *cmdCtx) openCursor(ns string, docs []bsoncore.Document, batchSize int, hasBatchSize, single bool) bson.D {
	n := defaultFirstBatch
	if hasBatchSize {
		n = batchSize
	}
	var batch, rest []bsoncore.Document
	if hasBatchSize && n == 0 {
		rest = docs
	} else {
		batch, rest = takeBatch(docs, n)
	}
	var id int64
	if len(rest) > 0 && !single {
		c := &cursor{ns: ns, docs: rest}
		c.noTimeout, _ = cx.boolArg("noCursorTimeout")
		if !cx.deadline.IsZero() {
			c.budget = max(time.Until(cx.deadline), time.Nanosecond)
		}
		cx.s.cursors.add(c)
		id = c.id
	}
	return cursorReply(id, ns, "firstBatch", batch, nil)
}

var cursorCommands = map[string]command{
	"getMore":     {run: getMore, fields: []string{"collection", "batchSize"}},
	"killCursors": {run: killCursors, fields: []string{"cursors"}},
}

func getMore(cx *cmdCtx) (bson.D, error) {
	id, ok := cx.arg.Int64OK()
	if !ok {
		return nil, typeError("getMore", cx.arg, "long")
	}
	coll, _ := cx.body.Lookup("collection").StringValueOK()
	batchSize, _, err := batchSizeOf("getMore.batchSize", cx.body.Lookup("batchSize"))
	if err != nil {
		return nil, err
	}
	c := cx.s.cursors.get(id)
	if c == nil {
		return nil, errorf(codeCursorNotFound, "cursor id %d not found", id)
	}
	if c.ns != cx.db+"."+coll {
		return nil, errorf(codeUnauthorized, "Requested getMore on namespace '%s.%s', but cursor belongs to a different namespace %s", cx.db, coll, c.ns)
	}
	defer func() { c.lastUsed = time.Now() }()
	if act := cx.s.failGetMore.check("getMore", cx.c.appName); act.err != nil {
		delete(cx.s.cursors.open, id) // a failed getMore kills its cursor
		return nil, act.err
	}
	if c.stream != nil {
		return cx.streamGetMore(c, batchSize)
	}
	if _, ok := cx.field("maxTimeMS"); ok {
		return nil, errorf(codeBadValue, "cannot set maxTimeMS on getMore command for a non-awaitData cursor")
	}
	batch, rest := takeBatch(c.docs, batchSize)
	c.docs = rest
	if len(rest) == 0 {
		delete(cx.s.cursors.open, id)
		id = 0
	}
	return cursorReply(id, c.ns, "nextBatch", batch, nil), nil
}

func killCursors(cx *cmdCtx) (bson.D, error) {
	if cx.arg.Type != bsoncore.TypeString { // may name "$cmd.aggregate" and the like
		return nil, typeError("killCursors", cx.arg, "string")
	}
	ids, err := cx.arrayArg("cursors")
	if err != nil {
		return nil, err
	}
	var killed, notFound bson.A
	for _, v := range ids {
		id, ok := v.Int64OK()
		if !ok {
			return nil, typeError("killCursors.cursors", v, "long")
		}
		if _, open := cx.s.cursors.open[id]; open {
			delete(cx.s.cursors.open, id)
			killed = append(killed, id)
		} else {
			notFound = append(notFound, id)
		}
	}
	return bson.D{
		{Key: "cursorsKilled", Value: append(bson.A{}, killed...)},
		{Key: "cursorsNotFound", Value: append(bson.A{}, notFound...)},
		{Key: "cursorsAlive", Value: bson.A{}},
		{Key: "cursorsUnknown", Value: bson.A{}},
	}, nil
}
