package oplogstore

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
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

// SplitNamespace reads a store's ns: "db.coll", or "db." (or "db") for a database's
// events. A database name has no dot, so the first one separates.
func SplitNamespace(ns string) (db, coll string) {
	db, coll, _ = strings.Cut(ns, ".")
	return db, coll
}

// SameTransaction tells whether a and b are operations of one transaction: the same
// session and transaction number, and, as the server gives every operation of a
// transaction its commit's cluster time, the same ts.
func SameTransaction(a, b *Event) bool {
	return a.Lsid != nil && a.HasTxnNumber && b.HasTxnNumber && a.TxnNumber == b.TxnNumber &&
		a.TS == b.TS && bytes.Equal(a.Lsid, b.Lsid)
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

func setDocument(dst *bson.Raw, v bsoncore.Value) {
	if d, ok := v.DocumentOK(); ok && *dst == nil {
		*dst = bson.Raw(d)
	}
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
