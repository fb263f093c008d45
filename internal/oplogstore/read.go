package oplogstore

import (
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
			// A store only the old collector has written has no index to sort by.
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
			continue // a batch the old collector stored twice
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
			continue // a batch the old collector stored twice
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
