package mongotest

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// projection is a compiled find projection or $project stage
// (https://www.mongodb.com/docs/manual/reference/operator/aggregation/project/):
// either inclusion (with computed fields) or exclusion, never both, except
// that _id may be excluded from an inclusion.
type projection struct {
	exclusion bool
	root      *projNode
}

type projKind int

const (
	projInclude projKind = iota
	projExclude
	projSub
	projExpr
)

type projEntry struct {
	name string
	kind projKind
	sub  *projNode
	e    expr
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

func (n *projNode) hasExpr() bool {
	for _, e := range n.entries {
		if e.kind == projExpr || (e.kind == projSub && e.sub.hasExpr()) {
			return true
		}
	}
	return false
}

// compileProjection reads spec; forFind refuses the find-only operators
// ($slice, $elemMatch, positional) this fake does not implement.
func compileProjection(spec bsoncore.Document, forFind bool) (*projection, error) {
	p := &projection{root: &projNode{}}
	mode := map[projKind]string{}
	if err := p.add(p.root, spec, "", forFind, mode); err != nil {
		return nil, err
	}
	if _, incl := mode[projInclude]; incl || mode[projExpr] != "" {
		if path, excl := mode[projExclude]; excl {
			return nil, errorf(31254, "Invalid $project :: caused by :: Cannot do exclusion on field %s in inclusion projection", path)
		}
		return p, nil
	}
	p.exclusion = true
	return p, nil
}

func (p *projection) add(n *projNode, spec bsoncore.Document, prefix string, forFind bool, mode map[projKind]string) error {
	for _, f := range docFields(spec) {
		full := prefix + f.key
		if forFind && strings.HasSuffix(f.key, ".$") {
			return unsupported("the positional projection operator (%s)", full)
		}
		parts := splitPath(f.key)
		node := n
		for _, part := range parts[:len(parts)-1] {
			e := node.entry(part)
			if e == nil {
				e = &projEntry{name: part, kind: projSub, sub: &projNode{}}
				node.entries = append(node.entries, e)
			} else if e.kind != projSub {
				return errorf(31250, "Invalid $project :: caused by :: Path collision at %s", full)
			}
			node = e.sub
		}
		leaf := parts[len(parts)-1]
		if node.entry(leaf) != nil {
			return errorf(31250, "Invalid $project :: caused by :: Path collision at %s", full)
		}
		e := &projEntry{name: leaf}
		v := f.val
		switch {
		case v.Type == bsoncore.TypeBoolean || v.IsNumber():
			e.kind = projInclude
			if !truthy(v) {
				e.kind = projExclude
			}
		case v.Type == bsoncore.TypeEmbeddedDocument && !isOperatorDoc(v.Document()):
			e.kind, e.sub = projSub, &projNode{}
			if err := p.add(e.sub, v.Document(), full+".", forFind, mode); err != nil {
				return err
			}
		default:
			if d, ok := v.DocumentOK(); ok && forFind {
				op := docFields(d)[0].key
				if op == "$slice" || op == "$elemMatch" || op == "$meta" {
					return unsupported("the find projection operator %s", op)
				}
			}
			ex, err := compileExpr(v)
			if err != nil {
				return err
			}
			e.kind, e.e = projExpr, ex
		}
		if e.kind != projSub && !(full == "_id" && e.kind == projExclude) {
			if other, ok := mode[projInclude]; e.kind == projExclude && ok {
				return errorf(31254, "Invalid $project :: caused by :: Cannot do exclusion on field %s in inclusion projection (%s)", full, other)
			}
			if _, ok := mode[e.kind]; !ok {
				mode[e.kind] = full
			}
		}
		node.entries = append(node.entries, e)
	}
	return nil
}

func (p *projection) apply(doc bsoncore.Document) (bsoncore.Document, error) {
	if p.exclusion {
		return p.root.exclude(doc), nil
	}
	return p.root.include(doc, doc, true)
}

func (n *projNode) exclude(d bsoncore.Document) bsoncore.Document {
	var out []field
	for _, f := range docFields(d) {
		e := n.entry(f.key)
		switch {
		case e == nil:
			out = append(out, f)
		case e.kind == projSub:
			out = append(out, field{f.key, e.sub.excludeValue(f.val)})
		}
	}
	return buildDoc(out)
}

func (n *projNode) excludeValue(v bsoncore.Value) bsoncore.Value {
	switch v.Type {
	case bsoncore.TypeEmbeddedDocument:
		return docValue(n.exclude(v.Document()))
	case bsoncore.TypeArray:
		elems := arrayValues(v)
		for i, e := range elems {
			elems[i] = n.excludeValue(e)
		}
		return arrayValue(elems)
	}
	return v
}

func (n *projNode) include(d, root bsoncore.Document, top bool) (bsoncore.Document, error) {
	var out []field
	for _, f := range docFields(d) {
		e := n.entry(f.key)
		switch {
		case e == nil:
			if top && f.key == "_id" {
				out = append(out, f) // _id is kept unless excluded explicitly
			}
		case e.kind == projInclude:
			out = append(out, f)
		case e.kind == projSub:
			v, err := e.sub.includeValue(f.val, root)
			if err != nil {
				return nil, err
			}
			out = append(out, field{f.key, v})
		}
	}
	for _, e := range n.entries {
		var v bsoncore.Value
		switch {
		case e.kind == projExpr:
			var err error
			if v, err = e.e(root); err != nil {
				return nil, err
			}
		case e.kind == projSub && e.sub.hasExpr() && !hasField(out, e.name):
			sub, err := e.sub.include(buildDoc(nil), root, false)
			if err != nil {
				return nil, err
			}
			v = docValue(sub)
		default:
			continue
		}
		out = setField(out, e.name, v)
	}
	return buildDoc(out), nil
}

func (n *projNode) includeValue(v bsoncore.Value, root bsoncore.Document) (bsoncore.Value, error) {
	switch v.Type {
	case bsoncore.TypeEmbeddedDocument:
		d, err := n.include(v.Document(), root, false)
		return docValue(d), err
	case bsoncore.TypeArray:
		var out []bsoncore.Value
		for _, e := range arrayValues(v) {
			if e.Type != bsoncore.TypeEmbeddedDocument && e.Type != bsoncore.TypeArray {
				continue
			}
			pv, err := n.includeValue(e, root)
			if err != nil {
				return pv, err
			}
			out = append(out, pv)
		}
		return arrayValue(out), nil
	}
	return bsoncore.Value{}, nil
}

func hasField(fields []field, key string) bool {
	for _, f := range fields {
		if f.key == key {
			return true
		}
	}
	return false
}

// setField replaces key's value in place or appends it.
func setField(fields []field, key string, v bsoncore.Value) []field {
	for i := range fields {
		if fields[i].key == key {
			fields[i].val = v
			return fields
		}
	}
	return append(fields, field{key, v})
}
