package query

import (
	"slices"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// SortKey is one field of a compiled sort.
type SortKey struct {
	path []string
	desc bool
}

// CompileSort reads a sort specification ({field: 1 | -1, ...}).
func CompileSort(spec bsoncore.Document) ([]SortKey, error) {
	if spec == nil {
		return nil, nil
	}
	elems, err := spec.Elements()
	if err != nil {
		return nil, errorf(CodeFailedToParse, "malformed sort")
	}
	keys := make([]SortKey, 0, len(elems))
	for _, e := range elems {
		v := e.Value()
		if v.Type == bsoncore.TypeEmbeddedDocument {
			return nil, Unsupported("sort by %s (only 1 and -1)", v)
		}
		if !v.IsNumber() || (v.AsFloat64() != 1 && v.AsFloat64() != -1) {
			return nil, errorf(15975, "$sort key ordering must be 1 (for ascending) or -1 (for descending)")
		}
		keys = append(keys, SortKey{path: SplitPath(e.Key()), desc: v.AsFloat64() < 0})
	}
	return keys, nil
}

// sortValue is the value a document sorts by: a missing field sorts as
// null, and an array by its smallest element ascending or its largest
// descending (https://www.mongodb.com/docs/manual/reference/method/cursor.sort/#sort-by-an-array-field).
func sortValue(doc bsoncore.Document, k SortKey) bsoncore.Value {
	best := bsoncore.Value{}
	consider := func(v bsoncore.Value) {
		if best.Type == 0 {
			best = v
			return
		}
		c := Compare(v, best)
		if (k.desc && c > 0) || (!k.desc && c < 0) {
			best = v
		}
	}
	WalkPath(DocValue(doc), k.path, func(v bsoncore.Value, found bool) {
		switch {
		case !found:
			consider(NullValue)
		case v.Type == bsoncore.TypeArray:
			elems := ArrayValues(v)
			if len(elems) == 0 {
				consider(UndefinedValue)
			}
			for _, e := range elems {
				consider(e)
			}
		default:
			consider(v)
		}
	})
	if best.Type == 0 {
		return NullValue
	}
	return best
}

// SortBy sorts items by their documents, stably so ties keep their
// natural order.
func SortBy[T any](items []T, doc func(T) bsoncore.Document, keys []SortKey) {
	if len(keys) == 0 {
		return
	}
	type keyed struct {
		item T
		vals []bsoncore.Value
	}
	ks := make([]keyed, len(items))
	for i, it := range items {
		ks[i].item = it
		for _, k := range keys {
			ks[i].vals = append(ks[i].vals, sortValue(doc(it), k))
		}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		for i, k := range keys {
			c := Compare(a.vals[i], b.vals[i])
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	for i := range ks {
		items[i] = ks[i].item
	}
}
