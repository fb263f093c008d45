package mongotest

import (
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
}

type cursorTable struct {
	open map[int64]*cursor
	next int64
}

func (t *cursorTable) init() {
	t.open = map[int64]*cursor{}
	t.next = 1 << 32 // ids stay clear of small integers tests might guess
}

func (t *cursorTable) add(c *cursor) {
	t.next++
	c.id = t.next
	t.open[c.id] = c
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
// getMore replies. A zero id means the cursor is exhausted.
func cursorReply(id int64, ns, batchField string, batch []bsoncore.Document, extra ...bson.E) bson.D {
	arr := make(bson.A, len(batch))
	for i, d := range batch {
		arr[i] = bson.Raw(d)
	}
	c := bson.D{{Key: batchField, Value: arr}, {Key: "id", Value: id}, {Key: "ns", Value: ns}}
	return bson.D{{Key: "cursor", Value: append(c, extra...)}}
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
		cx.s.cursors.add(c)
		id = c.id
	}
	return cursorReply(id, ns, "firstBatch", batch)
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
	c := cx.s.cursors.open[id]
	if c == nil {
		return nil, errorf(codeCursorNotFound, "cursor id %d not found", id)
	}
	if c.ns != cx.db+"."+coll {
		return nil, errorf(codeUnauthorized, "Requested getMore on namespace '%s.%s', but cursor belongs to a different namespace %s", cx.db, coll, c.ns)
	}
	if c.stream != nil {
		return cx.streamGetMore(c, batchSize)
	}
	batch, rest := takeBatch(c.docs, batchSize)
	c.docs = rest
	if len(rest) == 0 {
		delete(cx.s.cursors.open, id)
		id = 0
	}
	return cursorReply(id, c.ns, "nextBatch", batch), nil
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
