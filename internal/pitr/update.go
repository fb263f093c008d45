package pitr

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// An update event says what changed, not how: updatedFields gives the new value at each
// changed path, removedFields the removed paths, truncatedArrays the arrays cut to a
// new size (https://www.mongodb.com/docs/manual/reference/change-events/update/). The
// values are absolute, never increments, which is what makes replaying one twice, or
// on a later state of the document, converge (docs/pitr.md, "Why replay converges").
//
// A path is dotted, and a numeric component can be an array index or a field name; a
// field name can itself hold a dot. Servers since 6.1, with showExpandedEvents (which
// the collector asks for), give every update event a disambiguatedPaths document, with
// an entry for each path that has a field name holding a dot or a numeric field name of
// a document: its components, field names as strings and array indexes as integers
// (mongodb/mongo jstests/change_streams/expanded_update_description.js). A path
// without an entry is split at its dots, and a numeric component is an index in an
// array and a field name in a document, which is what update operators do too. An
// event without disambiguatedPaths (MongoDB 6.0) cannot tell a dot between field names
// from a dot inside one: see dotsUncertain.

// updateDescription is an update event's updateDescription, its paths resolved.
type updateDescription struct {
	updatedFields bson.Raw // as the event has it: the $set of the operator form
	updated       []pathValue
	removed       []fieldPath
	truncated     []truncation
	// disambiguated: the event has disambiguatedPaths, so every path is certain.
	disambiguated bool
}

type pathValue struct {
	path  fieldPath
	value bson.RawValue
}

type truncation struct {
	path    fieldPath
	newSize int
}

// fieldPath is the components of a path in a document.
type fieldPath []pathPart

type pathPart struct {
	name string
	// index is set for a component known to be an array index (from
	// disambiguatedPaths), or, when known is false, for a numeric component that is an
	// index if its container is an array.
	index int
	kind  partKind
}

type partKind uint8

const (
	fieldName    partKind = iota // a field name, for certain
	arrayIndex                   // an array index, for certain
	numericOrKey                 // numeric, undisambiguated: an index in an array, a field name in a document
)

// errMalformedUpdate is an updateDescription that cannot be read.
var errMalformedUpdate = errors.New("malformed updateDescription")

// parseUpdateDescription reads an update event's updateDescription.
func parseUpdateDescription(raw bson.Raw) (*updateDescription, error) {
	if raw == nil {
		return nil, fmt.Errorf("%w: the update event has none", errMalformedUpdate)
	}
	disambiguated, _ := raw.Lookup("disambiguatedPaths").DocumentOK()
	resolve := func(dotted string) (fieldPath, error) {
		if parts, ok := disambiguated.Lookup(dotted).ArrayOK(); ok && disambiguated != nil {
			return pathFromParts(dotted, parts)
		}
		return pathFromDotted(dotted), nil
	}
	ud := &updateDescription{disambiguated: disambiguated != nil}
	if v := raw.Lookup("updatedFields"); v.Type != bson.TypeNull && v.Type != 0 {
		fields, ok := v.DocumentOK()
		if !ok {
			return nil, fmt.Errorf("%w: updatedFields is a %s, not a document", errMalformedUpdate, v.Type)
		}
		elements, err := fields.Elements()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errMalformedUpdate, err)
		}
		ud.updatedFields = fields
		for _, el := range elements {
			p, err := resolve(el.Key())
			if err != nil {
				return nil, err
			}
			ud.updated = append(ud.updated, pathValue{path: p, value: el.Value()})
		}
	}
	if err := eachArrayElement(raw, "removedFields", func(v bson.RawValue) error {
		dotted, ok := v.StringValueOK()
		if !ok {
			return fmt.Errorf("%w: a removedFields entry is a %s, not a string", errMalformedUpdate, v.Type)
		}
		p, err := resolve(dotted)
		ud.removed = append(ud.removed, p)
		return err
	}); err != nil {
		return nil, err
	}
	if err := eachArrayElement(raw, "truncatedArrays", func(v bson.RawValue) error {
		entry, ok := v.DocumentOK()
		dotted, ok1 := entry.Lookup("field").StringValueOK()
		size, ok2 := entry.Lookup("newSize").AsInt64OK()
		if !ok || !ok1 || !ok2 || size < 0 {
			return fmt.Errorf("%w: a truncatedArrays entry is not {field: <string>, newSize: <number>}", errMalformedUpdate)
		}
		p, err := resolve(dotted)
		ud.truncated = append(ud.truncated, truncation{path: p, newSize: int(size)})
		return err
	}); err != nil {
		return nil, err
	}
	return ud, nil
}

func eachArrayElement(doc bson.Raw, key string, fn func(bson.RawValue) error) error {
	v := doc.Lookup(key)
	if v.Type == 0 || v.Type == bson.TypeNull {
		return nil
	}
	array, ok := v.ArrayOK()
	if !ok {
		return fmt.Errorf("%w: %s is a %s, not an array", errMalformedUpdate, key, v.Type)
	}
	values, err := array.Values()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errMalformedUpdate, key, err)
	}
	for _, v := range values {
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

func pathFromDotted(dotted string) fieldPath {
	names := strings.Split(dotted, ".")
	p := make(fieldPath, len(names))
	for i, name := range names {
		p[i] = pathPart{name: name}
		if n, err := strconv.Atoi(name); err == nil && n >= 0 && strconv.Itoa(n) == name {
			p[i].kind, p[i].index = numericOrKey, n
		}
	}
	return p
}

func pathFromParts(dotted string, parts bson.RawArray) (fieldPath, error) {
	values, err := parts.Values()
	if err != nil || len(values) == 0 {
		return nil, fmt.Errorf("%w: disambiguatedPaths[%q] is not a non-empty array", errMalformedUpdate, dotted)
	}
	p := make(fieldPath, len(values))
	for i, v := range values {
		if name, ok := v.StringValueOK(); ok {
			p[i] = pathPart{name: name, kind: fieldName}
			continue
		}
		n, ok := v.AsInt64OK()
		if !ok || n < 0 || n > 1<<24 {
			return nil, fmt.Errorf("%w: disambiguatedPaths[%q] has a component that is neither a field name nor an array index", errMalformedUpdate, dotted)
		}
		p[i] = pathPart{name: strconv.FormatInt(n, 10), index: int(n), kind: arrayIndex}
	}
	return p, nil
}

// dotted is the path as update operators take it.
func (p fieldPath) dotted() string {
	names := make([]string, len(p))
	for i, part := range p {
		names[i] = part.name
	}
	return strings.Join(names, ".")
}

// operatorsExpress tells whether update operators address exactly this path: not when
// a field name holds a dot (operators would split it), starts with $ or is empty (they
// refuse it). A numeric component is an index to operators in an array and a field name
// in a document, as the source's document had it when the target's is the same.
func (p fieldPath) operatorsExpress() bool {
	for _, part := range p {
		if part.kind == fieldName && (part.name == "" || strings.Contains(part.name, ".") || strings.HasPrefix(part.name, "$")) {
			return false
		}
	}
	return true
}

// operatorsExpress tells whether the whole update can go as update operators.
func (ud *updateDescription) operatorsExpress() bool {
	for _, u := range ud.updated {
		// $set takes updatedFields as the event has them: with no dot inside a
		// component, each key is its path's components joined by dots.
		if !u.path.operatorsExpress() {
			return false
		}
	}
	for _, p := range ud.removed {
		if !p.operatorsExpress() {
			return false
		}
	}
	for _, t := range ud.truncated {
		if !t.path.operatorsExpress() {
			return false
		}
	}
	return true
}

// dotsUncertain tells whether a path of the update may name a field whose name holds a
// dot without the event saying so: it has no disambiguatedPaths, and a path has a dot.
// Such a path is split at its dots only where the document has no field name with a
// dot (hasFieldNameWithDot): the reading then is the only one the document allows.
func (ud *updateDescription) dotsUncertain() bool {
	if ud.disambiguated {
		return false
	}
	for _, u := range ud.updated {
		if len(u.path) > 1 {
			return true
		}
	}
	for _, p := range ud.removed {
		if len(p) > 1 {
			return true
		}
	}
	for _, t := range ud.truncated {
		if len(t.path) > 1 {
			return true
		}
	}
	return false
}

// hasFieldNameWithDot tells whether doc, or a document or array inside it, has a field
// whose name holds a dot.
func hasFieldNameWithDot(doc bson.Raw) bool {
	elements, _ := doc.Elements()
	for _, el := range elements {
		if strings.Contains(el.Key(), ".") {
			return true
		}
		v := el.Value()
		if inner, ok := v.DocumentOK(); ok && hasFieldNameWithDot(inner) {
			return true
		}
		if inner, ok := v.ArrayOK(); ok && hasFieldNameWithDot(bson.Raw(inner)) {
			return true
		}
	}
	return false
}

// operatorUpdates are the update operator documents that apply the event, in order:
// each truncation first (a $push of nothing with $slice: the array's first newSize
// elements; one per array, as two could nest), then $set of updatedFields (as the
// event has them, in as many steps as their order needs, see setSteps) and $unset of
// removedFields.
func (ud *updateDescription) operatorUpdates() []bson.D {
	var updates []bson.D
	for _, t := range ud.truncated {
		updates = append(updates, bson.D{{Key: "$push", Value: bson.D{{Key: t.path.dotted(), Value: bson.D{
			{Key: "$each", Value: bson.A{}}, {Key: "$slice", Value: t.newSize},
		}}}}})
	}
	var set bson.D
	if steps := ud.setSteps(); len(steps) == 1 {
		set = append(set, bson.E{Key: "$set", Value: ud.updatedFields})
	} else {
		for _, step := range steps {
			fields := make(bson.D, len(step))
			for i, u := range step {
				fields[i] = bson.E{Key: u.path.dotted(), Value: u.value}
			}
			updates = append(updates, bson.D{{Key: "$set", Value: fields}})
		}
	}
	if len(ud.removed) > 0 {
		unset := make(bson.D, len(ud.removed))
		for i, p := range ud.removed {
			unset[i] = bson.E{Key: p.dotted(), Value: ""}
		}
		set = append(set, bson.E{Key: "$unset", Value: unset})
	}
	if set != nil {
		updates = append(updates, set)
	}
	return updates
}

// setSteps splits updatedFields into $set steps that create new fields in the event's
// order. A server appends the fields an update creates to their document, and creates
// those of one $set in the order of their names (by number for numeric names: "Update
// Operators", https://www.mongodb.com/docs/manual/reference/operator/update/#behavior),
// while the event lists them in the order the source's update made them (a pipeline
// makes them in its own order). Only siblings can be new together: a path with a dot
// comes from a sub-diff of a document or array that existed (mongod's
// change_stream_document_diff_parser.cpp), so fields under different parents never
// change each other's places. A step ends where a field would come, among its siblings
// of the step, before one the event lists earlier.
func (ud *updateDescription) setSteps() [][]pathValue {
	var steps [][]pathValue
	last := map[string]pathPart{} // by parent: the last sibling in the current step
	for _, u := range ud.updated {
		parent, leaf := u.path[:len(u.path)-1].dotted(), u.path[len(u.path)-1]
		if before, ok := last[parent]; len(steps) == 0 || ok && comparePathParts(leaf, before) <= 0 {
			steps = append(steps, nil)
			clear(last)
		}
		steps[len(steps)-1] = append(steps[len(steps)-1], u)
		last[parent] = leaf
	}
	return steps
}

// comparePathParts orders two field names as a server's update applies them: by name,
// two numbers by number.
func comparePathParts(a, b pathPart) int {
	x, xErr := strconv.Atoi(a.name)
	y, yErr := strconv.Atoi(b.name)
	if xErr == nil && yErr == nil && x >= 0 && y >= 0 {
		return cmp.Compare(x, y)
	}
	return strings.Compare(a.name, b.name)
}

// applyTo applies the update to doc, a document as the target holds it, the way the
// source's server did: truncations, then new values (creating missing embedded
// documents, padding arrays with nulls), then removals (a removed array element becomes
// null, as $unset leaves it). A path that cannot be followed in doc (through a value
// that is not a document or an array, or into an array by a field name) is left alone:
// the source's document was not shaped so then, and the source's later history
// overwrites that part (docs/pitr.md). It returns the new document.
func (ud *updateDescription) applyTo(doc bson.D) bson.D {
	for _, t := range ud.truncated {
		doc = editDoc(doc, t.path, false, func(v any, exists bool) (any, leafAction) {
			if array, ok := asContainer(v).(bson.A); ok && exists && len(array) > t.newSize {
				return array[:t.newSize], replaceLeaf
			}
			return nil, keepLeaf
		})
	}
	for _, u := range ud.updated {
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
