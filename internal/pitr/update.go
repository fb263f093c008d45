package pitr

import (
	"errors"
	"fmt"
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
