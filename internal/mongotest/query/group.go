package query

import (
	"math"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// accumulator folds the values of one $group output field
// (https://www.mongodb.com/docs/manual/reference/operator/aggregation/group/).
type accumulator interface {
	add(v Value) error
	result() Value
}

var accumulators = map[string]func(op string) accumulator{
	"$sum":      func(op string) accumulator { return &sumAcc{op: op} },
	"$count":    func(op string) accumulator { return &sumAcc{op: op} },
	"$avg":      func(op string) accumulator { return &avgAcc{} },
	"$min":      func(string) accumulator { return &extremeAcc{sign: -1} },
	"$max":      func(string) accumulator { return &extremeAcc{sign: 1} },
	"$first":    func(string) accumulator { return &firstLastAcc{first: true} },
	"$last":     func(string) accumulator { return &firstLastAcc{} },
	"$push":     func(string) accumulator { return &pushAcc{} },
	"$addToSet": func(string) accumulator { return &pushAcc{unique: true} },
}

// Accumulators of MongoDB that are not implemented here: refused with 115.
var unsupportedAccumulators = map[string]bool{
	"$mergeObjects": true, "$stdDevPop": true, "$stdDevSamp": true, "$top": true, "$bottom": true,
	"$topN": true, "$bottomN": true, "$firstN": true, "$lastN": true, "$maxN": true, "$minN": true,
	"$median": true, "$percentile": true, "$accumulator": true,
}

type groupField struct {
	name string
	op   string
	e    expr
}

func compileGroup(arg Value) (Stage, error) {
	spec, ok := arg.DocumentOK()
	if !ok {
		return nil, errorf(15947, "a group's fields must be specified in an object")
	}
	idSpec, err := spec.LookupErr("_id")
	if err != nil {
		return nil, errorf(15955, "a group specification must include an _id")
	}
	idExpr, err := compileExpr(idSpec)
	if err != nil {
		return nil, err
	}
	var fields []groupField
	for _, f := range Fields(spec) {
		if f.Key == "_id" {
			continue
		}
		d, ok := f.Val.DocumentOK()
		if !ok || len(Fields(d)) != 1 {
			return nil, errorf(40234, "The field '%s' must be an accumulator object", f.Key)
		}
		acc := Fields(d)[0]
		switch {
		case unsupportedAccumulators[acc.Key]:
			return nil, Unsupported("the $group accumulator %s", acc.Key)
		case accumulators[acc.Key] == nil:
			return nil, errorf(15952, "unknown group operator '%s'", acc.Key)
		}
		e := constant(Int32Value(1)) // {$count: {}} sums 1 per document
		if acc.Key != "$count" {
			if e, err = compileExpr(acc.Val); err != nil {
				return nil, err
			}
		}
		fields = append(fields, groupField{f.Key, acc.Key, e})
	}
	now := time.Now()
	return stageFunc(func(docs []bsoncore.Document) ([]bsoncore.Document, error) {
		type group struct {
			id   Value
			accs []accumulator
		}
		var order []*group
		groups := map[string]*group{}
		for _, d := range docs {
			cx := newEvalCtx(d, now)
			idv, err := idExpr(cx)
			if err != nil {
				return nil, err
			}
			id := orNull(idv)
			key := string(AppendKey(nil, id))
			g := groups[key]
			if g == nil {
				g = &group{id: id}
				for _, f := range fields {
					g.accs = append(g.accs, accumulators[f.op](f.op))
				}
				groups[key] = g
				order = append(order, g)
			}
			for i, f := range fields {
				v, err := f.e(cx)
				if err == nil {
					err = g.accs[i].add(v)
				}
				if err != nil {
					return nil, err
				}
			}
		}
		out := make([]bsoncore.Document, len(order))
		for i, g := range order {
			fs := []Field{{"_id", g.id}}
			for j, f := range fields {
				fs = append(fs, Field{f.name, g.accs[j].result()})
			}
			out[i] = BuildDoc(fs)
		}
		return out, nil
	}), nil
}

func orNull(v Value) Value {
	if v.Type == 0 || v.Type == bsoncore.TypeUndefined {
		return NullValue
	}
	return v
}

// noDecimal refuses Decimal128 operands: summing them exactly needs decimal
// arithmetic this package does not have, and a float result would be wrong.
func noDecimal(op string, v Value) error {
	if v.Type == bsoncore.TypeDecimal128 {
		return Unsupported("Decimal128 values in %s", op)
	}
	return nil
}

// sumAcc adds numbers, ignoring other values, with int32 -> int64 ->
// double widening.
type sumAcc struct {
	op       string
	i        int64
	f        float64
	long     bool
	double   bool
	overflow bool
}

func (a *sumAcc) add(v Value) error {
	switch v.Type {
	case bsoncore.TypeInt32, bsoncore.TypeInt64:
		if v.Type == bsoncore.TypeInt64 {
			a.long = true
		}
		var o bool
		a.i, o = addInt64(a.i, v.AsInt64())
		a.overflow = a.overflow || o
		a.f += float64(v.AsInt64())
	case bsoncore.TypeDouble:
		a.double = true
		a.f += v.Double()
	}
	return noDecimal(a.op, v)
}

func (a *sumAcc) result() Value {
	switch {
	case a.double || a.overflow:
		return DoubleValue(a.f)
	case a.long || a.i > math.MaxInt32 || a.i < math.MinInt32:
		return Int64Value(a.i)
	}
	return Int32Value(int32(a.i))
}

type avgAcc struct {
	sum float64
	n   int
}

func (a *avgAcc) add(v Value) error {
	if v.IsNumber() && v.Type != bsoncore.TypeDecimal128 {
		a.sum += v.AsFloat64()
		a.n++
	}
	return noDecimal("$avg", v)
}

func (a *avgAcc) result() Value {
	if a.n == 0 {
		return NullValue
	}
	return DoubleValue(a.sum / float64(a.n))
}

// extremeAcc is $min (sign -1) or $max (sign 1); null and missing values
// are ignored.
type extremeAcc struct {
	sign int
	best Value
}

func (a *extremeAcc) add(v Value) error {
	if !nullish(v) && (a.best.Type == 0 || Compare(v, a.best)*a.sign > 0) {
		a.best = v
	}
	return nil
}

func (a *extremeAcc) result() Value { return orNull(a.best) }

// firstLastAcc is $first or $last: the value of the first or last document
// of the group, null where it is missing.
type firstLastAcc struct {
	first bool
	seen  bool
	v     Value
}

func (a *firstLastAcc) add(v Value) error {
	if !a.first || !a.seen {
		a.seen, a.v = true, v
	}
	return nil
}

func (a *firstLastAcc) result() Value { return orNull(a.v) }

// pushAcc is $push, or $addToSet (unique): missing values are left out.
type pushAcc struct {
	unique bool
	vals   []Value
}

func (a *pushAcc) add(v Value) error {
	if v.Type == 0 {
		return nil
	}
	if a.unique {
		for _, x := range a.vals {
			if Equal(x, v) {
				return nil
			}
		}
	}
	a.vals = append(a.vals, v)
	return nil
}

func (a *pushAcc) result() Value { return ArrayValue(a.vals) }

// addInt64 adds, reporting overflow.
func addInt64(a, b int64) (int64, bool) {
	s := a + b
	return s, (a > 0 && b > 0 && s < 0) || (a < 0 && b < 0 && s >= 0)
}
