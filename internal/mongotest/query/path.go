package query

import (
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// SplitPath splits a dotted field path.
func SplitPath(p string) []string { return strings.Split(p, ".") }

// ArrayKey is the field name of array element i.
func ArrayKey(i int) string { return strconv.Itoa(i) }

// ArrayIndex reports whether a path component addresses an array element,
// and which.
func ArrayIndex(s string) (int, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// WalkPath follows a dotted path the way MongoDB queries do: through
// embedded documents, into array elements by index, and across every
// document element of an array
// (https://www.mongodb.com/docs/manual/tutorial/query-array-of-documents/).
// fn receives each value reached, or found=false for a branch that ends
// without the field. Arrays at the end of the path are passed whole.
func WalkPath(v Value, path []string, fn func(v Value, found bool)) {
	if len(path) == 0 {
		fn(v, true)
		return
	}
	switch v.Type {
	case bsoncore.TypeEmbeddedDocument:
		child, err := v.Document().LookupErr(path[0])
		if err != nil {
			fn(Value{}, false)
			return
		}
		WalkPath(child, path[1:], fn)
	case bsoncore.TypeArray:
		elems := ArrayValues(v)
		reached := false
		if i, ok := ArrayIndex(path[0]); ok && i < len(elems) {
			WalkPath(elems[i], path[1:], fn)
			reached = true
		}
		for _, e := range elems {
			if e.Type == bsoncore.TypeEmbeddedDocument {
				WalkPath(e, path, fn)
				reached = true
			}
		}
		if !reached {
			fn(Value{}, false)
		}
	default:
		fn(Value{}, false)
	}
}

// LookupPath returns the value at a dotted path without crossing arrays
// except by numeric index (the semantics of update targets).
func LookupPath(d bsoncore.Document, path []string) (Value, bool) {
	v := DocValue(d)
	for _, p := range path {
		switch v.Type {
		case bsoncore.TypeEmbeddedDocument:
			child, err := v.Document().LookupErr(p)
			if err != nil {
				return Value{}, false
			}
			v = child
		case bsoncore.TypeArray:
			i, ok := ArrayIndex(p)
			if !ok {
				return Value{}, false
			}
			child, err := v.Array().IndexErr(uint(i))
			if err != nil {
				return Value{}, false
			}
			v = child
		default:
			return Value{}, false
		}
	}
	return v, true
}
