package query

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// compileArrayFilters reads an update's arrayFilters
// (https://www.mongodb.com/docs/manual/reference/operator/update/positional-filtered/):
// filters each on one identifier (a lower-case letter, then letters and
// digits), the identifier standing for an array element, by identifier.
func compileArrayFilters(v Value) (map[string]*Filter, error) {
	if v.Type == 0 {
		return nil, nil
	}
	if v.Type != bsoncore.TypeArray {
		return nil, errorf(CodeTypeMismatch, "BSON field 'update.updates.arrayFilters' is the wrong type '%s', expected type 'array'", TypeName(v.Type))
	}
	out := map[string]*Filter{}
	for _, f := range ArrayValues(v) {
		d, ok := f.DocumentOK()
		if !ok {
			return nil, errorf(CodeTypeMismatch, "BSON field 'update.updates.arrayFilters' is the wrong type '%s', expected type 'object'", TypeName(f.Type))
		}
		ids := map[string]bool{}
		filterIDs(d, ids)
		if len(ids) != 1 {
			names := make([]string, 0, len(ids))
			for id := range ids {
				names = append(names, id)
			}
			return nil, errorf(CodeFailedToParse, "Error parsing array filter :: caused by :: Expected a single top-level field name, found %s", strings.Join(names, " and "))
		}
		var id string
		for k := range ids {
			id = k
		}
		if !validVarName(id) || strings.ContainsFunc(id, func(r rune) bool { return r == '_' }) {
			return nil, errorf(CodeBadValue, "Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string beginning with a lowercase letter, found '%s'", id)
		}
		if out[id] != nil {
			return nil, errorf(CodeFailedToParse, "Found multiple array filters with the same top-level field name %s", id)
		}
		m, err := CompileFilter(d)
		if err != nil {
			return nil, err
		}
		out[id] = m
	}
	return out, nil
}

// filterIDs collects the first parts of a filter's field paths, through
// $and, $or and $nor.
func filterIDs(d bsoncore.Document, ids map[string]bool) {
	for _, f := range Fields(d) {
		switch {
		case f.Key == "$and" || f.Key == "$or" || f.Key == "$nor":
			for _, sub := range ArrayValues(f.Val) {
				if sd, ok := sub.DocumentOK(); ok {
					filterIDs(sd, ids)
				}
			}
		case strings.HasPrefix(f.Key, "$"):
		default:
			id, _, _ := strings.Cut(f.Key, ".")
			ids[id] = true
		}
	}
}

// matchesElement applies an array filter to an element: the element is the
// value of the identifier's field.
func (f *Filter) matchesElement(id string, elem any) bool {
	return f.Matches(BuildDoc([]Field{{id, MarshalValue(elem)}}))
}
