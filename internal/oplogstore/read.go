package oplogstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Event is one change event as the store holds it, whole: an oversized event's parts
// joined, a split event's fragments merged. Values are the store's own bytes; a field
// the event lacks (or the store keeps as null) is nil.
type Event struct {
	Token  string         // the resume token's _data: with TS, the event's place in the stream
	TS     bson.Timestamp // clusterTime
	OpType string
	// DB and Coll are the namespace; Coll is empty for a database's events.
	DB, Coll             string
	DocKey               bson.Raw
	FullDocument         bson.Raw
	UpdateDescription    bson.Raw
	To                   bson.Raw // rename target {db, coll}
	OperationDescription bson.Raw
	Lsid                 bson.Raw
	TxnNumber            int64
	HasTxnNumber         bool
	CollectionUUID       []byte
	// Fragments is how many store documents of a split event were merged (1 when the
	// event was not split); Bytes, how many bytes of the store it was read from.
	Fragments int
	Bytes     int
}

// Namespace is "db.coll", or "db" for a database's events.
func (e *Event) Namespace() string {
	if e.Coll == "" {
		return e.DB
	}
	return e.DB + "." + e.Coll
}

// SplitNamespace reads a store's ns: "db.coll" (a database name has no dot, so the
// first one separates), "db" for our database events, and "db." for the old collector's
// (it always wrote db + "." + coll, with coll empty).
func SplitNamespace(ns string) (db, coll string) {
	db, coll, _ = strings.Cut(ns, ".")
	return db, coll
}

// ErrIncompleteEvent is a split or oversized event of which the store lacks a piece.
var ErrIncompleteEvent = errors.New("incomplete event in the store")

// EventReader reads a source's events in stream order: by ts (the {cluster_name: 1,
// ts: 1} index), and within one ts by the resume token's _data. A server's _data is
// the upper-case hex of a KeyString whose values, after the cluster time, are the
// transaction operation index, the collection UUID, the document key and the fragment
// number: KeyStrings compare as bytes in the order the server emits events, and hex of
// one case keeps byte order, so string order is stream order. Events of one
// transaction share a ts and come in their order inside it; the fragments of a split
// event share a ts too, and are consecutive.
type EventReader struct {
	cursor *mongo.Cursor
	ready  []Event // one ts's events, in order
	next   storeDoc
	err    error
	// arena holds the copies of the cursor's documents (Current is valid until the
	// next batch), many to an allocation.
	arena []byte
	names interner
}

// storeDoc is a store document with what grouping and ordering read of it.
type storeDoc struct {
	raw   bson.Raw
	ts    bson.Timestamp
	token string
	// whole: neither a part of an oversized document nor a fragment of a split event.
	whole bool
}

// ReadEvents opens source's events with after < ts <= upTo (after nil: from the oldest).
// Close the reader when done.
func ReadEvents(ctx context.Context, db *mongo.Database, source string, after *bson.Timestamp, upTo bson.Timestamp) (*EventReader, error) {
	return ReadEventsWhere(ctx, db, source, after, upTo, nil)
}

// ReadEventsWhere is ReadEvents of the events that also match where (conditions on the
// store's fields, such as the operation type).
func ReadEventsWhere(ctx context.Context, db *mongo.Database, source string, after *bson.Timestamp, upTo bson.Timestamp, where bson.D) (*EventReader, error) {
	cursor, err := db.Collection(EventsCollection(source)).Find(ctx, append(RangeFilter(source, after, upTo), where...),
		options.Find().SetSort(bson.D{{Key: FieldClusterName, Value: 1}, {Key: FieldTS, Value: 1}}).
			// A store the old collector alone has written has no index to sort by.
			SetAllowDiskUse(true).
			// Whole batches from the start: the server's first batch is 101 documents
			// otherwise, then 16 MiB.
			SetBatchSize(readBatchSize))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", EventsCollection(source), err)
	}
	return &EventReader{cursor: cursor, names: interner{}}, nil
}

// readBatchSize is the number of documents asked for each batch; the server stops a
// batch at 16 MiB before that.
const readBatchSize = 10000

// RangeFilter selects source's events with after < ts <= upTo (after nil: no lower bound).
func RangeFilter(source string, after *bson.Timestamp, upTo bson.Timestamp) bson.D {
	ts := bson.D{{Key: "$lte", Value: upTo}}
	if after != nil {
		ts = append(bson.D{{Key: "$gt", Value: *after}}, ts...)
	}
	return bson.D{{Key: FieldClusterName, Value: source}, {Key: FieldTS, Value: ts}}
}

// Close releases the server's cursor.
func (r *EventReader) Close(ctx context.Context) error { return r.cursor.Close(ctx) }

// Next returns the next event, io.EOF after the last.
func (r *EventReader) Next(ctx context.Context) (Event, error) {
	for len(r.ready) == 0 {
		if r.err != nil {
			return Event{}, r.err
		}
		r.err = r.readTS(ctx)
	}
	e := r.ready[0]
	r.ready = r.ready[1:]
	return e, nil
}

// arenaChunk is the size of the allocations the documents are copied into.
const arenaChunk = 1 << 20

// keep copies doc into the arena.
func (r *EventReader) keep(doc bson.Raw) bson.Raw {
	if len(r.arena)+len(doc) > cap(r.arena) {
		r.arena = make([]byte, 0, max(arenaChunk, len(doc)))
	}
	start := len(r.arena)
	r.arena = append(r.arena, doc...)
	return r.arena[start:len(r.arena):len(r.arena)]
}

// readTS reads the store documents of the next ts and puts their events in ready. It
// returns io.EOF when there are none left.
func (r *EventReader) readTS(ctx context.Context) error {
	var group []storeDoc
	if r.next.raw != nil {
		group, r.next = append(group, r.next), storeDoc{}
	}
	for r.cursor.Next(ctx) {
		doc := readStoreDoc(r.keep(r.cursor.Current))
		if len(group) > 0 && doc.ts != group[0].ts {
			r.next = doc
			break
		}
		group = append(group, doc)
	}
	if err := r.cursor.Err(); err != nil {
		return fmt.Errorf("reading the store: %w", err)
	}
	if len(group) == 0 {
		return io.EOF
	}
	events, err := r.eventsOf(group)
	if err != nil {
		return err
	}
	r.ready = events
	return nil
}

// readStoreDoc reads a document's ts, token and whether it is whole, in one pass.
func readStoreDoc(raw bson.Raw) storeDoc {
	d := storeDoc{raw: raw, whole: true}
	_ = eachField(raw, func(key []byte, v bsoncore.Value) {
		switch string(key) {
		case FieldTS:
			d.ts.T, d.ts.I, _ = v.TimestampOK()
		case FieldResumeToken:
			if token, ok := v.DocumentOK(); ok {
				d.token, _ = token.Lookup("_data").StringValueOK()
			}
		case FieldPart, FieldSplitEvent:
			d.whole = false
		}
	})
	return d
}

// eachField calls fn with each top-level field of doc, without copying.
func eachField(doc []byte, fn func(key []byte, v bsoncore.Value)) error {
	if len(doc) < 5 {
		return errors.New("a document shorter than 5 bytes")
	}
	rest := doc[4 : len(doc)-1]
	for len(rest) > 0 {
		el, next, ok := bsoncore.ReadElement(rest)
		if !ok {
			return errors.New("a malformed element")
		}
		v, err := el.ValueErr()
		if err != nil {
			return err
		}
		fn(el.KeyBytes(), v)
		rest = next
	}
	return nil
}

// eventsOf turns the store documents of one ts into events in stream order.
func (r *EventReader) eventsOf(group []storeDoc) ([]Event, error) {
	whole := true
	for _, d := range group {
		whole = whole && d.whole
	}
	if !whole {
		docs := make([]bson.Raw, len(group))
		for i, d := range group {
			docs[i] = d.raw
		}
		return eventsOf(docs, r.names)
	}
	slices.SortStableFunc(group, func(a, b storeDoc) int { return strings.Compare(a.token, b.token) })
	events := make([]Event, 0, len(group))
	for i, d := range group {
		if i > 0 && d.token == group[i-1].token && d.token != "" {
			continue // the old collector wrote a batch again after a crash, under new ObjectIds
		}
		e, err := decodeEvent([]bson.Raw{d.raw}, d.token, r.names)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	return events, nil
}

// eventsOf turns the store documents of one ts, some of them parts or fragments, into
// events in stream order.
func eventsOf(docs []bson.Raw, names interner) ([]Event, error) {
	docs, err := joinParts(docs)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(docs, func(a, b bson.Raw) int { return strings.Compare(tokenData(a), tokenData(b)) })
	var events []Event
	for i := 0; i < len(docs); i++ {
		if i > 0 && tokenData(docs[i]) == tokenData(docs[i-1]) && tokenData(docs[i]) != "" {
			continue // the old collector wrote a batch again after a crash, under new ObjectIds
		}
		k, n := fragment(docs[i])
		if n <= 1 {
			e, err := decodeEvent([]bson.Raw{docs[i]}, tokenData(docs[i]), names)
			if err != nil {
				return nil, err
			}
			events = append(events, e)
			continue
		}
		if k != 1 {
			return nil, fmt.Errorf("%w: fragment %d of %d of a split event at ts %s (token %s) without fragment 1 before it",
				ErrIncompleteEvent, k, n, formatTS(docs[i]), tokenData(docs[i]))
		}
		fragments := []bson.Raw{docs[i]}
		for i+1 < len(docs) && len(fragments) < n {
			if tokenData(docs[i+1]) == tokenData(docs[i]) {
				i++ // a repeated fragment
				continue
			}
			if k, m := fragment(docs[i+1]); m != n || k != len(fragments)+1 {
				break
			}
			i++
			fragments = append(fragments, docs[i])
		}
		if len(fragments) != n {
			return nil, fmt.Errorf("%w: a split event at ts %s (token %s) has %d of its %d fragments in the store",
				ErrIncompleteEvent, formatTS(docs[i]), tokenData(fragments[0]), len(fragments), n)
		}
		e, err := decodeEvent(fragments, tokenData(fragments[0]), names)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	return events, nil
}

// joinParts replaces the parts of oversized documents by the documents, refusing a set
// with a part missing.
func joinParts(docs []bson.Raw) ([]bson.Raw, error) {
	var parts map[string][]bson.Raw
	out := docs[:0:0]
	for _, d := range docs {
		if _, _, ok := PartOf(d); !ok {
			out = append(out, d)
			continue
		}
		if parts == nil {
			parts = map[string][]bson.Raw{}
		}
		parts[tokenData(d)] = append(parts[tokenData(d)], d)
	}
	for token, set := range parts {
		doc, err := Join(set)
		if err != nil {
			return nil, fmt.Errorf("%w: the event at ts %s (token %s) stored in parts: %v", ErrIncompleteEvent, formatTS(set[0]), token, err)
		}
		out = append(out, doc)
	}
	return out, nil
}

func tokenData(doc bson.Raw) string {
	s, _ := doc.Lookup(FieldResumeToken, "_data").StringValueOK()
	return s
}

// fragment is a store document's split_event {fragment, of}; 1, 1 when it has none.
func fragment(doc bson.Raw) (k, n int) {
	split, ok := doc.Lookup(FieldSplitEvent).DocumentOK()
	if !ok {
		return 1, 1
	}
	k64, ok1 := split.Lookup("fragment").AsInt64OK()
	n64, ok2 := split.Lookup("of").AsInt64OK()
	if !ok1 || !ok2 || n64 < 1 || k64 < 1 || k64 > n64 || n64 > 1<<20 {
		return 0, 2 // malformed: reported as a fragment without its first
	}
	return int(k64), int(n64)
}

func formatTS(doc bson.Raw) string {
	t, i, _ := doc.Lookup(FieldTS).TimestampOK()
	return fmt.Sprintf("%d,%d", t, i)
}

// decodeEvent reads one event from its store document, or from the documents of its
// fragments: each fragment carries some of the event's top-level fields (the others
// are absent, or null in the old fields the store always writes), so a field's value
// is the first non-null one. Values are the documents' own bytes.
func decodeEvent(docs []bson.Raw, token string, names interner) (Event, error) {
	e := Event{Fragments: len(docs), Token: token}
	var ns string
	for _, doc := range docs {
		e.Bytes += len(doc)
		err := eachField(doc, func(key []byte, v bsoncore.Value) {
			if v.Type == bsoncore.TypeNull || v.Type == bsoncore.TypeUndefined {
				return
			}
			switch string(key) {
			case FieldTS:
				if e.TS.IsZero() {
					e.TS.T, e.TS.I, _ = v.TimestampOK()
				}
			case FieldOpType:
				names.set(&e.OpType, v)
			case FieldNamespace:
				names.set(&ns, v)
			case FieldDocumentKey:
				setDocument(&e.DocKey, v)
			case FieldFullDocument:
				setDocument(&e.FullDocument, v)
			case FieldUpdateDescription:
				setDocument(&e.UpdateDescription, v)
			case FieldTo:
				setDocument(&e.To, v)
			case FieldOperationDescription:
				setDocument(&e.OperationDescription, v)
			case FieldLsid:
				setDocument(&e.Lsid, v)
			case FieldTxnNumber:
				if n, ok := v.AsInt64OK(); ok && !e.HasTxnNumber {
					e.TxnNumber, e.HasTxnNumber = n, true
				}
			case FieldCollectionUUID:
				if _, data, ok := v.BinaryOK(); ok && e.CollectionUUID == nil {
					e.CollectionUUID = data
				}
			}
		})
		if err != nil {
			return Event{}, fmt.Errorf("a malformed document in the store: %w", err)
		}
	}
	e.DB, e.Coll = SplitNamespace(ns)
	return e, nil
}

// interner keeps one copy of the strings that repeat from event to event (operation
// types, namespaces), so that reading them allocates once.
type interner map[string]string

// set sets *dst, when empty, to the string v holds.
func (in interner) set(dst *string, v bsoncore.Value) {
	if v.Type != bsoncore.TypeString || *dst != "" {
		return
	}
	length, rest, ok := bsoncore.ReadLength(v.Data)
	if !ok || length < 1 || int(length) > len(rest) {
		return
	}
	b := rest[:length-1] // without its terminating NUL
	s, seen := in[string(b)]
	if !seen {
		if len(in) > 10000 {
			clear(in) // a bound: namespaces are few, but data decide how many
		}
		s = string(b)
		in[s] = s
	}
	*dst = s
}

func setDocument(dst *bson.Raw, v bsoncore.Value) {
	if d, ok := v.DocumentOK(); ok && *dst == nil {
		*dst = bson.Raw(d)
	}
}

// SameTransaction tells whether a and b are operations of one transaction: the same
// session and transaction number, and, as the server gives every operation of a
// transaction its commit's cluster time, the same ts.
func SameTransaction(a, b *Event) bool {
	return a.Lsid != nil && a.HasTxnNumber && b.HasTxnNumber && a.TxnNumber == b.TxnNumber &&
		a.TS == b.TS && bytes.Equal(a.Lsid, b.Lsid)
}
