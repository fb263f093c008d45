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
}

// Matches reports whether doc passes; a nil filter passes everything.
func (f *Filter) Matches(doc bsoncore.Document) bool { return f == nil || f.pred(DocValue(doc)) }

// CompileFilter compiles a filter; nil or empty matches everything.
func CompileFilter(filter bsoncore.Document) (*Filter, error) {
	pred, err := compileQuery(filter)
	if err != nil {
		return nil, err
	}
	return &Filter{pred: pred}, nil
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
	"$expr": true, "$where": true, "$text": true, "$jsonSchema": true, "$geoWithin": true,
	"$geoIntersects": true, "$near": true, "$nearSphere": true, "$bitsAllSet": true, "$bitsAnySet": true,
	"$bitsAllClear": true, "$bitsAnyClear": true, "$sampleRate": true, "$regex": true, "$options": true,
	"$size": true, "$all": true, "$elemMatch": true, "$mod": true,
}

func compileQuery(filter bsoncore.Document) (docPred, error) {
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
		case key == "$and" || key == "$or" || key == "$nor":
			p, err = compileLogical(key, v)
		case unsupportedQueryOps[key]:
			return nil, Unsupported("the query operator %s", key)
		case strings.HasPrefix(key, "$"):
			return nil, errorf(CodeBadValue, "unknown top level operator: %s", key)
		default:
			p, err = compileField(key, v)
		}
		if err != nil {
			return nil, err
		}
		preds = append(preds, p)
	}
	return allOf(preds), nil
}

// compileLogical compiles $and, $or and $nor: a non-empty array of filters.
func compileLogical(op string, v Value) (docPred, error) {
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
		p, err := compileQuery(d)
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

func compileField(path string, v Value) (docPred, error) {
	fp, err := compileFieldValue(v)
	if err != nil {
		return nil, err
	}
	parts := SplitPath(path)
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
