package mongotest

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// Index keys and unique indexes, as https://www.mongodb.com/docs/manual/core/index-unique/
// and https://www.mongodb.com/docs/manual/core/indexes/index-types/index-multikey/
// describe them. Indexes keep no entries (queries scan): a write computes its
// document's keys and, for a unique index, scans the collection for another
// document holding one of them.

// indexKey is one entry of a document in an index: a value for each of the
// index's fields, and a text equal for entries MongoDB considers equal.
type indexKey struct {
	vals  []bsoncore.Value
	canon string
}

var (
	nullKey      = bsoncore.Value{Type: bsoncore.TypeNull}
	undefinedKey = bsoncore.Value{Type: bsoncore.TypeUndefined}
)

// keys returns doc's entries in ix, each once (a document repeating a value
// in an array has it once). A missing field is null; an array makes an entry
// per element, an empty one an undefined entry (multikey). A compound index
// over two arrays of one document fails with 171 CannotIndexParallelArrays,
// unless they are the same array ({"a.b": 1, "a.c": 1}).
func (ix *index) keys(doc bsoncore.Document) ([]indexKey, error) {
	var multikey string // the path of the array that makes the entries many
	entries := []indexKey{{}}
	for _, field := range ix.fields {
		vals, array := keyValues(doc, field)
		if array != "" {
			if multikey != "" && multikey != array {
				return nil, &writeError{code: codeCannotIndexParallelArrays, msg: fmt.Sprintf("cannot index parallel arrays [%s] [%s]", array, multikey)}
			}
			multikey = array
		}
		next := make([]indexKey, 0, len(entries)*len(vals))
		for _, e := range entries {
			for _, v := range vals {
				next = append(next, indexKey{vals: append(e.vals[:len(e.vals):len(e.vals)], v), canon: string(query.AppendKey([]byte(e.canon), v))})
			}
		}
		entries = next
	}
	seen := make(map[string]bool, len(entries))
	out := entries[:0]
	for _, e := range entries {
		if !seen[e.canon] {
			seen[e.canon] = true
			out = append(out, e)
		}
	}
	return out, nil
}

// keyValues returns the values doc holds at the dotted path as index keys,
// and the path of the first array the path crosses or ends at ("" if none).
func keyValues(doc bsoncore.Document, path string) (vals []bsoncore.Value, array string) {
	parts := query.SplitPath(path)
	var walk func(v bsoncore.Value, depth int)
	sawArray := func(depth int) {
		if array == "" {
			array = strings.Join(parts[:depth], ".")
		}
	}
	walk = func(v bsoncore.Value, depth int) {
		if depth == len(parts) {
			if v.Type != bsoncore.TypeArray {
				vals = append(vals, v)
				return
			}
			sawArray(depth)
			elems := query.ArrayValues(v)
			if len(elems) == 0 {
				vals = append(vals, undefinedKey)
			}
			vals = append(vals, elems...)
			return
		}
		switch v.Type {
		case bsoncore.TypeEmbeddedDocument:
			child, err := v.Document().LookupErr(parts[depth])
			if err != nil {
				vals = append(vals, nullKey)
				return
			}
			walk(child, depth+1)
		case bsoncore.TypeArray:
			if i, ok := query.ArrayIndex(parts[depth]); ok { // a position in the array
				child, err := v.Array().IndexErr(uint(i))
				if err != nil {
					vals = append(vals, nullKey)
					return
				}
				walk(child, depth+1)
				return
			}
			sawArray(depth)
			elems := query.ArrayValues(v)
			if len(elems) == 0 {
				vals = append(vals, nullKey)
			}
			for _, e := range elems {
				if e.Type == bsoncore.TypeEmbeddedDocument {
					walk(e, depth)
				} else {
					vals = append(vals, nullKey)
				}
			}
		default:
			vals = append(vals, nullKey)
		}
	}
	walk(query.DocValue(doc), 0)
	return vals, array
}

// checkKeys checks that doc, written by the transaction tx (nil: none) as
// the record self (nil for an insert), fits c's indexes: no parallel arrays,
// and no key of a unique index that another document holds. What holds it:
// a committed document (11000 DuplicateKey; for a transaction, 112
// WriteConflict when it was written after the transaction started), one of
// the transaction's own writes (11000), or a document another transaction
// holds, in its version or in the committed one (112 WriteConflict for a
// transaction; outside transactions, the write waits for it to end, as
// mongod's write-conflict retry loop waits).
func (c *collection) checkKeys(doc bsoncore.Document, self *record, tx *transaction) error {
	for _, ix := range c.indexes[1:] {
		if !ix.covers(doc) {
			continue
		}
		if ix.kind != "" {
			if err := ix.checkSpecialKey(doc); err != nil {
				return err
			}
			continue
		}
		keys, err := ix.keys(doc)
		if err == nil && ix.prepareUnique && !ix.unique && self != nil {
			keys = newKeys(ix, keys, self.doc)
		}
		if err == nil && (ix.unique || ix.prepareUnique) {
			err = c.uniqueKeyHeld(ix, keys, self, tx)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// newKeys are the keys of those a write gives the document that it did not
// hold before: what an index with prepareUnique checks, as it refuses new
// duplicates only and keeps those it had
// (https://www.mongodb.com/docs/manual/reference/command/collMod/#convert-an-existing-index-to-a-unique-index).
func newKeys(ix *index, keys []indexKey, old bsoncore.Document) []indexKey {
	if !ix.covers(old) {
		return keys
	}
	had := map[string]bool{}
	oldKeys, _ := ix.keys(old)
	for _, k := range oldKeys {
		had[k.canon] = true
	}
	var out []indexKey
	for _, k := range keys {
		if !had[k.canon] {
			out = append(out, k)
		}
	}
	return out
}

// uniqueViolations is collMod's refusal to make ix unique while documents
// share a key of it: 359 CannotConvertIndexToUnique, listing each set of
// documents sharing a key ({violations: [{ids: [...]}]}, as mongod's
// CannotConvertIndexToUniqueInfo).
func (c *collection) uniqueViolations(ix *index) error {
	holders := map[string][]bsoncore.Value{}
	var order []string
	for _, r := range c.live() {
		if !ix.covers(r.doc) {
			continue
		}
		keys, _ := ix.keys(r.doc)
		for _, k := range keys {
			if len(holders[k.canon]) == 0 {
				order = append(order, k.canon)
			}
			holders[k.canon] = append(holders[k.canon], r.doc.Lookup("_id"))
		}
	}
	var violations bson.A
	for _, k := range order {
		if ids := holders[k]; len(ids) > 1 {
			a := make(bson.A, len(ids))
			for i, id := range ids {
				a[i] = query.RawValue(id)
			}
			violations = append(violations, bson.D{{Key: "ids", Value: a}})
		}
	}
	if len(violations) == 0 {
		return nil
	}
	return &cmdError{code: codeCannotConvertIndexToUnique, msg: "Cannot convert the index to unique. Please resolve conflicting documents before running collMod again.",
		extra: bson.D{{Key: "violations", Value: violations}}}
}

// checkDoc applies the index's write-time rules to a document it holds:
// no parallel arrays under an ascending/descending key, a hashed or
// 2dsphere key's own rule.
func (ix *index) checkDoc(doc bsoncore.Document) error {
	switch {
	case !ix.covers(doc):
		return nil
	case ix.kind != "":
		return ix.checkSpecialKey(doc)
	}
	_, err := ix.keys(doc)
	return err
}

// uniqueKeyHeld returns the error for a write of keys into the unique index
// ix (see checkKeys): a hold by a transaction first, since its end can
// change the answer.
func (c *collection) uniqueKeyHeld(ix *index, keys []indexKey, self *record, tx *transaction) error {
	want := make(map[string]indexKey, len(keys))
	for _, k := range keys {
		want[k.canon] = k
	}
	shared := func(doc bsoncore.Document) (indexKey, bool) {
		if doc == nil { // no committed version: inserted by a transaction
			return indexKey{}, false
		}
		if !ix.covers(doc) {
			return indexKey{}, false
		}
		theirs, _ := ix.keys(doc) // a stored document's keys are valid
		for _, k := range theirs {
			if mine, ok := want[k.canon]; ok {
				return mine, true
			}
		}
		return indexKey{}, false
	}
	var dup error
	for _, r := range c.live() {
		switch {
		case r == self:
		case r.txn == nil:
			if k, ok := shared(r.doc); ok {
				if tx != nil && tsLess(tx.snapshot, r.lastWrite) {
					return writeConflict()
				}
				dup = firstErr(dup, c.duplicateKey(ix, k))
			}
		case r.txn == tx:
			if k, ok := shared(r.doc); ok && !r.pendingDelete {
				dup = firstErr(dup, c.duplicateKey(ix, k))
			}
		default:
			_, inTheirs := shared(r.doc)
			_, inCommitted := shared(r.before)
			if inTheirs || inCommitted {
				if tx != nil {
					return writeConflict()
				}
				return errBlocked{}
			}
		}
	}
	return dup
}

// buildIndex checks, as createIndexes builds ix, that no two documents of
// c share a key of it (the data are committed: index builds wait for
// transactions), nor hold parallel arrays.
func (c *collection) buildIndex(ix *index) error {
	holders := map[string]*record{}
	for _, r := range c.live() {
		if err := ix.checkDoc(r.doc); err != nil {
			return err
		}
		if !ix.unique || !ix.covers(r.doc) {
			continue
		}
		keys, _ := ix.keys(r.doc)
		for _, k := range keys {
			if other, ok := holders[k.canon]; ok && other != r {
				return c.duplicateKey(ix, k)
			}
			holders[k.canon] = r
		}
	}
	return nil
}

// duplicateKey is mongod's E11000 error for key in ix, with its keyPattern
// and keyValue (DuplicateKeyErrorInfo), keyValue naming the index's fields.
func (c *collection) duplicateKey(ix *index, key indexKey) *writeError {
	value := make(bson.D, len(ix.fields))
	shown := make([]string, len(ix.fields))
	for i, f := range ix.fields {
		value[i] = bson.E{Key: f, Value: query.RawValue(key.vals[i])}
		shown[i] = f + ": " + shellValue(key.vals[i])
	}
	return &writeError{
		code:  codeDuplicateKey,
		msg:   fmt.Sprintf("E11000 duplicate key error collection: %s index: %s dup key: { %s }", c.ns(), ix.name, strings.Join(shown, ", ")),
		extra: bson.D{{Key: "keyPattern", Value: bson.Raw(ix.spec.Lookup("key").Document())}, {Key: "keyValue", Value: value}},
	}
}

// shellValue writes v as mongod's error messages show values (the shell's
// notation): 1, 1.0, "text", null, ObjectId('…'), { a: 1 }, [ 1, 2 ].
func shellValue(v bsoncore.Value) string {
	switch v.Type {
	case bsoncore.TypeInt32, bsoncore.TypeInt64:
		return strconv.FormatInt(v.AsInt64(), 10)
	case bsoncore.TypeDouble:
		f := v.Double()
		if f == math.Trunc(f) && math.Abs(f) < 1e15 {
			return strconv.FormatFloat(f, 'f', 1, 64)
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	case bsoncore.TypeString:
		return strconv.Quote(v.StringValue())
	case bsoncore.TypeNull:
		return "null"
	case bsoncore.TypeUndefined:
		return "undefined"
	case bsoncore.TypeBoolean:
		return strconv.FormatBool(v.Boolean())
	case bsoncore.TypeObjectID:
		return "ObjectId('" + bson.ObjectID(v.ObjectID()).Hex() + "')"
	case bsoncore.TypeDateTime:
		return fmt.Sprintf("new Date(%d)", v.DateTime())
	case bsoncore.TypeDecimal128:
		h, l := v.Decimal128()
		return `NumberDecimal("` + bson.NewDecimal128(h, l).String() + `")`
	case bsoncore.TypeEmbeddedDocument, bsoncore.TypeArray:
		var parts []string
		for _, f := range query.Fields(v.Data) {
			if v.Type == bsoncore.TypeArray {
				parts = append(parts, shellValue(f.Val))
			} else {
				parts = append(parts, f.Key+": "+shellValue(f.Val))
			}
		}
		left, right := "{", "}"
		if v.Type == bsoncore.TypeArray {
			left, right = "[", "]"
		}
		if len(parts) == 0 {
			return left + right
		}
		return left + " " + strings.Join(parts, ", ") + " " + right
	}
	return v.String()
}
