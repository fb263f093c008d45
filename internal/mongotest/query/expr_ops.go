package query

import (
	"math"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// The expression operators implemented here, each as its page on
// https://www.mongodb.com/docs/manual/reference/operator/aggregation/
// describes it: comparison, boolean, arithmetic on numbers and dates
// ($add $subtract $multiply $divide $mod), $ifNull, $cond, $switch, arrays
// ($concatArrays $slice $size $arrayElemAt $in $isArray $filter $map),
// documents ($getField $setField $unsetField $mergeObjects), $concat, $type,
// $literal and $let: what applications' pipeline-style updates and views
// commonly use. Decimal128 arithmetic is refused (115): float arithmetic
// would give a wrong answer.

// operatorImpl evaluates an operator on its evaluated arguments.
type operatorImpl struct {
	minArgs, maxArgs int // -1: any
	eval             func(args []Value) (Value, error)
}

var exprOperators map[string]operatorImpl

// specialOperators compile their arguments themselves: literal values,
// named arguments, variables, branches evaluated lazily.
var specialOperators map[string]func(arg Value, scope compileScope) (expr, error)

func init() {
	cmpOp := func(ok func(int) bool) operatorImpl {
		return operatorImpl{2, 2, func(a []Value) (Value, error) { return BoolValue(ok(Compare(a[0], a[1]))), nil }}
	}
	arithOp := func(op string, lo, hi int) operatorImpl {
		return operatorImpl{lo, hi, func(a []Value) (Value, error) { return arith(op, a) }}
	}
	exprOperators = map[string]operatorImpl{
		"$eq":  cmpOp(func(c int) bool { return c == 0 }),
		"$ne":  cmpOp(func(c int) bool { return c != 0 }),
		"$gt":  cmpOp(func(c int) bool { return c > 0 }),
		"$gte": cmpOp(func(c int) bool { return c >= 0 }),
		"$lt":  cmpOp(func(c int) bool { return c < 0 }),
		"$lte": cmpOp(func(c int) bool { return c <= 0 }),
		"$cmp": {2, 2, func(a []Value) (Value, error) { return Int32Value(int32(Compare(a[0], a[1]))), nil }},
		"$and": {0, -1, func(a []Value) (Value, error) {
			for _, v := range a {
				if !Truthy(v) {
					return BoolValue(false), nil
				}
			}
			return BoolValue(true), nil
		}},
		"$or": {0, -1, func(a []Value) (Value, error) {
			for _, v := range a {
				if Truthy(v) {
					return BoolValue(true), nil
				}
			}
			return BoolValue(false), nil
		}},
		"$not": {1, 1, func(a []Value) (Value, error) { return BoolValue(!Truthy(a[0])), nil }},
		"$ifNull": {2, -1, func(a []Value) (Value, error) {
			for _, v := range a[:len(a)-1] {
				if !nullish(v) {
					return v, nil
				}
			}
			return a[len(a)-1], nil
		}},
		"$add":      arithOp("$add", 0, -1),
		"$multiply": arithOp("$multiply", 0, -1),
		"$subtract": arithOp("$subtract", 2, 2),
		"$divide":   arithOp("$divide", 2, 2),
		"$mod":      arithOp("$mod", 2, 2),
		"$concat": {0, -1, func(a []Value) (Value, error) {
			var sb strings.Builder
			for _, v := range a {
				switch {
				case nullish(v):
					return NullValue, nil
				case v.Type == bsoncore.TypeString:
					sb.WriteString(v.StringValue())
				default:
					return Value{}, errorf(16702, "$concat only supports strings, not %s", TypeName(v.Type))
				}
			}
			return StringValue(sb.String()), nil
		}},
		"$concatArrays": {0, -1, func(a []Value) (Value, error) {
			var out []Value
			for _, v := range a {
				switch {
				case nullish(v):
					return NullValue, nil
				case v.Type != bsoncore.TypeArray:
					return Value{}, errorf(28664, "$concatArrays only supports arrays, not %s", TypeName(v.Type))
				}
				out = append(out, ArrayValues(v)...)
			}
			return ArrayValue(out), nil
		}},
		"$size": {1, 1, func(a []Value) (Value, error) {
			if a[0].Type != bsoncore.TypeArray {
				return Value{}, errorf(17124, "The argument to $size must be an array. Type of argument: %s", TypeName(a[0].Type))
			}
			return Int32Value(int32(len(ArrayValues(a[0])))), nil
		}},
		"$isArray": {1, 1, func(a []Value) (Value, error) { return BoolValue(a[0].Type == bsoncore.TypeArray), nil }},
		"$in": {2, 2, func(a []Value) (Value, error) {
			if a[1].Type != bsoncore.TypeArray {
				return Value{}, errorf(40081, "$in requires an array as a second argument, found: %s", TypeName(a[1].Type))
			}
			for _, e := range ArrayValues(a[1]) {
				if Equal(a[0], e) {
					return BoolValue(true), nil
				}
			}
			return BoolValue(false), nil
		}},
		"$arrayElemAt": {2, 2, arrayElemAt},
		"$slice":       {2, 3, slice},
		"$mergeObjects": {1, -1, func(a []Value) (Value, error) {
			var out []Field
			for _, v := range a {
				if nullish(v) {
					continue
				}
				d, ok := v.DocumentOK()
				if !ok {
					return Value{}, errorf(40400, "$mergeObjects requires object inputs, but input %s is of type %s", v, TypeName(v.Type))
				}
				for _, f := range Fields(d) {
					out = setField(out, f.Key, f.Val)
				}
			}
			return DocValue(BuildDoc(out)), nil
		}},
		"$type": {1, 1, func(a []Value) (Value, error) { return StringValue(TypeName(a[0].Type)), nil }},
	}
	specialOperators = map[string]func(Value, compileScope) (expr, error){
		"$literal":    func(arg Value, _ compileScope) (expr, error) { return constant(arg), nil },
		"$cond":       compileCond,
		"$switch":     compileSwitch,
		"$let":        compileLet,
		"$map":        compileMap,
		"$filter":     compileFilterExpr,
		"$getField":   compileGetField,
		"$setField":   func(arg Value, scope compileScope) (expr, error) { return compileSetField("$setField", arg, scope) },
		"$unsetField": func(arg Value, scope compileScope) (expr, error) { return compileSetField("$unsetField", arg, scope) },
	}
}

// evalInput evaluates an operator's input: null (and null true) when it is
// nullish, wrong's error when it is not of type want.
func evalInput(cx *evalCtx, input expr, want bsoncore.Type, wrong func(Value) error) (v Value, null bool, err error) {
	v, err = input(cx)
	switch {
	case err != nil:
		return Value{}, false, err
	case nullish(v):
		return NullValue, true, nil
	case v.Type != want:
		return Value{}, false, wrong(v)
	}
	return v, false, nil
}

// nullish is null, undefined or missing: what $ifNull replaces and what
// makes most operators return null.
func nullish(v Value) bool {
	return v.Type == 0 || v.Type == bsoncore.TypeNull || v.Type == bsoncore.TypeUndefined
}

// setField sets key in fields, in place if it is there, else at the end;
// a missing value removes it.
func setField(fields []Field, key string, v Value) []Field {
	for i, f := range fields {
		if f.Key == key {
			if v.Type == 0 {
				return append(fields[:i:i], fields[i+1:]...)
			}
			fields[i].Val = v
			return fields
		}
	}
	if v.Type == 0 {
		return fields
	}
	return append(fields, Field{key, v})
}

func arrayElemAt(a []Value) (Value, error) {
	if nullish(a[0]) || nullish(a[1]) {
		return NullValue, nil
	}
	if a[0].Type != bsoncore.TypeArray {
		return Value{}, errorf(28689, "$arrayElemAt's first argument must be an array, but is %s", TypeName(a[0].Type))
	}
	i, ok := wholeNumber(a[1])
	if !ok {
		return Value{}, errorf(28691, "$arrayElemAt's second argument must be a numeric value, but is %s", TypeName(a[1].Type))
	}
	elems := ArrayValues(a[0])
	if i < 0 {
		i += int64(len(elems))
	}
	if i < 0 || i >= int64(len(elems)) {
		return Value{}, nil
	}
	return elems[i], nil
}

// slice is $slice: [array, n] (the first n, or the last -n) or
// [array, position, n] (n from position, counted from the end when
// negative).
func slice(a []Value) (Value, error) {
	for _, v := range a {
		if nullish(v) {
			return NullValue, nil
		}
	}
	if a[0].Type != bsoncore.TypeArray {
		return Value{}, errorf(28724, "First argument to $slice must be an array, but is of type: %s", TypeName(a[0].Type))
	}
	elems := ArrayValues(a[0])
	size := int64(len(elems))
	n, ok := wholeNumber(a[len(a)-1])
	if !ok {
		return Value{}, errorf(28725, "Second argument to $slice must be a numeric value, but is of type: %s", TypeName(a[len(a)-1].Type))
	}
	var from, to int64
	if len(a) == 2 {
		if n >= 0 {
			from, to = 0, min(n, size)
		} else {
			from, to = max(size+n, 0), size
		}
	} else {
		pos, ok := wholeNumber(a[1])
		if !ok {
			return Value{}, errorf(28725, "Second argument to $slice must be a numeric value, but is of type: %s", TypeName(a[1].Type))
		}
		if n <= 0 {
			return Value{}, errorf(28729, "Third argument to $slice must be positive: %d", n)
		}
		if pos < 0 {
			pos = max(size+pos, 0)
		}
		from = min(pos, size)
		to = min(from+n, size)
	}
	return ArrayValue(elems[from:to]), nil
}

// wholeNumber reads a number with an integral value, as mongod's array
// operators require their positions.
func wholeNumber(v Value) (int64, bool) {
	switch v.Type {
	case bsoncore.TypeInt32, bsoncore.TypeInt64:
		return v.AsInt64(), true
	case bsoncore.TypeDouble:
		f := v.Double()
		if f == math.Trunc(f) && math.Abs(f) < 1<<62 {
			return int64(f), true
		}
	}
	return 0, false
}

// compileCond accepts {$cond: [if, then, else]} and {$cond: {if, then, else}}.
func compileCond(arg Value, scope compileScope) (expr, error) {
	var parts []Value
	switch arg.Type {
	case bsoncore.TypeArray:
		parts = ArrayValues(arg)
	case bsoncore.TypeEmbeddedDocument:
		named, err := namedArgs("$cond", arg, []string{"if", "then", "else"}, nil)
		if err != nil {
			return nil, err
		}
		parts = []Value{named["if"], named["then"], named["else"]}
	}
	if len(parts) != 3 {
		return nil, errorf(16020, "Expression $cond takes exactly 3 arguments. %d were passed in.", len(parts))
	}
	es, err := compileAll(parts, scope)
	if err != nil {
		return nil, err
	}
	return func(cx *evalCtx) (Value, error) {
		c, err := es[0](cx)
		if err != nil {
			return Value{}, err
		}
		if Truthy(c) {
			return es[1](cx)
		}
		return es[2](cx)
	}, nil
}

func compileSwitch(arg Value, scope compileScope) (expr, error) {
	named, err := namedArgs("$switch", arg, []string{"branches"}, []string{"default"})
	if err != nil {
		return nil, err
	}
	if named["branches"].Type != bsoncore.TypeArray {
		return nil, errorf(40061, "$switch expected an array for 'branches', found: %s", TypeName(named["branches"].Type))
	}
	type branch struct{ cond, then expr }
	var branches []branch
	for _, b := range ArrayValues(named["branches"]) {
		bn, err := namedArgs("$switch branch", b, []string{"case", "then"}, nil)
		if err != nil {
			return nil, err
		}
		es, err := compileAll([]Value{bn["case"], bn["then"]}, scope)
		if err != nil {
			return nil, err
		}
		branches = append(branches, branch{es[0], es[1]})
	}
	var def expr
	if v, ok := named["default"]; ok {
		if def, err = compileIn(v, scope); err != nil {
			return nil, err
		}
	}
	return func(cx *evalCtx) (Value, error) {
		for _, b := range branches {
			c, err := b.cond(cx)
			if err != nil {
				return Value{}, err
			}
			if Truthy(c) {
				return b.then(cx)
			}
		}
		if def == nil {
			return Value{}, errorf(40066, "$switch could not find a matching branch for an input, and no default was specified.")
		}
		return def(cx)
	}, nil
}

// validVarName is mongod's rule for a user variable: a lower-case letter or
// a non-ASCII character first, then letters, digits, _ and non-ASCII.
func validVarName(name string) bool {
	if name == "" || !(name[0] >= 'a' && name[0] <= 'z' || name[0] >= 0x80) {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r >= 0x80) {
			return false
		}
	}
	return true
}

func compileLet(arg Value, scope compileScope) (expr, error) {
	named, err := namedArgs("$let", arg, []string{"vars", "in"}, nil)
	if err != nil {
		return nil, err
	}
	vars, ok := named["vars"].DocumentOK()
	if !ok {
		return nil, errorf(CodeFailedToParse, "invalid parameter: expected an object (vars)")
	}
	type binding struct {
		name string
		e    expr
	}
	var bindings []binding
	var names []string
	for _, f := range Fields(vars) {
		if !validVarName(f.Key) {
			return nil, errorf(16867, "'%s' starts with an invalid character for a user variable name", f.Key)
		}
		e, err := compileIn(f.Val, scope)
		if err != nil {
			return nil, err
		}
		bindings = append(bindings, binding{f.Key, e})
		names = append(names, f.Key)
	}
	in, err := compileIn(named["in"], scope.with(names...))
	if err != nil {
		return nil, err
	}
	return func(cx *evalCtx) (Value, error) {
		inner := cx
		for _, b := range bindings {
			v, err := b.e(cx)
			if err != nil {
				return Value{}, err
			}
			inner = inner.with(b.name, v)
		}
		return in(inner)
	}, nil
}

// arrayLoop compiles what $map and $filter share: the input array, and
// the variable (as, "this" by default) the body sees each element in.
func arrayLoop(op string, arg Value, scope compileScope, body string, optional ...string) (input, fn expr, as string, named map[string]Value, err error) {
	named, err = namedArgs(op, arg, []string{"input", body}, append([]string{"as"}, optional...))
	if err != nil {
		return nil, nil, "", nil, err
	}
	as = "this"
	if v, ok := named["as"]; ok {
		as, _ = v.StringValueOK()
		if !validVarName(as) {
			return nil, nil, "", nil, errorf(16867, "'%s' starts with an invalid character for a user variable name", as)
		}
	}
	if input, err = compileIn(named["input"], scope); err != nil {
		return nil, nil, "", nil, err
	}
	fn, err = compileIn(named[body], scope.with(as))
	return input, fn, as, named, err
}

func compileMap(arg Value, scope compileScope) (expr, error) {
	input, in, as, _, err := arrayLoop("$map", arg, scope, "in")
	if err != nil {
		return nil, err
	}
	return func(cx *evalCtx) (Value, error) {
		arr, null, err := evalInput(cx, input, bsoncore.TypeArray, func(v Value) error {
			return errorf(16883, "input to $map must be an array not %s", TypeName(v.Type))
		})
		if null || err != nil {
			return arr, err
		}
		elems := ArrayValues(arr)
		out := make([]Value, len(elems))
		for i, e := range elems {
			v, err := in(cx.with(as, e))
			if err != nil {
				return Value{}, err
			}
			if v.Type == 0 {
				v = NullValue
			}
			out[i] = v
		}
		return ArrayValue(out), nil
	}, nil
}

func compileFilterExpr(arg Value, scope compileScope) (expr, error) {
	input, cond, as, named, err := arrayLoop("$filter", arg, scope, "cond", "limit")
	if err != nil {
		return nil, err
	}
	var limit expr
	if v, ok := named["limit"]; ok {
		if limit, err = compileIn(v, scope); err != nil {
			return nil, err
		}
	}
	return func(cx *evalCtx) (Value, error) {
		arr, null, err := evalInput(cx, input, bsoncore.TypeArray, func(v Value) error {
			return errorf(28651, "input to $filter must be an array not %s", TypeName(v.Type))
		})
		if null || err != nil {
			return arr, err
		}
		n := int64(-1)
		if limit != nil {
			lv, err := limit(cx)
			if err != nil {
				return Value{}, err
			}
			if !nullish(lv) {
				var ok bool
				if n, ok = wholeNumber(lv); !ok || n < 1 {
					return Value{}, errorf(327392, "$filter: limit must be a positive whole number: %s", lv)
				}
			}
		}
		var out []Value
		for _, e := range ArrayValues(arr) {
			if n >= 0 && int64(len(out)) >= n {
				break
			}
			keep, err := cond(cx.with(as, e))
			if err != nil {
				return Value{}, err
			}
			if Truthy(keep) {
				out = append(out, e)
			}
		}
		return ArrayValue(out), nil
	}, nil
}

// fieldArg reads the field of $getField, $setField and $unsetField: a
// string, or an expression that is a constant string (a $literal), as
// mongod requires.
func fieldArg(op string, v Value) (string, error) {
	if s, ok := v.StringValueOK(); ok && !strings.HasPrefix(s, "$") {
		return s, nil
	}
	if d, ok := v.DocumentOK(); ok && len(Fields(d)) == 1 && Fields(d)[0].Key == "$literal" {
		if s, ok := Fields(d)[0].Val.StringValueOK(); ok {
			return s, nil
		}
	}
	if s, ok := v.StringValueOK(); ok {
		return "", errorf(4161108, "%s: a field name that starts with '$' must be given with $literal: %s", op, s)
	}
	return "", errorf(4161106, "%s requires 'field' to evaluate to type String, but got %s", op, TypeName(v.Type))
}

// compileGetField is $getField: {field, input} ($$CURRENT by default), or
// the field name alone.
func compileGetField(arg Value, scope compileScope) (expr, error) {
	fieldSpec, inputSpec := arg, Value{}
	if d, ok := arg.DocumentOK(); ok && !isOperatorDoc(d) {
		named, err := namedArgs("$getField", arg, []string{"field"}, []string{"input"})
		if err != nil {
			return nil, err
		}
		fieldSpec, inputSpec = named["field"], named["input"]
	}
	field, err := fieldArg("$getField", fieldSpec)
	if err != nil {
		return nil, err
	}
	input := func(cx *evalCtx) (Value, error) { return cx.root, nil }
	if inputSpec.Type != 0 {
		if input, err = compileIn(inputSpec, scope); err != nil {
			return nil, err
		}
	}
	return func(cx *evalCtx) (Value, error) {
		in, null, err := evalInput(cx, input, bsoncore.TypeEmbeddedDocument, func(v Value) error {
			return errorf(3041705, "$getField requires 'input' to evaluate to type Object, but got %s", TypeName(v.Type))
		})
		if null || err != nil {
			return in, err
		}
		v, err := in.Document().LookupErr(field)
		if err != nil {
			return Value{}, nil
		}
		return v, nil
	}, nil
}

// compileSetField is $setField {field, input, value} (value $$REMOVE
// removes the field) and $unsetField {field, input}: a new field goes last,
// an existing one keeps its place.
func compileSetField(op string, arg Value, scope compileScope) (expr, error) {
	required := []string{"field", "input", "value"}
	if op == "$unsetField" {
		required = required[:2]
	}
	named, err := namedArgs(op, arg, required, nil)
	if err != nil {
		return nil, err
	}
	field, err := fieldArg(op, named["field"])
	if err != nil {
		return nil, err
	}
	input, err := compileIn(named["input"], scope)
	if err != nil {
		return nil, err
	}
	value := constant(Value{})
	if op == "$setField" {
		if value, err = compileIn(named["value"], scope); err != nil {
			return nil, err
		}
	}
	return func(cx *evalCtx) (Value, error) {
		in, null, err := evalInput(cx, input, bsoncore.TypeEmbeddedDocument, func(v Value) error {
			return errorf(4161105, "%s requires 'input' to evaluate to type Object, but got %s", op, TypeName(v.Type))
		})
		if null || err != nil {
			return in, err
		}
		v, err := value(cx)
		if err != nil {
			return Value{}, err
		}
		return DocValue(BuildDoc(setField(Fields(in.Document()), field, v))), nil
	}, nil
}

// arith implements $add, $subtract, $multiply, $divide and $mod: null or
// missing operands give null; int32 results widen to int64 and then to
// double on overflow, as the server does; dates take or give milliseconds.
func arith(op string, a []Value) (Value, error) {
	kind := bsoncore.TypeInt32
	dates := 0
	for _, v := range a {
		switch v.Type {
		case 0, bsoncore.TypeNull, bsoncore.TypeUndefined:
			return NullValue, nil
		case bsoncore.TypeInt32:
		case bsoncore.TypeInt64:
			if kind == bsoncore.TypeInt32 {
				kind = bsoncore.TypeInt64
			}
		case bsoncore.TypeDouble:
			kind = bsoncore.TypeDouble
		case bsoncore.TypeDateTime:
			if op != "$add" && op != "$subtract" {
				return Value{}, errorf(16555, "%s only supports numeric types, not date", op)
			}
			dates++
		case bsoncore.TypeDecimal128:
			return Value{}, Unsupported("Decimal128 arithmetic in %s", op)
		default:
			return Value{}, errorf(16554, "%s only supports numeric or date types, not %s", op, TypeName(v.Type))
		}
	}
	num := func(v Value) float64 {
		if v.Type == bsoncore.TypeDateTime {
			return float64(v.DateTime())
		}
		return v.AsFloat64()
	}
	integer := func(v Value) int64 {
		if v.Type == bsoncore.TypeDateTime {
			return v.DateTime()
		}
		return v.AsInt64()
	}
	switch op {
	case "$add":
		if dates > 1 {
			return Value{}, errorf(16612, "only one date allowed in an $add expression")
		}
	case "$divide":
		if num(a[1]) == 0 {
			return Value{}, errorf(2, "can't $divide by zero")
		}
		return DoubleValue(num(a[0]) / num(a[1])), nil
	case "$mod":
		if num(a[1]) == 0 {
			return Value{}, errorf(16610, "can't $mod by zero")
		}
		if kind == bsoncore.TypeDouble {
			return DoubleValue(math.Mod(num(a[0]), num(a[1]))), nil
		}
		return narrow(kind, integer(a[0])%integer(a[1])), nil
	case "$subtract":
		switch {
		case a[0].Type == bsoncore.TypeDateTime && a[1].Type == bsoncore.TypeDateTime:
			return Int64Value(a[0].DateTime() - a[1].DateTime()), nil
		case a[1].Type == bsoncore.TypeDateTime:
			return Value{}, errorf(16556, "can't $subtract a date from a %s", TypeName(a[0].Type))
		}
		a = []Value{a[0], negate(a[1])}
	}
	total := func() float64 {
		t := 0.0
		if op == "$multiply" {
			t = 1
		}
		for _, v := range a {
			if op == "$multiply" {
				t *= num(v)
			} else {
				t += num(v)
			}
		}
		return t
	}
	if dates > 0 {
		return DateValue(int64(math.Round(total()))), nil
	}
	if kind == bsoncore.TypeDouble {
		return DoubleValue(total()), nil
	}
	var sum int64
	if op == "$multiply" {
		sum = 1
	}
	for _, v := range a {
		var overflow bool
		if op == "$multiply" {
			sum, overflow = mulInt64(sum, integer(v))
		} else {
			sum, overflow = addInt64(sum, integer(v))
		}
		if overflow {
			return DoubleValue(total()), nil
		}
	}
	return narrow(kind, sum), nil
}

// narrow gives an integer result the operands' type, int32 widening to
// int64 when it does not fit.
func narrow(kind bsoncore.Type, n int64) Value {
	if kind == bsoncore.TypeInt32 && n >= math.MinInt32 && n <= math.MaxInt32 {
		return Int32Value(int32(n))
	}
	return Int64Value(n)
}

func negate(v Value) Value {
	switch v.Type {
	case bsoncore.TypeInt32:
		return narrow(bsoncore.TypeInt32, -int64(v.Int32()))
	case bsoncore.TypeInt64:
		if v.Int64() == math.MinInt64 {
			return DoubleValue(-float64(v.Int64()))
		}
		return Int64Value(-v.Int64())
	}
	return DoubleValue(-v.Double())
}

func mulInt64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, false
	}
	p := a * b
	return p, p/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64)
}
