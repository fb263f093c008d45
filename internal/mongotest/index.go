package mongotest

import (
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// index is a secondary index definition. Queries scan collections, so only
// unique indexes keep entries; the others exist for listIndexes, change
// events and TTL.
type index struct {
	name        string
	fields      []string
	spec        bsoncore.Document // as listIndexes returns it
	unique      bool
	sparse      bool
	partial     *query.Filter
	ttl         bool
	expireAfter int64 // seconds, when ttl
	entries     map[string]*record
}

func newIDIndex() *index {
	spec, _ := bson.Marshal(bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}})
	return &index{name: "_id_", fields: []string{"_id"}, spec: spec, unique: true, entries: map[string]*record{}}
}

// createDescription is a create event's operationDescription: the
// collection's options and its _id index, as the create oplog entry has them.
func (c *collection) createDescription() bsoncore.Document {
	return query.BuildDoc(append(query.Fields(c.options(false)), query.Field{Key: "idIndex", Val: query.DocValue(c.idIndex().spec)}))
}

// indexEntry is one key of a document in an index (several for arrays).
type indexEntry struct {
	key    string
	values []bsoncore.Value
}

// entriesFor computes doc's keys: missing fields index as null, array
// values index each element (multikey), sparse and partial indexes skip
// documents they do not cover.
func (ix *index) entriesFor(doc bsoncore.Document) []indexEntry {
	if ix.partial != nil && !ix.partial.Matches(doc) {
		return nil
	}
	perField := make([][]bsoncore.Value, len(ix.fields))
	anyFound := false
	for i, f := range ix.fields {
		query.WalkPath(query.DocValue(doc), query.SplitPath(f), func(v bsoncore.Value, found bool) {
			if !found {
				perField[i] = append(perField[i], query.NullValue)
				return
			}
			anyFound = true
			if v.Type == bsoncore.TypeArray {
				elems := query.ArrayValues(v)
				if len(elems) == 0 {
					perField[i] = append(perField[i], query.UndefinedValue)
				}
				perField[i] = append(perField[i], elems...)
				return
			}
			perField[i] = append(perField[i], v)
		})
	}
	if ix.sparse && !anyFound {
		return nil
	}
	combos := []indexEntry{{}}
	for _, vals := range perField {
		var next []indexEntry
		for _, c := range combos {
			for _, v := range vals {
				next = append(next, indexEntry{
					key:    string(query.AppendKey([]byte(c.key), v)),
					values: append(append([]bsoncore.Value(nil), c.values...), v),
				})
			}
		}
		combos = next
	}
	return combos
}

func (ix *index) add(r *record, doc bsoncore.Document) {
	if ix.entries == nil {
		return
	}
	for _, e := range ix.entriesFor(doc) {
		ix.entries[e.key] = r
	}
}

func (ix *index) remove(r *record, doc bsoncore.Document) {
	if ix.entries == nil {
		return
	}
	for _, e := range ix.entriesFor(doc) {
		if ix.entries[e.key] == r {
			delete(ix.entries, e.key)
		}
	}
}

// conflict returns the other record, and the key values, when doc (to be
// stored as r) has another record's key in a unique index.
func (ix *index) conflict(r *record, doc bsoncore.Document) (*record, []bsoncore.Value) {
	if !ix.unique {
		return nil, nil
	}
	for _, e := range ix.entriesFor(doc) {
		if other, ok := ix.entries[e.key]; ok && other != r {
			return other, e.values
		}
	}
	return nil, nil
}

// duplicateError has the real server's E11000 message, keyPattern and keyValue.
func (ix *index) duplicateError(c *collection, values []bsoncore.Value) *writeError {
	keyValue := bson.D{}
	parts := make([]string, len(ix.fields))
	for i, f := range ix.fields {
		keyValue = append(keyValue, bson.E{Key: f, Value: query.RawValue(values[i])})
		parts[i] = f + ": " + values[i].String()
	}
	return &writeError{
		code: codeDuplicateKey,
		msg: fmt.Sprintf("E11000 duplicate key error collection: %s index: %s dup key: { %s }",
			c.ns(), ix.name, strings.Join(parts, ", ")),
		extra: bson.D{{Key: "keyPattern", Value: bson.Raw(ix.spec.Lookup("key").Document())}, {Key: "keyValue", Value: keyValue}},
	}
}
