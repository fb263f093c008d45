package query

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Projection is a compiled find projection or $project stage
// (https://www.mongodb.com/docs/manual/reference/operator/aggregation/project/):
// inclusion or exclusion of fields, never both, except that _id may be
// excluded from an inclusion. Computed fields are refused.
type Projection struct {
	exclusion bool
	root      *projNode
}

type projEntry struct {
	name    string
	include bool
	sub     *projNode // a nested specification ({a: {b: 1}} or "a.b")
}

type projNode struct {
	entries []*projEntry
}

func (n *projNode) entry(name string) *projEntry {
	for _, e := range n.entries {
		if e.name == name {
			return e
		}
	}
	return nil
}

// CompileProjection reads spec; forFind names the command in refusals of
// the find-only operators ($slice, $elemMatch, $meta, positional).
func CompileProjection(spec bsoncore.Document, forFind bool) (*Projection, error) {
	p := &Projection{root: &projNode{}}
	mode := map[bool]string{} // include → the first such field
	if err := p.add(p.root, spec, "", forFind, mode); err != nil {
		return nil, err
	}
	if incl, ok := mode[true]; ok {
		if excl, ok := mode[false]; ok {
			return nil, errorf(31254, "Invalid $project :: caused by :: Cannot do exclusion on field %s in inclusion projection (%s)", excl, incl)
		}
		return p, nil
	}
	p.exclusion = true
	return p, nil
}

func (p *Projection) add(n *projNode, spec bsoncore.Document, prefix string, forFind bool, mode map[bool]string) error {
	for _, f := range Fields(spec) {
		full := prefix + f.Key
		if forFind && strings.HasSuffix(f.Key, ".$") {
			return Unsupported("the positional projection operator (%s)", full)
		}
		parts := SplitPath(f.Key)
		node := n
		for _, part := range parts[:len(parts)-1] {
			e := node.entry(part)
			if e == nil {
				e = &projEntry{name: part, sub: &projNode{}}
				node.entries = append(node.entries, e)
			} else if e.sub == nil {
				return errorf(31250, "Invalid $project :: caused by :: Path collision at %s", full)
			}
			node = e.sub
		}
		leaf := parts[len(parts)-1]
		if node.entry(leaf) != nil {
			return errorf(31250, "Invalid $project :: caused by :: Path collision at %s", full)
		}
		e := &projEntry{name: leaf}
		v := f.Val
		switch {
		case v.Type == bsoncore.TypeBoolean || v.IsNumber():
			e.include = Truthy(v)
			if !(full == "_id" && !e.include) {
				if _, ok := mode[e.include]; !ok {
					mode[e.include] = full
				}
			}
		case v.Type == bsoncore.TypeEmbeddedDocument && !isOperatorDoc(v.Document()):
			e.sub = &projNode{}
			if err := p.add(e.sub, v.Document(), full+".", forFind, mode); err != nil {
				return err
			}
		case v.Type == bsoncore.TypeEmbeddedDocument && forFind:
			return Unsupported("the find projection operator %s", Fields(v.Document())[0].Key)
		default:
			return Unsupported("computed fields in projections (%s: %s)", full, v)
		}
		node.entries = append(node.entries, e)
	}
	return nil
}

// Apply projects doc.
func (p *Projection) Apply(doc bsoncore.Document) (bsoncore.Document, error) {
	if p.exclusion {
		return p.root.exclude(doc), nil
	}
	return p.root.include(doc, true), nil
}

func (n *projNode) exclude(d bsoncore.Document) bsoncore.Document {
	var out []Field
	for _, f := range Fields(d) {
		e := n.entry(f.Key)
		switch {
		case e == nil:
			out = append(out, f)
		case e.sub != nil:
			out = append(out, Field{f.Key, e.sub.apply(f.Val, e.sub.exclude, true)})
		}
	}
	return BuildDoc(out)
}

func (n *projNode) include(d bsoncore.Document, top bool) bsoncore.Document {
	var out []Field
	for _, f := range Fields(d) {
		e := n.entry(f.Key)
		switch {
		case e == nil:
			if top && f.Key == "_id" {
				out = append(out, f) // _id is kept unless excluded explicitly
			}
		case e.sub != nil:
			include := func(d bsoncore.Document) bsoncore.Document { return e.sub.include(d, false) }
			if v := e.sub.apply(f.Val, include, false); v.Type != 0 {
				out = append(out, Field{f.Key, v})
			}
		case e.include:
			out = append(out, f)
		}
	}
	return BuildDoc(out)
}

// apply projects a nested value with project: a document, or each element
// of an array; other values are kept (an exclusion) or dropped (an
// inclusion).
func (n *projNode) apply(v Value, project func(bsoncore.Document) bsoncore.Document, keepOthers bool) Value {
	switch v.Type {
	case bsoncore.TypeEmbeddedDocument:
		return DocValue(project(v.Document()))
	case bsoncore.TypeArray:
		var out []Value
		for _, e := range ArrayValues(v) {
			out = append(out, n.apply(e, project, keepOthers))
		}
		return ArrayValue(out)
	}
	if keepOthers {
		return v
	}
	return Value{}
}
