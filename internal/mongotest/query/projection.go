package query

import (
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Projection is a compiled find projection, $project, $addFields/$set or
// $unset (https://www.mongodb.com/docs/manual/reference/operator/aggregation/project/,
// .../addFields/): inclusion (with computed fields) or exclusion of fields,
// never both, except that _id may be excluded from an inclusion; or, for
// $addFields, computed fields only.
//
// Computed fields follow mongod's projection tree: an included subtree keeps
// its place in the document, a computed field at the top of a level goes
// after the fields kept there (or replaces one in place), a field computed
// to missing ($$REMOVE) is removed, and a subtree applies to each element of
// an array, a scalar it meets becoming a document of the computed fields.
type Projection struct {
	exclusion bool
	addFields bool // $addFields: every field is computed, nothing is dropped
	root      *projNode
	now       time.Time // $$NOW
}

type projEntry struct {
	name    string
	include bool
	e       expr      // a computed field
	sub     *projNode // a nested specification ({a: {b: 1}} or "a.b")
}

type projNode struct {
	entries  []*projEntry
	computed bool // the subtree holds computed fields
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
	p := &Projection{root: &projNode{}, now: time.Now()}
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

// compileAddFields reads $addFields' (and $set's) specification: every value
// is an expression, a nested document without operators a level of paths.
func compileAddFields(spec bsoncore.Document) (*Projection, error) {
	p := &Projection{root: &projNode{}, addFields: true, now: time.Now()}
	if err := p.add(p.root, spec, "", false, map[bool]string{}); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Projection) add(n *projNode, spec bsoncore.Document, prefix string, forFind bool, mode map[bool]string) error {
	for _, f := range Fields(spec) {
		full := prefix + f.Key
		if forFind && strings.HasSuffix(f.Key, ".$") {
			return Unsupported("the positional projection operator (%s)", full)
		}
		if strings.HasPrefix(f.Key, "$") {
			return errorf(16410, "FieldPath field names may not start with '$'. Consider using $getField or $setField.")
		}
		parts := SplitPath(f.Key)
		node := n
		var chain []*projNode
		for _, part := range parts[:len(parts)-1] {
			e := node.entry(part)
			if e == nil {
				e = &projEntry{name: part, sub: &projNode{}}
				node.entries = append(node.entries, e)
			} else if e.sub == nil {
				return errorf(31250, "Invalid $project :: caused by :: Path collision at %s", full)
			}
			chain = append(chain, node)
			node = e.sub
		}
		leaf := parts[len(parts)-1]
		if node.entry(leaf) != nil {
			return errorf(31250, "Invalid $project :: caused by :: Path collision at %s", full)
		}
		e := &projEntry{name: leaf}
		v := f.Val
		nested, isDoc := v.DocumentOK()
		switch {
		case !p.addFields && (v.Type == bsoncore.TypeBoolean || v.IsNumber()):
			e.include = Truthy(v)
			if !(full == "_id" && !e.include) {
				if _, ok := mode[e.include]; !ok {
					mode[e.include] = full
				}
			}
		case isDoc && !isOperatorDoc(nested) && (len(Fields(nested)) > 0 || !p.addFields):
			if len(Fields(nested)) == 0 {
				return errorf(51270, "Invalid $project :: caused by :: An empty sub-projection is not a valid value. Found empty object at path %s", full)
			}
			e.sub = &projNode{}
			if err := p.add(e.sub, nested, full+".", forFind, mode); err != nil {
				return err
			}
			if e.sub.computed {
				node.computed = true
			}
		case isDoc && forFind && isOperatorDoc(nested) && findOnlyOperator(Fields(nested)[0].Key):
			return Unsupported("the find projection operator %s", Fields(nested)[0].Key)
		default:
			if excl, ok := mode[false]; ok && !p.addFields {
				return errorf(31252, "Invalid $project :: caused by :: Cannot use expression other than $meta in exclusion projection (%s excludes %s)", full, excl)
			}
			ex, err := compileExpr(v)
			if err != nil {
				return err
			}
			e.e = ex
			node.computed = true
			if _, ok := mode[true]; !ok && !p.addFields {
				mode[true] = full
			}
		}
		node.entries = append(node.entries, e)
		if node.computed {
			for _, c := range chain {
				c.computed = true
			}
		}
	}
	return nil
}

func findOnlyOperator(op string) bool {
	return op == "$slice" || op == "$elemMatch" || op == "$meta"
}

// Apply projects doc.
func (p *Projection) Apply(doc bsoncore.Document) (bsoncore.Document, error) {
	cx := newEvalCtx(doc, p.now)
	switch {
	case p.addFields:
		fields, err := p.root.compute(cx, Fields(doc))
		if err != nil {
			return nil, err
		}
		return BuildDoc(fields), nil
	case p.exclusion:
		return p.root.exclude(doc), nil
	}
	fields, err := p.root.include(cx, doc, true)
	if err != nil {
		return nil, err
	}
	return BuildDoc(fields), nil
}

func (n *projNode) exclude(d bsoncore.Document) bsoncore.Document {
	var out []Field
	for _, f := range Fields(d) {
		e := n.entry(f.Key)
		switch {
		case e == nil:
			out = append(out, f)
		case e.sub != nil:
			out = append(out, Field{f.Key, e.sub.excludeValue(f.Val)})
		}
	}
	return BuildDoc(out)
}

// excludeValue applies an exclusion to a nested value: a document, each
// element of an array; other values stay.
func (n *projNode) excludeValue(v Value) Value {
	switch v.Type {
	case bsoncore.TypeEmbeddedDocument:
		return DocValue(n.exclude(v.Document()))
	case bsoncore.TypeArray:
		var out []Value
		for _, e := range ArrayValues(v) {
			out = append(out, n.excludeValue(e))
		}
		return ArrayValue(out)
	}
	return v
}

// include keeps the included fields of d in its order, then computes the
// computed ones; a subtree that computes fields keeps its place even where
// d's value is no document.
func (n *projNode) include(cx *evalCtx, d bsoncore.Document, top bool) ([]Field, error) {
	var out []Field
	for _, f := range Fields(d) {
		e := n.entry(f.Key)
		switch {
		case e == nil:
			if top && f.Key == "_id" {
				out = append(out, f) // _id is kept unless excluded explicitly
			}
		case e.sub != nil:
			v, err := e.sub.includeValue(cx, f.Val)
			if err != nil {
				return nil, err
			}
			if v.Type != 0 || e.sub.computed {
				out = append(out, Field{f.Key, v})
			}
		case e.include:
			out = append(out, f)
		}
	}
	return n.compute(cx, out)
}

func (n *projNode) includeValue(cx *evalCtx, v Value) (Value, error) {
	switch v.Type {
	case bsoncore.TypeEmbeddedDocument:
		fields, err := n.include(cx, v.Document(), false)
		return DocValue(BuildDoc(fields)), err
	case bsoncore.TypeArray:
		var out []Value
		for _, e := range ArrayValues(v) {
			if e.Type != bsoncore.TypeEmbeddedDocument && e.Type != bsoncore.TypeArray {
				continue // an inclusion drops the scalars of an array
			}
			x, err := n.includeValue(cx, e)
			if err != nil {
				return Value{}, err
			}
			out = append(out, x)
		}
		return ArrayValue(out), nil
	}
	return Value{}, nil
}

// compute sets the computed fields of this level into fields, in the
// specification's order.
func (n *projNode) compute(cx *evalCtx, fields []Field) ([]Field, error) {
	if !n.computed {
		return fields, nil
	}
	for _, e := range n.entries {
		switch {
		case e.e != nil:
			v, err := e.e(cx)
			if err != nil {
				return nil, err
			}
			fields = setField(fields, e.name, v)
		case e.sub != nil && e.sub.computed:
			var cur Value
			for _, f := range fields {
				if f.Key == e.name {
					cur = f.Val
				}
			}
			v, err := e.sub.computeValue(cx, cur)
			if err != nil {
				return nil, err
			}
			fields = setField(fields, e.name, v)
		}
	}
	return fields, nil
}

// computeValue applies a subtree's computed fields to a value: into a
// document, into each element of an array, or to a new document.
func (n *projNode) computeValue(cx *evalCtx, v Value) (Value, error) {
	switch v.Type {
	case bsoncore.TypeEmbeddedDocument:
		fields, err := n.compute(cx, Fields(v.Document()))
		return DocValue(BuildDoc(fields)), err
	case bsoncore.TypeArray:
		elems := ArrayValues(v)
		out := make([]Value, len(elems))
		for i, e := range elems {
			x, err := n.computeValue(cx, e)
			if err != nil {
				return Value{}, err
			}
			out[i] = x
		}
		return ArrayValue(out), nil
	}
	fields, err := n.compute(cx, nil)
	return DocValue(BuildDoc(fields)), err
}
