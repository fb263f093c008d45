package mongotest

import (
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func splitPath(p string) []string { return strings.Split(p, ".") }

func arrayKey(i int) string { return strconv.Itoa(i) }

// arrayIndex reports whether a path component addresses an array element.
func arrayIndex(s string) (int, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// walkPath follows a dotted path the way MongoDB queries do: through
// embedded documents, into array elements by index, and across every
// document element of an array
// (https://www.mongodb.com/docs/manual/tutorial/query-array-of-documents/).
// fn receives each value reached, or found=false for a branch that ends
// without the field. Arrays at the end of the path are passed whole.
func walkPath(v bsoncore.Value, path []string, fn func(v bsoncore.Value, found bool)) {
	if len(path) == 0 {
		fn(v, true)
		return
	}
	switch v.Type {
	case bsoncore.TypeEmbeddedDocument:
		child, err := v.Document().LookupErr(path[0])
		if err != nil {
			fn(bsoncore.Value{}, false)
			return
		}
		walkPath(child, path[1:], fn)
	case bsoncore.TypeArray:
		elems := arrayValues(v)
		reached := false
		if i, ok := arrayIndex(path[0]); ok && i < len(elems) {
			walkPath(elems[i], path[1:], fn)
			reached = true
		}
		for _, e := range elems {
			if e.Type == bsoncore.TypeEmbeddedDocument {
				walkPath(e, path, fn)
				reached = true
			}
		}
		if !reached {
			fn(bsoncore.Value{}, false)
		}
	default:
		fn(bsoncore.Value{}, false)
	}
}

func docValue(d bsoncore.Document) bsoncore.Value {
	return bsoncore.Value{Type: bsoncore.TypeEmbeddedDocument, Data: d}
}

// lookupPath returns the value at a dotted path without crossing arrays
// except by numeric index (the semantics of aggregation field paths on a
// single value, and of update targets).
func lookupPath(d bsoncore.Document, path []string) (bsoncore.Value, bool) {
	v := docValue(d)
	for _, p := range path {
		switch v.Type {
		case bsoncore.TypeEmbeddedDocument:
			child, err := v.Document().LookupErr(p)
			if err != nil {
				return bsoncore.Value{}, false
			}
			v = child
		case bsoncore.TypeArray:
			i, ok := arrayIndex(p)
			if !ok {
				return bsoncore.Value{}, false
			}
			child, err := v.Array().IndexErr(uint(i))
			if err != nil {
				return bsoncore.Value{}, false
			}
			v = child
		default:
			return bsoncore.Value{}, false
		}
	}
	return v, true
}
