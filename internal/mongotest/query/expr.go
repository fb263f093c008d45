package query

import (
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// expr is a compiled aggregation expression
// (https://www.mongodb.com/docs/manual/reference/operator/aggregation/):
// field paths, the variables $$ROOT, $$CURRENT, $$REMOVE and $$NOW and
// those $let, $map and $filter bind, literals, documents and arrays of
// those, and the operators of exprOperators. A result of Type 0 means
// "missing". Real operators outside that set are refused with 115, unknown
// ones with 168, as mongod does.
type expr func(cx *evalCtx) (Value, error)

// evalCtx is what an expression is evaluated against.
type evalCtx struct {
	root Value // $$ROOT and $$CURRENT
	now  time.Time
	vars map[string]Value // bound by $let, $map and $filter
}

// newEvalCtx evaluates against doc; now is $$NOW, shared by every document
// of one statement as on mongod.
func newEvalCtx(doc bsoncore.Document, now time.Time) *evalCtx {
	return &evalCtx{root: DocValue(doc), now: now}
}

// with returns a context with name bound to v.
func (cx *evalCtx) with(name string, v Value) *evalCtx {
	vars := make(map[string]Value, len(cx.vars)+1)
	for k, x := range cx.vars {
		vars[k] = x
	}
	vars[name] = v
	return &evalCtx{root: cx.root, now: cx.now, vars: vars}
}

// compileScope tracks the user variables bound where an expression is
// compiled, so that a reference to an undefined one fails at compile time
// (17276), as on mongod.
type compileScope map[string]bool

func (s compileScope) with(names ...string) compileScope {
	out := make(compileScope, len(s)+len(names))
	for k := range s {
		out[k] = true
	}
	for _, n := range names {
		out[n] = true
	}
	return out
}

func compileExpr(v Value) (expr, error) { return compileIn(v, nil) }

func compileIn(v Value, scope compileScope) (expr, error) {
	switch v.Type {
	case bsoncore.TypeString:
		if s := v.StringValue(); strings.HasPrefix(s, "$") {
			return compileFieldPath(s, scope)
		}
	case bsoncore.TypeEmbeddedDocument:
		d := v.Document()
		if isOperatorDoc(d) {
			return compileOperatorExpr(d, scope)
		}
		return compileObjectExpr(d, scope)
	case bsoncore.TypeArray:
		parts, err := compileAll(ArrayValues(v), scope)
		if err != nil {
			return nil, err
		}
		return func(cx *evalCtx) (Value, error) {
			vals, err := evalAll(parts, cx)
			if err != nil {
				return Value{}, err
			}
			// A missing element of an array literal is null, as mongod builds it.
			for i, x := range vals {
				if x.Type == 0 {
					vals[i] = NullValue
				}
			}
			return ArrayValue(vals), nil
		}, nil
	}
	return constant(v), nil
}

func compileAll(vals []Value, scope compileScope) ([]expr, error) {
	es := make([]expr, len(vals))
	for i, v := range vals {
		e, err := compileIn(v, scope)
		if err != nil {
			return nil, err
		}
		es[i] = e
	}
	return es, nil
}

func evalAll(es []expr, cx *evalCtx) ([]Value, error) {
	out := make([]Value, len(es))
	for i, e := range es {
		v, err := e(cx)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func constant(v Value) expr { return func(*evalCtx) (Value, error) { return v, nil } }

// compileFieldPath compiles "$a.b" and "$$VAR.a.b".
func compileFieldPath(s string, scope compileScope) (expr, error) {
	if !strings.HasPrefix(s, "$$") {
		if s == "$" {
			return nil, errorf(16872, "'$' by itself is not a valid FieldPath")
		}
		path := SplitPath(s[1:])
		return func(cx *evalCtx) (Value, error) { return fieldPathValue(cx.root, path), nil }, nil
	}
	name, rest, _ := strings.Cut(s[2:], ".")
	var path []string
	if rest != "" {
		path = SplitPath(rest)
	}
	switch {
	case name == "ROOT" || name == "CURRENT":
		return func(cx *evalCtx) (Value, error) { return fieldPathValue(cx.root, path), nil }, nil
	case name == "REMOVE":
		return constant(Value{}), nil
	case name == "NOW":
		return func(cx *evalCtx) (Value, error) { return fieldPathValue(DateValue(cx.now.UnixMilli()), path), nil }, nil
	case scope[name]:
		return func(cx *evalCtx) (Value, error) { return fieldPathValue(cx.vars[name], path), nil }, nil
	case name != "" && name[0] >= 'A' && name[0] <= 'Z':
		return nil, Unsupported("the variable $$%s", name)
	}
	return nil, errorf(17276, "Use of undefined variable: %s", name)
}

// fieldPathValue evaluates a path from v: through an array of documents
// it yields the array of each element's value.
func fieldPathValue(v Value, path []string) Value {
	if len(path) == 0 {
		return v
	}
	switch v.Type {
	case bsoncore.TypeEmbeddedDocument:
		child, err := v.Document().LookupErr(path[0])
		if err != nil {
			return Value{}
		}
		return fieldPathValue(child, path[1:])
	case bsoncore.TypeArray:
		var out []Value
		for _, e := range ArrayValues(v) {
			if e.Type == bsoncore.TypeEmbeddedDocument || e.Type == bsoncore.TypeArray {
				out = append(out, fieldPathValue(e, path))
			}
		}
		return ArrayValue(out)
	}
	return Value{}
}

// compileObjectExpr compiles a document literal whose values are
// expressions; a field evaluating to missing is left out.
func compileObjectExpr(d bsoncore.Document, scope compileScope) (expr, error) {
	type part struct {
		key string
		e   expr
	}
	var parts []part
	for _, f := range Fields(d) {
		switch {
		case strings.HasPrefix(f.Key, "$"):
			return nil, errorf(16410, "FieldPath field names may not start with '$'. Consider using $getField or $setField.")
		case strings.Contains(f.Key, "."):
			return nil, errorf(16412, "FieldPath field names may not contain '.'. Consider using $getField or $setField.")
		}
		e, err := compileIn(f.Val, scope)
		if err != nil {
			return nil, err
		}
		parts = append(parts, part{f.Key, e})
	}
	return func(cx *evalCtx) (Value, error) {
		fields := make([]Field, len(parts))
		for i, p := range parts {
			v, err := p.e(cx)
			if err != nil {
				return Value{}, err
			}
			fields[i] = Field{p.key, v}
		}
		return DocValue(BuildDoc(fields)), nil
	}, nil
}

// Expression operators of MongoDB not implemented here: refused with 115.
// Any other name is not an operator (168).
var unsupportedExprOperators = map[string]bool{
	"$abs": true, "$accumulator": true, "$acos": true, "$acosh": true, "$allElementsTrue": true,
	"$anyElementTrue": true, "$arrayToObject": true, "$asin": true, "$asinh": true, "$atan": true,
	"$atan2": true, "$atanh": true, "$avg": true, "$binarySize": true, "$bitAnd": true, "$bitNot": true,
	"$bitOr": true, "$bitXor": true, "$bsonSize": true, "$ceil": true, "$convert": true, "$cos": true,
	"$cosh": true, "$dateAdd": true, "$dateDiff": true, "$dateFromParts": true, "$dateFromString": true,
	"$dateSubtract": true, "$dateToParts": true, "$dateToString": true, "$dateTrunc": true,
	"$dayOfMonth": true, "$dayOfWeek": true, "$dayOfYear": true, "$degreesToRadians": true, "$exp": true,
	"$first": true, "$firstN": true, "$floor": true, "$function": true, "$hour": true, "$indexOfArray": true,
	"$indexOfBytes": true, "$indexOfCP": true, "$isNumber": true, "$isoDayOfWeek": true, "$isoWeek": true,
	"$isoWeekYear": true, "$last": true, "$lastN": true, "$ln": true, "$log": true, "$log10": true,
	"$ltrim": true, "$max": true, "$maxN": true, "$median": true, "$meta": true, "$millisecond": true,
	"$min": true, "$minN": true, "$minute": true, "$month": true, "$objectToArray": true,
	"$percentile": true, "$pow": true, "$radiansToDegrees": true, "$rand": true, "$range": true,
	"$reduce": true, "$regexFind": true, "$regexFindAll": true, "$regexMatch": true, "$replaceAll": true,
	"$replaceOne": true, "$reverseArray": true, "$round": true, "$rtrim": true, "$sampleRate": true,
	"$second": true, "$setDifference": true, "$setEquals": true, "$setIntersection": true,
	"$setIsSubset": true, "$setUnion": true, "$sin": true, "$sinh": true, "$sortArray": true,
	"$split": true, "$sqrt": true, "$stdDevPop": true, "$stdDevSamp": true, "$strLenBytes": true,
	"$strLenCP": true, "$strcasecmp": true, "$substr": true, "$substrBytes": true, "$substrCP": true,
	"$sum": true, "$tan": true, "$tanh": true, "$toBool": true, "$toDate": true, "$toDecimal": true,
	"$toDouble": true, "$toHashedIndexKey": true, "$toInt": true, "$toLong": true, "$toLower": true,
	"$toObjectId": true, "$toString": true, "$toUpper": true, "$toUUID": true, "$trim": true,
	"$trunc": true, "$tsIncrement": true, "$tsSecond": true, "$week": true, "$year": true, "$zip": true,
}

func compileOperatorExpr(d bsoncore.Document, scope compileScope) (expr, error) {
	fields := Fields(d)
	if len(fields) != 1 {
		return nil, errorf(15983, "an expression specification must contain exactly one field, the name of the expression. Found %d fields in %s", len(fields), d)
	}
	op, arg := fields[0].Key, fields[0].Val
	if special := specialOperators[op]; special != nil {
		return special(arg, scope)
	}
	impl, ok := exprOperators[op]
	switch {
	case !ok && unsupportedExprOperators[op]:
		return nil, Unsupported("the expression operator %s", op)
	case !ok:
		return nil, errorf(CodeInvalidPipelineOperator, "Unrecognized expression '%s'", op)
	}
	argVals := []Value{arg}
	if arg.Type == bsoncore.TypeArray {
		argVals = ArrayValues(arg)
	}
	if len(argVals) < impl.minArgs || (impl.maxArgs >= 0 && len(argVals) > impl.maxArgs) {
		return nil, errorf(16020, "Expression %s takes %s arguments. %d were passed in.", op, argCount(impl.minArgs, impl.maxArgs), len(argVals))
	}
	args, err := compileAll(argVals, scope)
	if err != nil {
		return nil, err
	}
	return func(cx *evalCtx) (Value, error) {
		vals, err := evalAll(args, cx)
		if err != nil {
			return Value{}, err
		}
		return impl.eval(vals)
	}, nil
}

func argCount(lo, hi int) string {
	switch {
	case lo == hi:
		return "exactly " + ArrayKey(lo)
	case hi < 0:
		return "at least " + ArrayKey(lo)
	}
	return ArrayKey(lo) + " to " + ArrayKey(hi)
}

// namedArgs reads an operator's document argument: each name in required
// must be there, each other field must be in optional.
func namedArgs(op string, arg Value, required, optional []string) (map[string]Value, error) {
	d, ok := arg.DocumentOK()
	if !ok {
		return nil, errorf(CodeFailedToParse, "%s expects an object as its argument, found %s", op, TypeName(arg.Type))
	}
	out := map[string]Value{}
	for _, f := range Fields(d) {
		if !slices.Contains(required, f.Key) && !slices.Contains(optional, f.Key) {
			return nil, errorf(CodeFailedToParse, "%s found an unknown argument: %s", op, f.Key)
		}
		out[f.Key] = f.Val
	}
	for _, r := range required {
		if _, ok := out[r]; !ok {
			return nil, errorf(CodeFailedToParse, "%s requires '%s' to be specified", op, r)
		}
	}
	return out, nil
}
