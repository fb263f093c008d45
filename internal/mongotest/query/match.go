package query

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Filter is a compiled query filter
// (https://www.mongodb.com/docs/manual/reference/operator/query/): field
// equality, comparison ($eq $ne $gt $gte $lt $lte $in $nin), $exists and
// $type, with MongoDB's array, nested-field and type-bracketing semantics.
type Filter struct {
	pred docPred
	// fields are the field conditions at the top level (and in a top-level
	// $and), for the array index the positional operator takes.
	fields []fieldCond
	// wrapped marks a $pull condition on values, matched as {"": <element>}.
	wrapped bool
}

type fieldCond struct {
	path []string
	pred fieldPred
}

// Matches reports whether doc passes; a nil filter passes everything.
func (f *Filter) Matches(doc bsoncore.Document) bool { return f == nil || f.pred(DocValue(doc)) }

// CompileFilter compiles a filter; nil or empty matches everything.
func CompileFilter(filter bsoncore.Document) (*Filter, error) {
	f := &Filter{}
	pred, err := compileQuery(filter, &f.fields)
	if err != nil {
		return nil, err
	}
	f.pred = pred
	return f, nil
}

// MatchedIndex is the array index the positional operator ($) takes for a
// document the filter matches: the element of the first array on its path
// that a field condition matched, the last such condition deciding, as
// mongod's elemMatchKey (https://www.mongodb.com/docs/manual/reference/operator/update/positional/);
// "" when no condition matched through an array.
func (f *Filter) MatchedIndex(doc bsoncore.Document) string {
	if f == nil {
		return ""
	}
	matched := ""
	for _, c := range f.fields {
		arr, rest, ok := firstArray(DocValue(doc), c.path)
		if !ok {
			continue
		}
		for i, e := range ArrayValues(arr) {
			var cs []candidate
			WalkPath(e, rest, func(v Value, found bool) { cs = append(cs, candidate{v, found}) })
			if c.pred(cs) {
				matched = ArrayKey(i)
				break
			}
		}
	}
	return matched
}

// firstArray follows path through documents to the first array on it (or
// at its end), returning the array and the rest of the path after it.
func firstArray(v Value, path []string) (Value, []string, bool) {
	for i, p := range path {
		d, ok := v.DocumentOK()
		if !ok {
			return Value{}, nil, false
		}
		child, err := d.LookupErr(p)
		if err != nil {
			return Value{}, nil, false
		}
		if child.Type == bsoncore.TypeArray {
			return child, path[i+1:], true
		}
		v = child
	}
	return Value{}, nil, false
}

type docPred = func(doc Value) bool

// candidate is one value reached by a field path (found=false: a branch
// without the field).
type candidate struct {
	v     Value
	found bool
}

type fieldPred = func(cs []candidate) bool

// Operators that exist in MongoDB but not here: refused with 115 rather
// than reported as unknown.
var unsupportedQueryOps = map[string]bool{
	"$expr": true, "$where": true, "$text": true, "$geoWithin": true,
	"$geoIntersects": true, "$near": true, "$nearSphere": true, "$bitsAllSet": true, "$bitsAnySet": true,
	"$bitsAllClear": true, "$bitsAnyClear": true, "$sampleRate": true, "$regex": true, "$options": true,
	"$size": true, "$all": true, "$elemMatch": true, "$mod": true,
}

// compileQuery compiles a filter; its top-level field conditions go to
// fields when it is not nil.
func compileQuery(filter bsoncore.Document, fields *[]fieldCond) (docPred, error) {
	if filter == nil {
		filter = BuildDoc(nil)
	}
	elems, err := filter.Elements()
	if err != nil {
		return nil, errorf(CodeFailedToParse, "malformed filter")
	}
	var preds []docPred
	for _, e := range elems {
		key, v := e.Key(), e.Value()
		var p docPred
		switch {
		case key == "$comment":
			continue
		case key == "$and":
			p, err = compileLogical(key, v, fields)
		case key == "$or" || key == "$nor":
			p, err = compileLogical(key, v, nil)
		case key == "$jsonSchema":
			p, err = compileJSONSchema(v)
		case unsupportedQueryOps[key]:
			return nil, Unsupported("the query operator %s", key)
		case strings.HasPrefix(key, "$"):
			return nil, errorf(CodeBadValue, "unknown top level operator: %s", key)
		default:
			p, err = compileField(key, v, fields)
		}
		if err != nil {
			return nil, err
		}
		preds = append(preds, p)
	}
	return allOf(preds), nil
}

// compileLogical compiles $and, $or and $nor: a non-empty array of filters.
func compileLogical(op string, v Value, fields *[]fieldCond) (docPred, error) {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, errorf(CodeBadValue, "%s must be an array", op)
	}
	values, _ := arr.Values()
	if len(values) == 0 {
		return nil, errorf(CodeBadValue, "$and/$or/$nor must be a nonempty array")
	}
	var preds []docPred
	for _, item := range values {
		d, ok := item.DocumentOK()
		if !ok {
			return nil, errorf(CodeBadValue, "$or/$and/$nor entries need to be full objects")
		}
		p, err := compileQuery(d, fields)
		if err != nil {
			return nil, err
		}
		preds = append(preds, p)
	}
	switch op {
	case "$and":
		return allOf(preds), nil
	case "$or":
		return anyOf(preds), nil
	}
	someMatch := anyOf(preds)
	return func(doc Value) bool { return !someMatch(doc) }, nil
}

// anyOf is the disjunction of preds.
func anyOf[T any](preds []func(T) bool) func(T) bool {
	return func(x T) bool {
		for _, p := range preds {
			if p(x) {
				return true
			}
		}
		return false
	}
}

// allOf is the conjunction of preds (true when there are none).
func allOf[T any](preds []func(T) bool) func(T) bool {
	return func(x T) bool {
		for _, p := range preds {
			if !p(x) {
				return false
			}
		}
		return true
	}
}

func compileField(path string, v Value, fields *[]fieldCond) (docPred, error) {
	fp, err := compileFieldValue(v)
	if err != nil {
		return nil, err
	}
	parts := SplitPath(path)
	if fields != nil {
		*fields = append(*fields, fieldCond{parts, fp})
	}
	return func(doc Value) bool {
		var cs []candidate
		WalkPath(doc, parts, func(v Value, found bool) { cs = append(cs, candidate{v, found}) })
		return fp(cs)
	}, nil
}

// compileFieldValue compiles the right-hand side of {field: <v>}: an
// operator document or a value to compare for equality.
func compileFieldValue(v Value) (fieldPred, error) {
	if d, ok := v.DocumentOK(); ok && isOperatorDoc(d) {
		return compileOperators(d)
	}
	if v.Type == bsoncore.TypeRegex {
		return nil, Unsupported("regular expressions in queries")
	}
	return eqPred(v), nil
}

func isOperatorDoc(d bsoncore.Document) bool {
	e, err := d.IndexErr(0)
	return err == nil && strings.HasPrefix(e.Key(), "$")
}

func compileOperators(d bsoncore.Document) (fieldPred, error) {
	elems, _ := d.Elements()
	var preds []fieldPred
	for _, e := range elems {
		op, v := e.Key(), e.Value()
		var p fieldPred
		var err error
		switch op {
		case "$eq":
			p = eqPred(v)
		case "$ne":
			p = not(eqPred(v))
		case "$gt", "$gte", "$lt", "$lte":
			p = comparePred(op, v)
		case "$in", "$nin":
			p, err = inPred(v)
			if op == "$nin" && err == nil {
				p = not(p)
			}
		case "$exists":
			want := Truthy(v)
			p = func(cs []candidate) bool { return anyFound(cs) == want }
		case "$type":
			p, err = typePred(v)
		case "$not":
			d, isDoc := v.DocumentOK()
			if !isDoc || !isOperatorDoc(d) {
				return nil, errorf(CodeBadValue, "$not needs an operator document")
			}
			if p, err = compileOperators(d); err == nil {
				p = not(p)
			}
		case "$comment":
			continue
		default:
			if unsupportedQueryOps[op] {
				return nil, Unsupported("the query operator %s", op)
			}
			return nil, errorf(CodeBadValue, "unknown operator: %s", op)
		}
		if err != nil {
			return nil, err
		}
		preds = append(preds, p)
	}
	return allOf(preds), nil
}

func not(p fieldPred) fieldPred { return func(cs []candidate) bool { return !p(cs) } }

func anyFound(cs []candidate) bool {
	for _, c := range cs {
		if c.found {
			return true
		}
	}
	return false
}

func allFound(cs []candidate) bool {
	for _, c := range cs {
		if !c.found {
			return false
		}
	}
	return true
}

// anyLeaf reports whether ok holds for a reached value or, when that value
// is an array, for one of its elements: {tags: "a"} matches {tags: ["a", "b"]}.
func anyLeaf(cs []candidate, ok func(v Value) bool) bool {
	for _, c := range cs {
		if !c.found {
			continue
		}
		if ok(c.v) {
			return true
		}
		if c.v.Type == bsoncore.TypeArray {
			for _, e := range ArrayValues(c.v) {
				if ok(e) {
					return true
				}
			}
		}
	}
	return false
}

// eqPred: equality; a null operand also matches a missing field.
func eqPred(x Value) fieldPred {
	isNull := x.Type == bsoncore.TypeNull
	return func(cs []candidate) bool {
		if isNull && (len(cs) == 0 || !allFound(cs)) {
			return true
		}
		return anyLeaf(cs, func(v Value) bool { return Equal(v, x) })
	}
}

// comparePred implements $gt/$gte/$lt/$lte with type bracketing: only
// values of the operand's canonical type compare, except MinKey/MaxKey
// (https://www.mongodb.com/docs/manual/reference/method/db.collection.find/#type-bracketing).
func comparePred(op string, x Value) fieldPred {
	accept := map[string]func(int) bool{
		"$gt": func(c int) bool { return c > 0 }, "$gte": func(c int) bool { return c >= 0 },
		"$lt": func(c int) bool { return c < 0 }, "$lte": func(c int) bool { return c <= 0 },
	}[op]
	inclusiveNull := x.Type == bsoncore.TypeNull && (op == "$gte" || op == "$lte")
	anyType := x.Type == bsoncore.TypeMinKey || x.Type == bsoncore.TypeMaxKey
	return func(cs []candidate) bool {
		if inclusiveNull && !allFound(cs) {
			return true
		}
		return anyLeaf(cs, func(v Value) bool {
			if !anyType && canonicalType(v.Type) != canonicalType(x.Type) {
				return false
			}
			return accept(Compare(v, x))
		})
	}
}

func inPred(v Value) (fieldPred, error) {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, errorf(CodeBadValue, "$in needs an array")
	}
	vals, _ := arr.Values()
	preds := make([]fieldPred, len(vals))
	for i, x := range vals {
		if d, ok := x.DocumentOK(); ok && isOperatorDoc(d) {
			return nil, errorf(CodeBadValue, "cannot nest $ under $in")
		}
		if x.Type == bsoncore.TypeRegex {
			return nil, Unsupported("regular expressions in queries")
		}
		preds[i] = eqPred(x)
	}
	return func(cs []candidate) bool {
		for _, p := range preds {
			if p(cs) {
				return true
			}
		}
		return false
	}, nil
}

func typePred(v Value) (fieldPred, error) {
	specs := []Value{v}
	if arr, ok := v.ArrayOK(); ok {
		specs, _ = arr.Values()
	}
	var want []func(bsoncore.Type) bool
	for _, s := range specs {
		switch {
		case s.Type == bsoncore.TypeString && s.StringValue() == "number":
			want = append(want, func(t bsoncore.Type) bool { return canonicalType(t) == 10 })
		case s.Type == bsoncore.TypeString:
			t, ok := typeNames[s.StringValue()]
			if !ok {
				return nil, errorf(CodeBadValue, "Unknown type name alias: %s", s.StringValue())
			}
			want = append(want, func(x bsoncore.Type) bool { return x == t })
		case s.IsNumber():
			code := s.AsInt64()
			if code == -1 {
				code = int64(bsoncore.TypeMinKey)
			}
			want = append(want, func(x bsoncore.Type) bool { return int64(x) == code })
		default:
			return nil, errorf(CodeTypeMismatch, "type must be represented as a number or a string")
		}
	}
	return func(cs []candidate) bool {
		return anyLeaf(cs, func(x Value) bool {
			for _, w := range want {
				if w(x.Type) {
					return true
				}
			}
			return false
		})
	}, nil
}
