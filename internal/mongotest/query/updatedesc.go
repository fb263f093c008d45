package query

import (
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Description is a change event's updateDescription
// (https://www.mongodb.com/docs/manual/reference/change-events/update/),
// derived as mongod derives it from the oplog entry's $v:2 diff
// (change_stream_document_diff_parser.cpp): a document level gives its
// updated, then inserted fields as updatedFields, its deleted fields as
// removedFields, then its sub-diffs; an array level gives its new size as
// truncatedArrays when it shrank, then its elements by index.
type Description struct {
	// Doc is {updatedFields, removedFields, truncatedArrays}.
	Doc bsoncore.Document
	// Disambiguated is disambiguatedPaths (MongoDB 6.1+, shown with
	// showExpandedEvents): each path above with a numeric field name (not an
	// array index) past its first part or a field name with a dot, as its
	// list of parts, array indexes as numbers.
	Disambiguated bsoncore.Document
}

// pathPart is one component of a changed path: a field name, or an array
// index when the container is an array.
type pathPart struct {
	name  string
	index bool
}

type changeKind int

const (
	changeUpdate changeKind = iota // an existing value replaced
	changeCreate                   // a field or element added
	changeDelete                   // a field removed
)

type change struct {
	parts []pathPart
	kind  changeKind
}

// changeLog is what an update's operators changed, in order: the paths
// mongod's log builder receives.
type changeLog []change

func (l *changeLog) add(parts []pathPart, kind changeKind) {
	*l = append(*l, change{parts: slices.Clone(parts), kind: kind})
}

// set writes value(old) at path, creating it if need be, and logs it as
// mongod's modifier nodes do: the created subtree at the first created
// component, or the updated value, unless it is the same.
func (l *changeLog) set(cur any, path []string, value func(old any, exists bool) (any, error)) (any, error) {
	same := false
	out, w, err := updateAt(cur, path, true, func(old any, exists bool) (any, bool, error) {
		v, err := value(old, exists)
		same = exists && err == nil && sameValue(old, v)
		return v, true, err
	})
	switch {
	case err != nil:
		return nil, err
	case w.createdAt >= 0:
		l.add(w.parts[:w.createdAt+1], changeCreate)
	case !same:
		l.add(w.parts, changeUpdate)
	}
	return out, nil
}

// unset removes the value at path: a field is removed, an array element
// becomes null (an update).
func (l *changeLog) unset(cur any, path []string) (any, error) {
	out, w, err := updateAt(cur, path, false, func(any, bool) (any, bool, error) { return nil, false, nil })
	if err != nil || !w.existed {
		return out, err
	}
	if w.parts[len(w.parts)-1].index {
		l.add(w.parts, changeUpdate)
	} else {
		l.add(w.parts, changeDelete)
	}
	return out, nil
}

// diffNode is one level of a $v:2 diff
// (mongo src/mongo/db/update/document_diff_serialization.h): a document's
// updated, inserted and deleted fields and its sub-diffs, in the order they
// were added; or an array's updated elements and sub-diffs by index, and
// its new size when it shrank. size is mongod's running estimate of the
// serialized diff, which decides when a computed diff gives up (diff.go).
type diffNode struct {
	array            bool
	updates, inserts []string
	deletes          []string
	subs             []string // sub-diffs, in order of first appearance
	sub              map[string]*diffNode
	elems            map[string]bool // an array's updated elements
	resize           int             // an array's new size; -1: not truncated
	size             int
}

func newDiffNode(array bool) *diffNode {
	return &diffNode{array: array, sub: map[string]*diffNode{}, elems: map[string]bool{}, resize: -1}
}

// describe turns the log into the diff mongod's log builder makes of it,
// then that into the description.
func (l changeLog) describe(final bsoncore.Document) *Description {
	root := newDiffNode(false)
	for _, c := range l {
		n := root
		for i, p := range c.parts[:len(c.parts)-1] {
			child := n.sub[p.name]
			if child == nil {
				child = newDiffNode(c.parts[i+1].index)
				n.sub[p.name] = child
				n.subs = append(n.subs, p.name)
			}
			n = child
		}
		leaf := c.parts[len(c.parts)-1].name
		switch {
		case n.array:
			n.elems[leaf] = true
		case c.kind == changeUpdate:
			n.updates = append(n.updates, leaf)
		case c.kind == changeCreate:
			n.inserts = append(n.inserts, leaf)
		default:
			n.deletes = append(n.deletes, leaf)
		}
	}
	return root.describe(final)
}

// describe is change_stream_document_diff_parser's reading of the diff,
// values taken from the document after the update.
func (n *diffNode) describe(final bsoncore.Document) *Description {
	d := describer{final: final}
	d.walk(n, nil)
	return &Description{
		Doc: BuildDoc([]Field{
			{"updatedFields", DocValue(BuildDoc(d.updated))},
			{"removedFields", ArrayValue(d.removed)},
			{"truncatedArrays", ArrayValue(d.truncated)},
		}),
		Disambiguated: BuildDoc(d.disambiguated),
	}
}

type describer struct {
	final         bsoncore.Document
	updated       []Field
	removed       []Value
	truncated     []Value
	disambiguated []Field
}

// walk lists a node's changes in the parser's order: updated then inserted
// fields, deleted ones, then the sub-diffs; an array's new size, then its
// elements by index.
func (d *describer) walk(n *diffNode, prefix []pathPart) {
	at := func(name string) []pathPart {
		return append(slices.Clone(prefix), pathPart{name: name, index: n.array})
	}
	if n.array {
		if n.resize >= 0 {
			d.truncated = append(d.truncated, DocValue(BuildDoc([]Field{
				{"field", StringValue(dotted(prefix))}, {"newSize", Int32Value(int32(n.resize))},
			})))
			d.disambiguate(prefix)
		}
		var idx []string
		for k := range n.elems {
			idx = append(idx, k)
		}
		for k := range n.sub {
			if !n.elems[k] {
				idx = append(idx, k)
			}
		}
		slices.SortFunc(idx, func(a, b string) int { i, _ := ArrayIndex(a); j, _ := ArrayIndex(b); return i - j })
		for _, k := range idx {
			if n.elems[k] {
				d.updatedField(at(k))
			} else {
				d.walk(n.sub[k], at(k))
			}
		}
		return
	}
	for _, k := range append(slices.Clone(n.updates), n.inserts...) {
		d.updatedField(at(k))
	}
	for _, k := range n.deletes {
		p := at(k)
		d.removed = append(d.removed, StringValue(dotted(p)))
		d.disambiguate(p)
	}
	for _, k := range n.subs {
		d.walk(n.sub[k], at(k))
	}
}

func (d *describer) updatedField(p []pathPart) {
	names := make([]string, len(p))
	for i, part := range p {
		names[i] = part.name
	}
	v, _ := LookupPath(d.final, names)
	d.updated = append(d.updated, Field{dotted(p), v})
	d.disambiguate(p)
}

func dotted(p []pathPart) string {
	names := make([]string, len(p))
	for i, part := range p {
		names[i] = part.name
	}
	return strings.Join(names, ".")
}

// disambiguate records p's parts if a reader could not tell them from its
// dotted form: past the first part, a field name that is a number, or any
// field name with a dot; array indices are given as numbers.
func (d *describer) disambiguate(p []pathPart) {
	ambiguous := false
	for i, part := range p {
		if !part.index && (i > 0 && numericName(part.name) || strings.Contains(part.name, ".")) {
			ambiguous = true
		}
	}
	if !ambiguous {
		return
	}
	parts := make([]Value, len(p))
	for i, part := range p {
		if n, ok := ArrayIndex(part.name); ok && part.index {
			parts[i] = Int32Value(int32(n))
		} else {
			parts[i] = StringValue(part.name)
		}
	}
	d.disambiguated = append(d.disambiguated, Field{dotted(p), ArrayValue(parts)})
}

// numericName is mongod's FieldRef::isNumericPathComponentStrict: digits,
// without a leading zero.
func numericName(s string) bool {
	_, ok := ArrayIndex(s)
	return ok
}
