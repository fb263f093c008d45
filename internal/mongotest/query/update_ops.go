package query

import (
	"math"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// The leaf operators, each as its page under
// https://www.mongodb.com/docs/manual/reference/operator/update/ describes
// it, logged as mongod's update nodes log them: a created path from its
// first created part, a changed value at its path (an array changed by
// $addToSet, $pull, $pullAll or $pop whole, as ModifierNode logs a normal
// update), a removed field, nothing for a no-op.

// apply applies one operator at its (expanded) path. Writing a top-level
// $-prefixed field of a document that exists fails, as mongod's storage
// validation of the element an operator wrote (modifier_node.cpp).
func (a *applier) apply(cur any, op updateOp) (any, error) {
	before := len(a.log)
	out, err := a.applyOp(cur, op)
	if err != nil || a.opts.Inserting {
		return out, err
	}
	for _, c := range a.log[before:] {
		if len(c.parts) == 1 && c.kind != changeDelete {
			if err := dollarPrefixed(c.parts[0].name); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func (a *applier) applyOp(cur any, op updateOp) (any, error) {
	log := &a.log
	switch op.op {
	case "$setOnInsert":
		if !a.opts.Inserting {
			return cur, nil
		}
		fallthrough
	case "$set":
		arg := goValue(op.arg)
		return log.set(cur, op.path, func(any, bool) (any, error) { return arg, nil })
	case "$unset":
		return log.unset(cur, op.path)
	case "$inc", "$mul":
		return log.set(cur, op.path, func(v any, exists bool) (any, error) { return a.arithmetic(op, v, exists) })
	case "$bit":
		return log.set(cur, op.path, func(v any, exists bool) (any, error) { return applyBit(op, v, exists) })
	case "$min", "$max":
		arg := goValue(op.arg)
		return log.set(cur, op.path, func(v any, exists bool) (any, error) {
			if !exists {
				return arg, nil
			}
			c := Compare(MarshalValue(v), op.arg)
			if op.op == "$min" && c > 0 || op.op == "$max" && c < 0 {
				return arg, nil
			}
			return v, nil
		})
	case "$currentDate":
		var v any = bson.NewDateTimeFromTime(a.opts.Now)
		if d, ok := op.arg.DocumentOK(); ok && d.Lookup("$type").StringValue() == "timestamp" {
			v = bson.Timestamp{T: uint32(a.opts.Now.Unix()), I: 1}
		}
		return log.set(cur, op.path, func(any, bool) (any, error) { return v, nil })
	case "$push":
		return op.applyPush(cur, a.old, log)
	case "$addToSet":
		return log.set(cur, op.path, func(v any, exists bool) (any, error) {
			if !exists {
				return slices.Clone(op.set), nil
			}
			arr, ok := v.(bson.A)
			if !ok {
				return nil, errorf(CodeBadValue, "Cannot apply $addToSet to non-array field. Field named '%s' has non-array type %s", op.path[len(op.path)-1], TypeName(MarshalValue(v).Type))
			}
			arr = slices.Clone(arr)
			for _, x := range op.set {
				if !slices.ContainsFunc(arr, func(e any) bool { return Equal(MarshalValue(e), MarshalValue(x)) }) {
					arr = append(arr, x)
				}
			}
			return arr, nil
		})
	case "$pull", "$pullAll", "$pop":
		return a.cull(cur, op)
	case "$rename":
		return a.rename(cur, op)
	}
	return nil, errorf(CodeFailedToParse, "Unknown modifier: %s", op.op)
}

// arithmetic is $inc and $mul: a missing field becomes the argument ($inc)
// or a zero of its type ($mul); types widen as mongod's SafeNum does.
func (a *applier) arithmetic(op updateOp, v any, exists bool) (any, error) {
	arg := goValue(op.arg)
	field := strings.Join(op.path, ".")
	if !exists {
		if op.op == "$inc" {
			return arg, nil
		}
		switch arg.(type) {
		case int32:
			return int32(0), nil
		case int64:
			return int64(0), nil
		}
		return 0.0, nil
	}
	if _, ok := v.(bson.Decimal128); ok {
		return nil, Unsupported("%s of a Decimal128 value", op.op)
	}
	if !isNumber(v) {
		return nil, errorf(CodeTypeMismatch, "Cannot apply %s to a value of non-numeric type. {_id: %s} has the field '%s' of non-numeric type %s",
			op.op, a.old.Lookup("_id"), field, TypeName(MarshalValue(v).Type))
	}
	var r any
	var overflow bool
	if op.op == "$inc" {
		r, overflow = add(v, arg)
	} else {
		r, overflow = multiply(v, arg)
	}
	if overflow {
		return nil, errorf(CodeBadValue, "Failed to apply %s operations to current value (%s) for document {_id: %s}", op.op, MarshalValue(v), a.old.Lookup("_id"))
	}
	return r, nil
}

func isNumber(v any) bool {
	switch v.(type) {
	case int32, int64, float64:
		return true
	}
	return false
}

// add adds with the server's type promotion: int32 overflow widens to
// int64; int64 overflow is reported.
func add(a, b any) (any, bool) {
	return combine(a, b, func(x, y float64) float64 { return x + y }, addInt64)
}

func multiply(a, b any) (any, bool) {
	return combine(a, b, func(x, y float64) float64 { return x * y }, mulInt64)
}

func combine(a, b any, f func(x, y float64) float64, i func(x, y int64) (int64, bool)) (any, bool) {
	af, aIsF := a.(float64)
	bf, bIsF := b.(float64)
	if aIsF || bIsF {
		if !aIsF {
			af = float64(MarshalValue(a).AsInt64())
		}
		if !bIsF {
			bf = float64(MarshalValue(b).AsInt64())
		}
		return f(af, bf), false
	}
	r, overflow := i(MarshalValue(a).AsInt64(), MarshalValue(b).AsInt64())
	if overflow {
		return nil, true
	}
	_, a32 := a.(int32)
	_, b32 := b.(int32)
	if a32 && b32 && r >= math.MinInt32 && r <= math.MaxInt32 {
		return int32(r), false
	}
	return r, false
}

// cull is $pull, $pullAll and $pop: they change an existing array and
// leave a missing field alone.
func (a *applier) cull(cur any, op updateOp) (any, error) {
	changed := false
	out, w, err := updateAt(cur, op.path, false, func(v any, exists bool) (any, bool, error) {
		if !exists {
			return v, true, nil
		}
		arr, ok := v.(bson.A)
		if !ok {
			if op.op == "$pop" {
				return nil, false, errorf(CodeTypeMismatch, "Path '%s' contains an element of non-array type '%s'", strings.Join(op.path, "."), TypeName(MarshalValue(v).Type))
			}
			return nil, false, errorf(CodeBadValue, "Cannot apply %s to a non-array value", op.op)
		}
		var kept bson.A
		switch op.op {
		case "$pop":
			if len(arr) == 0 {
				return v, true, nil
			}
			if n, _ := wholeNumber(op.arg); n == 1 {
				kept = slices.Clone(arr[:len(arr)-1])
			} else {
				kept = slices.Clone(arr[1:])
			}
		default:
			kept = bson.A{}
			for _, e := range arr {
				if !op.pulls(MarshalValue(e)) {
					kept = append(kept, e)
				}
			}
		}
		changed = len(kept) != len(arr)
		return kept, true, nil
	})
	if err == nil && changed {
		a.log.add(w.parts, changeUpdate)
	}
	return out, err
}

// compileAddToSet reads $addToSet's argument: a value, or {$each: [...]};
// the values are kept once each.
func compileAddToSet(v Value) (bson.A, error) {
	vals := []Value{v}
	if d, ok := v.DocumentOK(); ok && len(Fields(d)) > 0 && Fields(d)[0].Key == "$each" {
		each := Fields(d)[0].Val
		if each.Type != bsoncore.TypeArray {
			return nil, errorf(CodeTypeMismatch, "The argument to $each in $addToSet must be an array but it was of type %s", TypeName(each.Type))
		}
		if len(Fields(d)) > 1 {
			return nil, errorf(CodeBadValue, "Found unexpected fields after $each in $addToSet: %s", d)
		}
		vals = ArrayValues(each)
	}
	var out bson.A
	var seen []Value
	for _, x := range vals {
		if !slices.ContainsFunc(seen, func(s Value) bool { return Equal(s, x) }) {
			seen = append(seen, x)
			out = append(out, goValue(x))
		}
	}
	if out == nil {
		out = bson.A{}
	}
	return out, nil
}

// compilePull reads $pull's condition as mongod's PullNode does: a document
// whose first field is not an operator is a query on document elements;
// an operator document (or a regex) is a condition on each element's value;
// anything else is compared for equality.
func (o *updateOp) compilePull(v Value) error {
	d, isDoc := v.DocumentOK()
	var err error
	switch {
	case isDoc && len(Fields(d)) > 0 && !strings.HasPrefix(Fields(d)[0].Key, "$") || isDoc && isLogical(d):
		o.pull, err = CompileFilter(d)
	case isDoc || v.Type == bsoncore.TypeRegex:
		o.pull, err = CompileFilter(BuildDoc([]Field{{"", v}}))
		if o.pull != nil {
			o.pull.wrapped = true
		}
	default:
		o.pullEqual = &v
	}
	return err
}

// isLogical reports a filter whose first field is $and, $or or $nor.
func isLogical(d bsoncore.Document) bool {
	k := Fields(d)[0].Key
	return k == "$and" || k == "$or" || k == "$nor"
}

// pulls reports whether $pull or $pullAll removes the element e.
func (o updateOp) pulls(e Value) bool {
	switch {
	case o.op == "$pullAll":
		return slices.ContainsFunc(ArrayValues(o.arg), func(x Value) bool { return Equal(x, e) })
	case o.pullEqual != nil:
		return Equal(*o.pullEqual, e)
	case o.pull.wrapped:
		return o.pull.Matches(BuildDoc([]Field{{"", e}}))
	case e.Type == bsoncore.TypeEmbeddedDocument:
		return o.pull.Matches(e.Document())
	}
	return false
}

// rename moves a field, as mongod's RenameNode does: the destination is set
// (logged), then the source removed (logged); neither path may cross an
// array, and a missing source changes nothing.
func (a *applier) rename(cur any, op updateOp) (any, error) {
	v, found, err := noArrayLookup(cur, op.path, "source")
	if err != nil || !found {
		return cur, err
	}
	if _, _, err := noArrayLookup(cur, op.to, "destination"); err != nil {
		return nil, err
	}
	moved := goValue(MarshalValue(v)) // its own copy
	if cur, err = a.log.set(cur, op.to, func(any, bool) (any, error) { return moved, nil }); err != nil {
		return nil, err
	}
	return a.log.unset(cur, op.path)
}

// noArrayLookup finds path in cur, failing if it crosses or reaches into an
// array.
func noArrayLookup(cur any, path []string, which string) (any, bool, error) {
	for i, p := range path {
		switch c := cur.(type) {
		case bson.A:
			return nil, false, errorf(CodeBadValue, "The %s field cannot be an array element, '%s' in doc with %s being an array", which, strings.Join(path, "."), strings.Join(path[:i], "."))
		case bson.D:
			var found bool
			if cur, found = fieldOf(c, p); !found {
				return nil, false, nil
			}
		default:
			return nil, false, nil
		}
	}
	return cur, true, nil
}

// checkBitArg reads $bit's {and|or|xor: <int or long>, ...}
// (https://www.mongodb.com/docs/manual/reference/operator/update/bit/).
func checkBitArg(v Value) error {
	d, ok := v.DocumentOK()
	if !ok {
		return errorf(CodeBadValue, "The $bit modifier is not compatible with a %s. You must pass in an embedded document: {$bit: {field: {and/or/xor: #}}", TypeName(v.Type))
	}
	fields := Fields(d)
	if len(fields) == 0 {
		return errorf(CodeBadValue, "You must pass in at least one bitwise operation. The format is: {$bit: {field: {and/or/xor: #}}")
	}
	for _, f := range fields {
		if f.Key != "and" && f.Key != "or" && f.Key != "xor" {
			return errorf(CodeBadValue, "The $bit modifier only supports 'and', 'or', and 'xor', not '%s' which is an unknown operator: {%s: %s}", f.Key, f.Key, f.Val)
		}
		if f.Val.Type != bsoncore.TypeInt32 && f.Val.Type != bsoncore.TypeInt64 {
			return errorf(CodeBadValue, "The $bit modifier field must be an Integer(32/64 bit); a '%s' is not supported here: {%s: %s}", TypeName(f.Val.Type), f.Key, f.Val)
		}
	}
	return nil
}

// applyBit applies $bit's operations in order to an integer, a missing
// field counting as the int 0 (mongod's BitNode); an int and a long make a
// long.
func applyBit(op updateOp, v any, exists bool) (any, error) {
	if !exists {
		v = int32(0)
	}
	var n int64
	long := false
	switch x := v.(type) {
	case int32:
		n = int64(x)
	case int64:
		n, long = x, true
	default:
		return nil, errorf(CodeBadValue, "Cannot apply $bit to a value of non-integral type: the field %s is of non-integer type %s",
			op.path[len(op.path)-1], TypeName(MarshalValue(v).Type))
	}
	for _, f := range Fields(op.arg.Document()) {
		m := f.Val.AsInt64()
		long = long || f.Val.Type == bsoncore.TypeInt64
		switch f.Key {
		case "and":
			n &= m
		case "or":
			n |= m
		default:
			n ^= m
		}
	}
	if long {
		return n, nil
	}
	return int32(n), nil
}
