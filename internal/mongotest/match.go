package mongotest

import (
	"math"
	"regexp"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// matcher is a compiled query filter
// (https://www.mongodb.com/docs/manual/reference/operator/query/).
type matcher struct {
	pred func(doc bsoncore.Value) bool
}

func (m *matcher) matches(doc bsoncore.Document) bool { return m == nil || m.pred(docValue(doc)) }

// compileFilter compiles a filter; nil or empty matches everything.
func compileFilter(filter bsoncore.Document) (*matcher, error) {
	pred, err := compileQuery(filter)
	if err != nil {
		return nil, err
	}
	return &matcher{pred: pred}, nil
}

type docPred = func(doc bsoncore.Value) bool

// candidate is one value reached by a field path (found=false: a branch
// without the field).
type candidate struct {
	v     bsoncore.Value
	found bool
}

type fieldPred = func(cs []candidate) bool

// Operators that exist in MongoDB but not here: refused with 115 rather
// than reported as unknown.
var unsupportedQueryOps = map[string]bool{
	"$expr": true, "$where": true, "$text": true, "$jsonSchema": true, "$geoWithin": true,
	"$geoIntersects": true, "$near": true, "$nearSphere": true, "$bitsAllSet": true, "$bitsAnySet": true,
	"$bitsAllClear": true, "$bitsAnyClear": true, "$sampleRate": true,
}

func compileQuery(filter bsoncore.Document) (docPred, error) {
	if filter == nil {
		filter = buildDoc(nil)
	}
	elems, err := filter.Elements()
	if err != nil {
		return nil, errorf(codeFailedToParse, "malformed filter")
	}
	var preds []docPred
	for _, e := range elems {
		key, v := e.Key(), e.Value()
		var p docPred
		switch {
		case key == "$and" || key == "$or" || key == "$nor":
			p, err = compileLogical(key, v)
		case key == "$comment":
			continue
		case unsupportedQueryOps[key]:
			return nil, unsupported("query operator %s", key)
		case strings.HasPrefix(key, "$"):
			return nil, errorf(codeBadValue, "unknown top level operator: %s", key)
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

func compileLogical(op string, v bsoncore.Value) (docPred, error) {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, errorf(codeBadValue, "%s must be an array", op)
	}
	vals, _ := arr.Values()
	if len(vals) == 0 {
		return nil, errorf(codeBadValue, "$and/$or/$nor must be a nonempty array")
	}
	subs := make([]docPred, len(vals))
	for i, sv := range vals {
		d, ok := sv.DocumentOK()
		if !ok {
			return nil, errorf(codeBadValue, "$or/$and/$nor entries need to be full objects")
		}
		p, err := compileQuery(d)
		if err != nil {
			return nil, err
		}
		subs[i] = p
	}
	return func(doc bsoncore.Value) bool {
		for _, p := range subs {
			m := p(doc)
			switch {
			case op == "$and" && !m:
				return false
			case op == "$or" && m:
				return true
			case op == "$nor" && m:
				return false
			}
		}
		return op != "$or"
	}, nil
}

func compileField(path string, v bsoncore.Value) (docPred, error) {
	fp, err := compileFieldValue(v)
	if err != nil {
		return nil, err
	}
	parts := splitPath(path)
	return func(doc bsoncore.Value) bool {
		var cs []candidate
		walkPath(doc, parts, func(v bsoncore.Value, found bool) { cs = append(cs, candidate{v, found}) })
		return fp(cs)
	}, nil
}

// compileFieldValue compiles the right-hand side of {field: <v>}: an
// operator document, a regex, or a value to compare for equality.
func compileFieldValue(v bsoncore.Value) (fieldPred, error) {
	if d, ok := v.DocumentOK(); ok && isOperatorDoc(d) {
		return compileOperators(d)
	}
	if v.Type == bsoncore.TypeRegex {
		return regexPred(v)
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
			want := truthy(v)
			p = func(cs []candidate) bool { return anyFound(cs) == want }
		case "$type":
			p, err = typePred(v)
		case "$not":
			p, err = notPred(v)
		case "$regex":
			p, err = regexOpPred(v, d.Lookup("$options"))
		case "$options":
			if _, err := d.LookupErr("$regex"); err != nil {
				return nil, errorf(codeBadValue, "$options needs a $regex")
			}
			continue
		case "$size":
			p, err = sizePred(v)
		case "$all":
			p, err = allPred(v)
		case "$elemMatch":
			p, err = elemMatchPred(v)
		case "$mod":
			p, err = modPred(v)
		case "$comment":
			continue
		default:
			if unsupportedQueryOps[op] {
				return nil, unsupported("query operator %s", op)
			}
			return nil, errorf(codeBadValue, "unknown operator: %s", op)
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

// anyLeaf reports whether ok holds for a reached value or, when that value
// is an array, for one of its elements: {tags: "a"} matches {tags: ["a", "b"]}.
func anyLeaf(cs []candidate, ok func(v bsoncore.Value) bool) bool {
	for _, c := range cs {
		if !c.found {
			continue
		}
		if ok(c.v) {
			return true
		}
		if c.v.Type == bsoncore.TypeArray {
			elems := arrayValues(c.v)
			for _, e := range elems {
				if ok(e) {
					return true
				}
			}
		}
	}
	return false
}

// eqPred: equality; a null operand also matches a missing field.
func eqPred(x bsoncore.Value) fieldPred {
	isNull := x.Type == bsoncore.TypeNull
	return func(cs []candidate) bool {
		if isNull && (len(cs) == 0 || !allFound(cs)) {
			return true
		}
		return anyLeaf(cs, func(v bsoncore.Value) bool { return valuesEqual(v, x) })
	}
}

func allFound(cs []candidate) bool {
	for _, c := range cs {
		if !c.found {
			return false
		}
	}
	return true
}

// comparePred implements $gt/$gte/$lt/$lte with type bracketing: only
// values of the operand's canonical type compare, except MinKey/MaxKey
// (https://www.mongodb.com/docs/manual/reference/method/db.collection.find/#type-bracketing).
func comparePred(op string, x bsoncore.Value) fieldPred {
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
		return anyLeaf(cs, func(v bsoncore.Value) bool {
			if !anyType && canonicalType(v.Type) != canonicalType(x.Type) {
				return false
			}
			return accept(compareValues(v, x))
		})
	}
}

func inPred(v bsoncore.Value) (fieldPred, error) {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, errorf(codeBadValue, "$in needs an array")
	}
	vals, _ := arr.Values()
	preds := make([]fieldPred, len(vals))
	for i, x := range vals {
		if x.Type == bsoncore.TypeRegex {
			p, err := regexPred(x)
			if err != nil {
				return nil, err
			}
			preds[i] = p
			continue
		}
		if d, ok := x.DocumentOK(); ok && isOperatorDoc(d) {
			return nil, errorf(codeBadValue, "cannot nest $ under $in")
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

func truthy(v bsoncore.Value) bool {
	switch {
	case v.Type == bsoncore.TypeBoolean:
		return v.Boolean()
	case v.IsNumber():
		return v.AsFloat64() != 0
	case v.Type == bsoncore.TypeNull || v.Type == bsoncore.TypeUndefined || v.Type == 0:
		return false
	}
	return true
}

func typePred(v bsoncore.Value) (fieldPred, error) {
	specs := []bsoncore.Value{v}
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
				return nil, errorf(codeBadValue, "Unknown type name alias: %s", s.StringValue())
			}
			want = append(want, func(x bsoncore.Type) bool { return x == t })
		case s.IsNumber():
			code := s.AsInt64()
			if code == -1 {
				code = int64(bsoncore.TypeMinKey)
			}
			want = append(want, func(x bsoncore.Type) bool { return int64(x) == code })
		default:
			return nil, errorf(codeTypeMismatch, "type must be represented as a number or a string")
		}
	}
	return func(cs []candidate) bool {
		return anyLeaf(cs, func(x bsoncore.Value) bool {
			for _, w := range want {
				if w(x.Type) {
					return true
				}
			}
			return false
		})
	}, nil
}

func notPred(v bsoncore.Value) (fieldPred, error) {
	if v.Type == bsoncore.TypeRegex {
		p, err := regexPred(v)
		return not(p), err
	}
	d, ok := v.DocumentOK()
	if !ok || !isOperatorDoc(d) {
		return nil, errorf(codeBadValue, "$not needs a regex or a document")
	}
	p, err := compileOperators(d)
	if err != nil {
		return nil, err
	}
	return not(p), nil
}

func regexPred(v bsoncore.Value) (fieldPred, error) {
	pattern, options := v.Regex()
	return stringRegexPred(pattern, options)
}

func regexOpPred(v, options bsoncore.Value) (fieldPred, error) {
	opts, _ := options.StringValueOK()
	switch v.Type {
	case bsoncore.TypeRegex:
		p, o := v.Regex()
		if opts == "" {
			opts = o
		}
		return stringRegexPred(p, opts)
	case bsoncore.TypeString:
		return stringRegexPred(v.StringValue(), opts)
	}
	return nil, errorf(codeBadValue, "$regex has to be a string")
}

// stringRegexPred matches strings and symbols. Go's RE2 syntax covers the
// PCRE subset tests use; the "x" option has no RE2 equivalent and is refused.
func stringRegexPred(pattern, options string) (fieldPred, error) {
	re, err := compileRegex(pattern, options)
	if err != nil {
		return nil, err
	}
	return func(cs []candidate) bool {
		return anyLeaf(cs, func(v bsoncore.Value) bool {
			switch v.Type {
			case bsoncore.TypeString, bsoncore.TypeSymbol:
				return re.MatchString(stringOf(v))
			case bsoncore.TypeRegex:
				p, o := v.Regex()
				return p == pattern && o == options
			}
			return false
		})
	}, nil
}

func compileRegex(pattern, options string) (*regexp.Regexp, error) {
	flags := ""
	for _, o := range options {
		switch o {
		case 'i', 'm', 's':
			flags += string(o)
		case 'u':
		case 'x':
			return nil, unsupported("the regex option x")
		default:
			return nil, errorf(51108, "invalid flag in regex options: %c", o)
		}
	}
	if flags != "" {
		pattern = "(?" + flags + ")" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, unsupported("regular expression %q: %v", pattern, err)
	}
	return re, nil
}

func sizePred(v bsoncore.Value) (fieldPred, error) {
	n, err := asInt("$size", v)
	if err != nil {
		return nil, errorf(codeBadValue, "$size needs a number")
	}
	return func(cs []candidate) bool {
		for _, c := range cs {
			if c.found && c.v.Type == bsoncore.TypeArray {
				vals := arrayValues(c.v)
				if int64(len(vals)) == n {
					return true
				}
			}
		}
		return false
	}, nil
}

func allPred(v bsoncore.Value) (fieldPred, error) {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, errorf(codeBadValue, "$all needs an array")
	}
	vals, _ := arr.Values()
	var preds []fieldPred
	for _, x := range vals {
		p, err := compileFieldValue(x)
		if err != nil {
			return nil, err
		}
		preds = append(preds, p)
	}
	if len(preds) == 0 {
		return func([]candidate) bool { return false }, nil // {$all: []} matches nothing
	}
	return allOf(preds), nil
}

// elemMatchPred: an array element matches operators ({$gt: 1}) or, for
// documents, a whole query ({a: 1, b: {$gt: 2}}).
func elemMatchPred(v bsoncore.Value) (fieldPred, error) {
	d, ok := v.DocumentOK()
	if !ok {
		return nil, errorf(codeBadValue, "$elemMatch needs an Object")
	}
	var elemOK func(e bsoncore.Value) bool
	if isOperatorDoc(d) {
		p, err := compileOperators(d)
		if err != nil {
			return nil, err
		}
		elemOK = func(e bsoncore.Value) bool { return p([]candidate{{e, true}}) }
	} else {
		p, err := compileQuery(d)
		if err != nil {
			return nil, err
		}
		elemOK = func(e bsoncore.Value) bool { return e.Type == bsoncore.TypeEmbeddedDocument && p(e) }
	}
	return func(cs []candidate) bool {
		for _, c := range cs {
			if !c.found || c.v.Type != bsoncore.TypeArray {
				continue
			}
			elems := arrayValues(c.v)
			for _, e := range elems {
				if elemOK(e) {
					return true
				}
			}
		}
		return false
	}, nil
}

func modPred(v bsoncore.Value) (fieldPred, error) {
	arr, ok := v.ArrayOK()
	vals, _ := arr.Values()
	if !ok || len(vals) != 2 || !vals[0].IsNumber() || !vals[1].IsNumber() {
		return nil, errorf(codeBadValue, "malformed mod, needs to be an array of [divisor, remainder]")
	}
	div, rem := vals[0].AsInt64(), vals[1].AsInt64()
	if div == 0 {
		return nil, errorf(codeBadValue, "divisor cannot be 0")
	}
	return func(cs []candidate) bool {
		return anyLeaf(cs, func(x bsoncore.Value) bool {
			if !x.IsNumber() {
				return false
			}
			f := x.AsFloat64()
			return !math.IsNaN(f) && !math.IsInf(f, 0) && int64(f)%div == rem
		})
	}, nil
}
