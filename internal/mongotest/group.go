package mongotest

import (
	"math"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// accumulator folds the values of one $group output field
// (https://www.mongodb.com/docs/manual/reference/operator/aggregation/group/).
type accumulator interface {
	add(v bsoncore.Value)
	result() bsoncore.Value
}

var accumulators = map[string]func() accumulator{
	"$sum":      func() accumulator { return &sumAcc{} },
	"$avg":      func() accumulator { return &avgAcc{} },
	"$min":      func() accumulator { return &extremeAcc{sign: -1} },
	"$max":      func() accumulator { return &extremeAcc{sign: 1} },
	"$first":    func() accumulator { return &firstLastAcc{first: true} },
	"$last":     func() accumulator { return &firstLastAcc{} },
	"$push":     func() accumulator { return &pushAcc{} },
	"$addToSet": func() accumulator { return &pushAcc{unique: true} },
	"$count":    func() accumulator { return &sumAcc{} },
}

type groupField struct {
	name string
	op   string
	e    expr
}

func compileGroup(arg bsoncore.Value) (stage, error) {
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
	for _, f := range docFields(spec) {
		if f.key == "_id" {
			continue
		}
		d, ok := f.val.DocumentOK()
		if !ok || len(docFields(d)) != 1 {
			return nil, errorf(40234, "The field '%s' must be an accumulator object", f.key)
		}
		acc := docFields(d)[0]
		if _, ok := accumulators[acc.key]; !ok {
			return nil, errorf(15952, "unknown group operator '%s'", acc.key)
		}
		e := constant(int32Value(1)) // {$count: {}} sums 1 per document
		if acc.key != "$count" {
			if e, err = compileExpr(acc.val); err != nil {
				return nil, err
			}
		}
		fields = append(fields, groupField{f.key, acc.key, e})
	}
	return stageFunc(func(docs []bsoncore.Document) ([]bsoncore.Document, error) {
		type group struct {
			id   bsoncore.Value
			accs []accumulator
		}
		var order []*group
		groups := map[string]*group{}
		for _, d := range docs {
			id, err := idExpr(d)
			if err != nil {
				return nil, err
			}
			id = orNull(id)
			key := string(appendIndexKey(nil, id))
			g := groups[key]
			if g == nil {
				g = &group{id: id}
				for _, f := range fields {
					g.accs = append(g.accs, accumulators[f.op]())
				}
				groups[key] = g
				order = append(order, g)
			}
			for i, f := range fields {
				v, err := f.e(d)
				if err != nil {
					return nil, err
				}
				g.accs[i].add(v)
			}
		}
		out := make([]bsoncore.Document, len(order))
		for i, g := range order {
			fs := []field{{"_id", g.id}}
			for j, f := range fields {
				fs = append(fs, field{f.name, g.accs[j].result()})
			}
			out[i] = buildDoc(fs)
		}
		return out, nil
	}), nil
}

// sumAcc adds numbers, ignoring other values, with int32 -> int64 ->
// double widening.
type sumAcc struct {
	i       int64
	f       float64
	long    bool
	double  bool
	overflw bool
}

func (a *sumAcc) add(v bsoncore.Value) {
	switch v.Type {
	case bsoncore.TypeInt32, bsoncore.TypeInt64:
		if v.Type == bsoncore.TypeInt64 {
			a.long = true
		}
		var o bool
		a.i, o = addInt64(a.i, v.AsInt64())
		a.overflw = a.overflw || o
		a.f += float64(v.AsInt64())
	case bsoncore.TypeDouble:
		a.double = true
		a.f += v.Double()
	}
}

func (a *sumAcc) result() bsoncore.Value {
	switch {
	case a.double || a.overflw:
		return doubleValue(a.f)
	case a.long || a.i > math.MaxInt32 || a.i < math.MinInt32:
		return int64Value(a.i)
	}
	return int32Value(int32(a.i))
}

type avgAcc struct {
	sum float64
	n   int
}

func (a *avgAcc) add(v bsoncore.Value) {
	if v.IsNumber() && v.Type != bsoncore.TypeDecimal128 {
		a.sum += v.AsFloat64()
		a.n++
	}
}

func (a *avgAcc) result() bsoncore.Value {
	if a.n == 0 {
		return nullValue
	}
	return doubleValue(a.sum / float64(a.n))
}

// extremeAcc is $min (sign -1) or $max (sign 1); null and missing values
// are ignored.
type extremeAcc struct {
	sign int
	best bsoncore.Value
}

func (a *extremeAcc) add(v bsoncore.Value) {
	if v.Type == 0 || v.Type == bsoncore.TypeNull || v.Type == bsoncore.TypeUndefined {
		return
	}
	if a.best.Type == 0 || compareValues(v, a.best)*a.sign > 0 {
		a.best = v
	}
}

func (a *extremeAcc) result() bsoncore.Value { return orNull(a.best) }

type firstLastAcc struct {
	first bool
	seen  bool
	v     bsoncore.Value
}

func (a *firstLastAcc) add(v bsoncore.Value) {
	if a.first && a.seen {
		return
	}
	a.seen, a.v = true, v
}

func (a *firstLastAcc) result() bsoncore.Value { return orNull(a.v) }

type pushAcc struct {
	unique bool
	vals   []bsoncore.Value
}

func (a *pushAcc) add(v bsoncore.Value) {
	if v.Type == 0 {
		return
	}
	if a.unique {
		for _, x := range a.vals {
			if valuesEqual(x, v) {
				return
			}
		}
	}
	a.vals = append(a.vals, v)
}

func (a *pushAcc) result() bsoncore.Value { return arrayValue(a.vals) }
