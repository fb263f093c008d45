package mongotest

import (
	"math"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// expr is a compiled aggregation expression evaluated against a document
// (https://www.mongodb.com/docs/manual/reference/operator/aggregation/).
// A result of Type 0 means "missing".
type expr func(root bsoncore.Document) (bsoncore.Value, error)

const codeInvalidPipelineOperator = 168

func compileExpr(v bsoncore.Value) (expr, error) {
	switch v.Type {
	case bsoncore.TypeString:
		s := v.StringValue()
		if strings.HasPrefix(s, "$") {
			return compileFieldPath(s)
		}
	case bsoncore.TypeEmbeddedDocument:
		d := v.Document()
		if isOperatorDoc(d) {
			return compileOperatorExpr(d)
		}
		return compileObjectExpr(d)
	case bsoncore.TypeArray:
		parts, err := compileExprs(arrayValues(v))
		if err != nil {
			return nil, err
		}
		return func(root bsoncore.Document) (bsoncore.Value, error) {
			vals, err := evalAll(parts, root)
			return arrayValue(vals), err
		}, nil
	}
	return constant(v), nil
}

// compileExprs compiles each value (operator arguments, array elements).
func compileExprs(vals []bsoncore.Value) ([]expr, error) {
	es := make([]expr, len(vals))
	for i, v := range vals {
		e, err := compileExpr(v)
		if err != nil {
			return nil, err
		}
		es[i] = e
	}
	return es, nil
}

func constant(v bsoncore.Value) expr {
	return func(bsoncore.Document) (bsoncore.Value, error) { return v, nil }
}

func compileFieldPath(s string) (expr, error) {
	if strings.HasPrefix(s, "$$") {
		name, rest, _ := strings.Cut(s[2:], ".")
		switch name {
		case "ROOT", "CURRENT":
			path := []string{}
			if rest != "" {
				path = splitPath(rest)
			}
			return func(root bsoncore.Document) (bsoncore.Value, error) {
				return fieldPathValue(docValue(root), path), nil
			}, nil
		case "REMOVE":
			return constant(bsoncore.Value{}), nil
		}
		return nil, unsupported("the variable $$%s", name)
	}
	if s == "$" {
		return nil, errorf(16872, "'$' by itself is not a valid FieldPath")
	}
	path := splitPath(s[1:])
	return func(root bsoncore.Document) (bsoncore.Value, error) {
		return fieldPathValue(docValue(root), path), nil
	}, nil
}

// fieldPathValue evaluates "$a.b": through an array of documents it
// yields the array of each element's value.
func fieldPathValue(v bsoncore.Value, path []string) bsoncore.Value {
	if len(path) == 0 {
		return v
	}
	switch v.Type {
	case bsoncore.TypeEmbeddedDocument:
		child, err := v.Document().LookupErr(path[0])
		if err != nil {
			return bsoncore.Value{}
		}
		return fieldPathValue(child, path[1:])
	case bsoncore.TypeArray:
		var out []bsoncore.Value
		for _, e := range arrayValues(v) {
			if e.Type == bsoncore.TypeEmbeddedDocument || e.Type == bsoncore.TypeArray {
				out = append(out, fieldPathValue(e, path))
			}
		}
		return arrayValue(out)
	}
	return bsoncore.Value{}
}

func compileObjectExpr(d bsoncore.Document) (expr, error) {
	type part struct {
		key string
		e   expr
	}
	var parts []part
	for _, f := range docFields(d) {
		if strings.Contains(f.key, ".") {
			return nil, errorf(16412, "FieldPath field names may not contain '.'")
		}
		e, err := compileExpr(f.val)
		if err != nil {
			return nil, err
		}
		parts = append(parts, part{f.key, e})
	}
	return func(root bsoncore.Document) (bsoncore.Value, error) {
		fields := make([]field, len(parts))
		for i, p := range parts {
			v, err := p.e(root)
			if err != nil {
				return v, err
			}
			fields[i] = field{p.key, v}
		}
		return docValue(buildDoc(fields)), nil
	}, nil
}

func evalAll(es []expr, root bsoncore.Document) ([]bsoncore.Value, error) {
	out := make([]bsoncore.Value, len(es))
	for i, e := range es {
		v, err := e(root)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// operatorImpl evaluates an operator on its evaluated arguments.
type operatorImpl struct {
	minArgs, maxArgs int // -1: any
	eval             func(args []bsoncore.Value) (bsoncore.Value, error)
}

var exprOperators map[string]operatorImpl

func init() {
	cmpOp := func(ok func(int) bool) operatorImpl {
		return operatorImpl{2, 2, func(a []bsoncore.Value) (bsoncore.Value, error) {
			return boolValue(ok(compareValues(orNull(a[0]), orNull(a[1])))), nil
		}}
	}
	exprOperators = map[string]operatorImpl{
		"$eq":  cmpOp(func(c int) bool { return c == 0 }),
		"$ne":  cmpOp(func(c int) bool { return c != 0 }),
		"$gt":  cmpOp(func(c int) bool { return c > 0 }),
		"$gte": cmpOp(func(c int) bool { return c >= 0 }),
		"$lt":  cmpOp(func(c int) bool { return c < 0 }),
		"$lte": cmpOp(func(c int) bool { return c <= 0 }),
		"$cmp": {2, 2, func(a []bsoncore.Value) (bsoncore.Value, error) {
			return int32Value(int32(compareValues(orNull(a[0]), orNull(a[1])))), nil
		}},
		"$in": {2, 2, func(a []bsoncore.Value) (bsoncore.Value, error) {
			if a[1].Type != bsoncore.TypeArray {
				return bsoncore.Value{}, errorf(40081, "$in requires an array as a second argument, found: %s", typeName(a[1].Type))
			}
			for _, e := range arrayValues(a[1]) {
				if valuesEqual(orNull(a[0]), e) {
					return boolValue(true), nil
				}
			}
			return boolValue(false), nil
		}},
		"$and": {0, -1, func(a []bsoncore.Value) (bsoncore.Value, error) {
			for _, v := range a {
				if !truthy(v) {
					return boolValue(false), nil
				}
			}
			return boolValue(true), nil
		}},
		"$or": {0, -1, func(a []bsoncore.Value) (bsoncore.Value, error) {
			for _, v := range a {
				if truthy(v) {
					return boolValue(true), nil
				}
			}
			return boolValue(false), nil
		}},
		"$not": {1, 1, func(a []bsoncore.Value) (bsoncore.Value, error) { return boolValue(!truthy(a[0])), nil }},
		"$ifNull": {2, -1, func(a []bsoncore.Value) (bsoncore.Value, error) {
			for _, v := range a[:len(a)-1] {
				if v.Type != 0 && v.Type != bsoncore.TypeNull && v.Type != bsoncore.TypeUndefined {
					return v, nil
				}
			}
			return a[len(a)-1], nil
		}},
		"$add":      {0, -1, func(a []bsoncore.Value) (bsoncore.Value, error) { return arith("$add", a) }},
		"$multiply": {0, -1, func(a []bsoncore.Value) (bsoncore.Value, error) { return arith("$multiply", a) }},
		"$subtract": {2, 2, func(a []bsoncore.Value) (bsoncore.Value, error) { return arith("$subtract", a) }},
		"$divide":   {2, 2, func(a []bsoncore.Value) (bsoncore.Value, error) { return arith("$divide", a) }},
		"$concat": {0, -1, func(a []bsoncore.Value) (bsoncore.Value, error) {
			var sb strings.Builder
			for _, v := range a {
				switch v.Type {
				case 0, bsoncore.TypeNull, bsoncore.TypeUndefined:
					return nullValue, nil
				case bsoncore.TypeString:
					sb.WriteString(v.StringValue())
				default:
					return bsoncore.Value{}, errorf(16702, "$concat only supports strings, not %s", typeName(v.Type))
				}
			}
			return stringValue(sb.String()), nil
		}},
		"$size": {1, 1, func(a []bsoncore.Value) (bsoncore.Value, error) {
			if a[0].Type != bsoncore.TypeArray {
				return bsoncore.Value{}, errorf(17124, "The argument to $size must be an array. Type of argument: %s", typeName(a[0].Type))
			}
			return int32Value(int32(len(arrayValues(a[0])))), nil
		}},
		"$type": {1, 1, func(a []bsoncore.Value) (bsoncore.Value, error) { return stringValue(typeName(a[0].Type)), nil }},
	}
}

func orNull(v bsoncore.Value) bsoncore.Value {
	if v.Type == 0 {
		return nullValue
	}
	return v
}

func compileOperatorExpr(d bsoncore.Document) (expr, error) {
	fields := docFields(d)
	if len(fields) != 1 {
		return nil, errorf(15983, "an expression specification must contain exactly one field, the name of the expression. Found %d fields", len(fields))
	}
	op, arg := fields[0].key, fields[0].val
	switch op {
	case "$literal":
		return constant(arg), nil
	case "$cond":
		return compileCond(arg)
	}
	impl, ok := exprOperators[op]
	if !ok {
		return nil, errorf(codeInvalidPipelineOperator, "Unrecognized expression '%s' (mongotest implements only some expressions)", op)
	}
	argVals := []bsoncore.Value{arg}
	if arg.Type == bsoncore.TypeArray {
		argVals = arrayValues(arg)
	}
	if len(argVals) < impl.minArgs || (impl.maxArgs >= 0 && len(argVals) > impl.maxArgs) {
		return nil, errorf(16020, "Expression %s takes %d to %d arguments. %d were passed in.", op, impl.minArgs, impl.maxArgs, len(argVals))
	}
	args, err := compileExprs(argVals)
	if err != nil {
		return nil, err
	}
	return func(root bsoncore.Document) (bsoncore.Value, error) {
		vals, err := evalAll(args, root)
		if err != nil {
			return bsoncore.Value{}, err
		}
		return impl.eval(vals)
	}, nil
}

// compileCond accepts {$cond: [if, then, else]} and {$cond: {if, then, else}}.
func compileCond(arg bsoncore.Value) (expr, error) {
	var parts []bsoncore.Value
	switch arg.Type {
	case bsoncore.TypeArray:
		parts = arrayValues(arg)
	case bsoncore.TypeEmbeddedDocument:
		d := arg.Document()
		for _, k := range []string{"if", "then", "else"} {
			v, err := d.LookupErr(k)
			if err != nil {
				return nil, errorf(17080, "Missing '%s' parameter to $cond", k)
			}
			parts = append(parts, v)
		}
		if n := len(docFields(d)); n != 3 {
			return nil, errorf(17083, "Unrecognized parameter to $cond")
		}
	}
	if len(parts) != 3 {
		return nil, errorf(16020, "Expression $cond takes exactly 3 arguments. %d were passed in.", len(parts))
	}
	es, err := compileExprs(parts)
	if err != nil {
		return nil, err
	}
	return func(root bsoncore.Document) (bsoncore.Value, error) {
		c, err := es[0](root)
		if err != nil {
			return c, err
		}
		if truthy(c) {
			return es[1](root)
		}
		return es[2](root)
	}, nil
}

// arith implements $add, $subtract, $multiply and $divide: null or missing
// operands give null; int32 results widen to int64 and then double on
// overflow, as the server does; dates combine with milliseconds.
func arith(op string, a []bsoncore.Value) (bsoncore.Value, error) {
	kind := bsoncore.TypeInt32
	var date bool
	for _, v := range a {
		switch v.Type {
		case 0, bsoncore.TypeNull, bsoncore.TypeUndefined:
			return nullValue, nil
		case bsoncore.TypeInt32:
		case bsoncore.TypeInt64:
			if kind == bsoncore.TypeInt32 {
				kind = bsoncore.TypeInt64
			}
		case bsoncore.TypeDouble:
			kind = bsoncore.TypeDouble
		case bsoncore.TypeDateTime:
			if op == "$multiply" || op == "$divide" {
				return bsoncore.Value{}, errorf(16555, "%s only supports numeric types, not date", op)
			}
			date = true
		case bsoncore.TypeDecimal128:
			return bsoncore.Value{}, unsupported("decimal arithmetic in %s", op)
		default:
			return bsoncore.Value{}, errorf(16554, "%s only supports numeric or date types, not %s", op, typeName(v.Type))
		}
	}
	num := func(v bsoncore.Value) float64 {
		if v.Type == bsoncore.TypeDateTime {
			return float64(v.DateTime())
		}
		return v.AsFloat64()
	}
	integer := func(v bsoncore.Value) int64 {
		if v.Type == bsoncore.TypeDateTime {
			return v.DateTime()
		}
		return v.AsInt64()
	}
	switch op {
	case "$divide":
		if num(a[1]) == 0 {
			return bsoncore.Value{}, errorf(2, "can't $divide by zero")
		}
		return doubleValue(num(a[0]) / num(a[1])), nil
	case "$subtract":
		if a[0].Type == bsoncore.TypeDateTime && a[1].Type == bsoncore.TypeDateTime {
			return int64Value(a[0].DateTime() - a[1].DateTime()), nil
		}
		if a[1].Type == bsoncore.TypeDateTime {
			return bsoncore.Value{}, errorf(16556, "cant $subtract a date from a %s", typeName(a[0].Type))
		}
		a = []bsoncore.Value{a[0], negate(a[1])}
	}
	floatResult := func() bsoncore.Value {
		total := 0.0
		if op == "$multiply" {
			total = 1
		}
		for _, v := range a {
			if op == "$multiply" {
				total *= num(v)
			} else {
				total += num(v)
			}
		}
		if date {
			return dateValue(int64(total))
		}
		return doubleValue(total)
	}
	if date || kind == bsoncore.TypeDouble {
		return floatResult(), nil
	}
	var total int64
	if op == "$multiply" {
		total = 1
	}
	for _, v := range a {
		var overflow bool
		if op == "$multiply" {
			total, overflow = mulInt64(total, integer(v))
		} else {
			total, overflow = addInt64(total, integer(v))
		}
		if overflow {
			return floatResult(), nil
		}
	}
	if kind == bsoncore.TypeInt32 && total >= math.MinInt32 && total <= math.MaxInt32 {
		return int32Value(int32(total)), nil
	}
	return int64Value(total), nil
}

func negate(v bsoncore.Value) bsoncore.Value {
	switch v.Type {
	case bsoncore.TypeInt32:
		return int64Value(-int64(v.Int32()))
	case bsoncore.TypeInt64:
		return int64Value(-v.Int64())
	}
	return doubleValue(-v.Double())
}

func addInt64(a, b int64) (int64, bool) {
	s := a + b
	return s, (a > 0 && b > 0 && s < 0) || (a < 0 && b < 0 && s >= 0)
}

func mulInt64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, false
	}
	p := a * b
	return p, p/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64)
}
