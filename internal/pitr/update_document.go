package pitr

import (
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// An update that update operators cannot express, or that the target's document
// refuses, is applied the way the source's server applied it (applyTo) to the document
// read from the target, which is then replaced (writeOnce).

// applyTo applies the update to doc, a document as the target holds it, the way the
// source's server did: truncations, then new values (creating missing embedded
// documents, padding arrays with nulls; those of an insert section at the end of their
// document, see insertSection), then removals (a removed array element becomes null, as
// $unset leaves it). A path that cannot be followed in doc (through a value that is not
// a document or an array, or into an array by a field name) is left alone: the source's
// document was not shaped so then, and the source's later history overwrites that part
// (docs/pitr.md). It returns the new document.
func (ud *updateDescription) applyTo(doc bson.D) bson.D {
	for _, t := range ud.truncated {
		doc = editDoc(doc, t.path, false, func(v any, exists bool) (any, leafAction) {
			if array, ok := asContainer(v).(bson.A); ok && exists && len(array) > t.newSize {
				return array[:t.newSize], replaceLeaf
			}
			return nil, keepLeaf
		})
	}
	inserted := ud.insertSection(doc)
	for i, u := range ud.updated {
		if inserted[i] {
			doc = editDoc(doc, u.path, false, func(any, bool) (any, leafAction) { return nil, removeLeaf })
		}
		doc = editDoc(doc, u.path, true, func(any, bool) (any, leafAction) { return u.value, replaceLeaf })
	}
	for _, p := range ud.removed {
		doc = editDoc(doc, p, false, func(any, bool) (any, leafAction) { return nil, removeLeaf })
	}
	return doc
}

type leafAction uint8

const (
	keepLeaf leafAction = iota
	replaceLeaf
	removeLeaf
)

// leafFunc decides what becomes of the value at the end of a path.
type leafFunc func(v any, exists bool) (any, leafAction)

func editDoc(doc bson.D, p fieldPath, create bool, fn leafFunc) bson.D {
	if out, ok := edit(doc, p, create, fn); ok {
		return out.(bson.D)
	}
	return doc
}

// edit applies fn at path p inside node, a bson.D or bson.A, creating missing embedded
// documents on the way when create is set. ok is false when p cannot be followed.
func edit(node any, p fieldPath, create bool, fn leafFunc) (out any, ok bool) {
	part := p[0]
	switch n := node.(type) {
	case bson.D:
		if part.kind == arrayIndex {
			return node, false
		}
		i := slices.IndexFunc(n, func(e bson.E) bool { return e.Key == part.name })
		var child any
		if i >= 0 {
			child = n[i].Value
		}
		v, action, ok := step(child, i >= 0, p[1:], create, fn)
		if !ok {
			return node, false
		}
		switch {
		case action == replaceLeaf && i >= 0:
			n[i].Value = v
		case action == replaceLeaf:
			n = append(n, bson.E{Key: part.name, Value: v})
		case action == removeLeaf && i >= 0:
			n = slices.Delete(n, i, i+1)
		}
		return n, true
	case bson.A:
		if part.kind == fieldName {
			return node, false
		}
		var child any
		exists := part.index < len(n)
		if exists {
			child = n[part.index]
		}
		v, action, ok := step(child, exists, p[1:], create, fn)
		if !ok {
			return node, false
		}
		switch action {
		case replaceLeaf:
			for len(n) <= part.index {
				n = append(n, nil) // $set past the end pads with nulls
			}
			n[part.index] = v
		case removeLeaf:
			if exists {
				n[part.index] = nil // $unset of an element leaves null, keeping the positions
			}
		}
		return n, true
	}
	return node, false
}

// step goes one level down: to the leaf when rest is empty, else into child.
func step(child any, exists bool, rest fieldPath, create bool, fn leafFunc) (any, leafAction, bool) {
	if len(rest) == 0 {
		v, action := fn(child, exists)
		return v, action, true
	}
	if !exists {
		if !create {
			return nil, keepLeaf, true // nothing there to remove or cut
		}
		child = bson.D{}
	}
	container := asContainer(child)
	if container == nil {
		// A value in the way: there is nothing to remove or cut below it, and nothing
		// can be set below it.
		return nil, keepLeaf, !create
	}
	v, ok := edit(container, rest, create, fn)
	if !ok {
		return nil, keepLeaf, false
	}
	return v, replaceLeaf, true
}

// asContainer returns v as a bson.D or bson.A when it is a document or an array (a
// value taken from the event is still raw), else nil.
func asContainer(v any) any {
	switch c := v.(type) {
	case bson.D, bson.A:
		return c
	case bson.RawValue:
		var out any
		switch c.Type {
		case bson.TypeEmbeddedDocument:
			var d bson.D
			if c.Unmarshal(&d) == nil {
				out = d
			}
		case bson.TypeArray:
			var a bson.A
			if c.Unmarshal(&a) == nil {
				out = a
			}
		}
		return out
	}
	return nil
}

// insertSection tells which new values go at the end of their document, moved there if
// the field exists. mongod logs a pipeline update (and a replacement by one) as the
// difference of the document before and after: fields it keeps in place are updates,
// and the rest of the new document, from the first field it could not pair with the old
// document's in order, are inserts, put at the end of their document in the diff's
// order even where the field existed (mongodb/mongo src/mongo/db/update/
// document_diff_calculator.cpp, computeDocDiff; document_diff_applier.cpp). A change
// event lists each document's updated fields, then its inserted ones, in updatedFields
// (src/mongo/db/pipeline/change_stream_document_diff_parser.cpp), without saying where
// the inserts begin; an update of a field has a value the field had not. So the first
// field of a document that doc does not have is inserted, and so is every later one of
// that document in the event: with a field that is new at its event, a replacement that
// moves fields behind it is replayed in the source's order. A moved field before the
// first new one is indistinguishable from an update and stays in place (docs/pitr.md,
// "What replay cannot restore").
func (ud *updateDescription) insertSection(doc bson.D) []bool {
	inserted := make([]bool, len(ud.updated))
	started := map[string]bool{} // by parent document: its insert section has begun
	for i, u := range ud.updated {
		parent := parentKey(u.path)
		if !started[parent] {
			inDocument, exists := probe(doc, u.path)
			started[parent] = inDocument && !exists
		}
		inserted[i] = started[parent]
	}
	return inserted
}

// parentKey names the document or array that holds the end of p: its other components,
// joined by a byte no field name holds.
func parentKey(p fieldPath) string {
	names := make([]string, len(p)-1)
	for i, part := range p[:len(p)-1] {
		names[i] = part.name
	}
	return strings.Join(names, "\x00")
}

// probe follows p in doc: inDocument tells whether its end is a field of an embedded
// document (or of doc) there, exists whether doc has that field.
func probe(doc bson.D, p fieldPath) (inDocument, exists bool) {
	var node any = doc
	for i, part := range p {
		switch n := asContainer(node).(type) {
		case bson.D:
			if part.kind == arrayIndex {
				return false, false
			}
			j := slices.IndexFunc(n, func(e bson.E) bool { return e.Key == part.name })
			if i == len(p)-1 {
				return true, j >= 0
			}
			if j < 0 {
				return false, false
			}
			node = n[j].Value
		case bson.A:
			if part.kind == fieldName || part.index >= len(n) {
				return false, false
			}
			node = n[part.index]
		default:
			return false, false
		}
	}
	return false, false
}
