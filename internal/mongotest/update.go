package mongotest

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// updater is a compiled update: a replacement document or update operators
// (https://www.mongodb.com/docs/manual/reference/operator/update/).
// Operators work on a decoded bson.D, which keeps field order.
type updater struct {
	replacement bsoncore.Document
	ops         []updateOp
}

type updateOp struct {
	op   string
	path []string
	arg  bsoncore.Value
}

var updateOperators = map[string]bool{
	"$set": true, "$unset": true, "$inc": true, "$mul": true, "$min": true, "$max": true,
	"$setOnInsert": true, "$currentDate": true, "$rename": true, "$push": true, "$addToSet": true,
	"$pull": true, "$pop": true,
}

func compileUpdate(u bsoncore.Value) (*updater, error) {
	if u.Type == bsoncore.TypeArray {
		return nil, unsupported("pipeline-style updates")
	}
	d, ok := u.DocumentOK()
	if !ok {
		return nil, errorf(codeFailedToParse, "Update argument must be either an object or an array")
	}
	fields := docFields(d)
	if len(fields) == 0 || !strings.HasPrefix(fields[0].key, "$") {
		for _, f := range fields {
			if strings.HasPrefix(f.key, "$") {
				return nil, errorf(52, "The dollar ($) prefixed field '%s' in '%s' is not allowed in a replacement document", f.key, f.key)
			}
		}
		return &updater{replacement: d}, nil
	}
	up := &updater{}
	var paths []string
	for _, f := range fields {
		if !updateOperators[f.key] {
			if strings.HasPrefix(f.key, "$") && !strings.ContainsAny(f.key, ".") && len(f.key) > 1 {
				return nil, errorf(codeFailedToParse, "Unknown modifier: %s. Expected a valid update modifier or pipeline-style update specified as an array", f.key)
			}
			return nil, errorf(codeFailedToParse, "Unknown modifier: %s", f.key)
		}
		args, ok := f.val.DocumentOK()
		if !ok {
			return nil, errorf(codeFailedToParse, "Modifiers operate on fields but we found type %s instead. For example: {$mod: {<field>: ...}} not {%s: %s}", typeName(f.val.Type), f.key, f.val)
		}
		for _, a := range docFields(args) {
			if strings.Contains(a.key, "$") {
				return nil, unsupported("positional and array-filter update paths (%s)", a.key)
			}
			targets := []string{a.key}
			if f.key == "$rename" {
				to, ok := a.val.StringValueOK()
				if !ok {
					return nil, errorf(codeBadValue, "The 'to' field for $rename must be a string: %s: %s", a.key, a.val)
				}
				targets = append(targets, to)
			}
			for _, t := range targets {
				for _, p := range paths {
					if p == t || strings.HasPrefix(p, t+".") || strings.HasPrefix(t, p+".") {
						return nil, errorf(codeConflictingUpdateOperators, "Updating the path '%s' would create a conflict at '%s'", t, p)
					}
				}
				paths = append(paths, t)
			}
			up.ops = append(up.ops, updateOp{op: f.key, path: splitPath(a.key), arg: a.val})
		}
	}
	return up, nil
}

// apply returns the updated document. inserting is true for an upsert's
// insert, the only time $setOnInsert applies.
func (u *updater) apply(old bsoncore.Document, inserting bool) (bsoncore.Document, error) {
	var out bsoncore.Document
	if u.replacement != nil {
		out = withID(u.replacement, old.Lookup("_id"))
	} else {
		var d bson.D
		if err := bson.Unmarshal(old, &d); err != nil {
			return nil, errorf(1, "cannot decode stored document: %v", err)
		}
		var cur any = d
		for _, op := range u.ops {
			var err error
			if cur, err = op.apply(cur, old, inserting); err != nil {
				return nil, err
			}
		}
		var err error
		if out, err = bson.Marshal(cur); err != nil {
			return nil, errorf(codeBadValue, "cannot encode updated document: %v", err)
		}
	}
	if oldID, err := old.LookupErr("_id"); err == nil {
		if newID, err := out.LookupErr("_id"); err != nil || !bytes.Equal(oldID.Data, newID.Data) || oldID.Type != newID.Type {
			return nil, errorf(codeImmutableField, "Performing an update on the path '_id' would modify the immutable field '_id'")
		}
	}
	if len(out) > maxBSONObjectSize {
		return nil, errorf(17419, "Resulting document after update is larger than %d", maxBSONObjectSize)
	}
	return out, nil
}

// withID puts id first in doc (replacing any _id in it), as the server
// stores _id first.
func withID(doc bsoncore.Document, id bsoncore.Value) bsoncore.Document {
	if id.Type == 0 {
		if _, err := doc.LookupErr("_id"); err == nil {
			id = doc.Lookup("_id")
		} else {
			return doc
		}
	}
	fields := []field{{"_id", id}}
	for _, f := range docFields(doc) {
		if f.key != "_id" {
			fields = append(fields, f)
		} else if !valuesEqual(f.val, id) || f.val.Type != id.Type {
			fields[0].val = f.val // a different _id: the immutable-field check reports it
		}
	}
	return buildDoc(fields)
}

func (op updateOp) apply(cur any, old bsoncore.Document, inserting bool) (any, error) {
	arg := goValue(op.arg)
	setTo := func(v any) func(any, bool) (any, bool, error) {
		return func(any, bool) (any, bool, error) { return v, true, nil }
	}
	switch op.op {
	case "$set":
		return updateAt(cur, op.path, true, setTo(arg))
	case "$setOnInsert":
		if !inserting {
			return cur, nil
		}
		return updateAt(cur, op.path, true, setTo(arg))
	case "$unset":
		return updateAt(cur, op.path, false, func(any, bool) (any, bool, error) { return nil, false, nil })
	case "$inc", "$mul":
		return updateAt(cur, op.path, true, func(v any, exists bool) (any, bool, error) {
			if !isNumber(arg) {
				return nil, false, errorf(codeTypeMismatch, "Cannot %s with non-numeric argument: {%s: %v}", op.op[1:], strings.Join(op.path, "."), arg)
			}
			if !exists {
				if op.op == "$mul" {
					return zeroLike(arg), true, nil
				}
				return arg, true, nil
			}
			if !isNumber(v) {
				return nil, false, errorf(codeTypeMismatch, "Cannot apply %s to a value of non-numeric type. {_id: %s} has the field '%s' of non-numeric type %T", op.op, old.Lookup("_id"), strings.Join(op.path, "."), v)
			}
			return arithmetic(v, arg, op.op == "$mul")
		})
	case "$min", "$max":
		return updateAt(cur, op.path, true, func(v any, exists bool) (any, bool, error) {
			if !exists {
				return arg, true, nil
			}
			c := compareValues(marshalValue(arg), marshalValue(v))
			if (op.op == "$max" && c > 0) || (op.op == "$min" && c < 0) {
				return arg, true, nil
			}
			return v, true, nil
		})
	case "$currentDate":
		now := time.Now()
		var v any = bson.NewDateTimeFromTime(now)
		if d, ok := op.arg.DocumentOK(); ok && d.Lookup("$type").StringValue() == "timestamp" {
			v = bson.Timestamp{T: uint32(now.Unix()), I: 1}
		}
		return updateAt(cur, op.path, true, setTo(v))
	case "$rename":
		var moved any
		var found bool
		cur, err := updateAt(cur, op.path, false, func(v any, exists bool) (any, bool, error) {
			moved, found = v, exists
			return nil, false, nil
		})
		if err != nil || !found {
			return cur, err
		}
		return updateAt(cur, splitPath(op.arg.StringValue()), true, setTo(moved))
	case "$push", "$addToSet":
		return updateAt(cur, op.path, true, func(v any, exists bool) (any, bool, error) { return pushValues(op, arg, v, exists) })
	case "$pull":
		pred, err := compileFieldValue(op.arg)
		if err != nil {
			return nil, err
		}
		return updateAt(cur, op.path, false, func(v any, exists bool) (any, bool, error) {
			arr, ok := v.(bson.A)
			if !exists || !ok {
				return v, exists, nil
			}
			kept := bson.A{}
			for _, e := range arr {
				ev := marshalValue(e)
				if !pred([]candidate{{ev, true}}) && !(ev.Type == bsoncore.TypeEmbeddedDocument && op.arg.Type == bsoncore.TypeEmbeddedDocument && pullDocMatch(op.arg, ev)) {
					kept = append(kept, e)
				}
			}
			return kept, true, nil
		})
	case "$pop":
		return updateAt(cur, op.path, false, func(v any, exists bool) (any, bool, error) {
			arr, ok := v.(bson.A)
			if !exists || !ok || len(arr) == 0 {
				return v, exists, nil
			}
			if truthy(op.arg) && op.arg.AsFloat64() < 0 {
				return arr[1:], true, nil
			}
			return arr[:len(arr)-1], true, nil
		})
	}
	return nil, errorf(codeFailedToParse, "Unknown modifier: %s", op.op)
}

// pullDocMatch: {$pull: {arr: {a: 1}}} removes documents matching the query {a: 1}.
func pullDocMatch(q, elem bsoncore.Value) bool {
	p, err := compileQuery(q.Document())
	return err == nil && p(elem)
}

func pushValues(op updateOp, arg, v any, exists bool) (any, bool, error) {
	items := bson.A{arg}
	if d, ok := op.arg.DocumentOK(); ok && isOperatorDoc(d) {
		for _, f := range docFields(d) {
			if f.key != "$each" {
				return nil, false, unsupported("%s modifier %s", op.op, f.key)
			}
			if f.val.Type != bsoncore.TypeArray {
				return nil, false, errorf(codeBadValue, "The argument to $each in %s must be an array but it was of type: %s", op.op, typeName(f.val.Type))
			}
			items, _ = goValue(f.val).(bson.A)
		}
	}
	var arr bson.A
	if exists {
		a, ok := v.(bson.A)
		if !ok {
			return nil, false, errorf(codeBadValue, "The field '%s' must be an array but is of type %T", strings.Join(op.path, "."), v)
		}
		arr = append(arr, a...)
	}
	for _, item := range items {
		if op.op == "$addToSet" && containsValue(arr, item) {
			continue
		}
		arr = append(arr, item)
	}
	if arr == nil {
		arr = bson.A{}
	}
	return arr, true, nil
}

func containsValue(arr bson.A, v any) bool {
	mv := marshalValue(v)
	for _, e := range arr {
		if valuesEqual(marshalValue(e), mv) {
			return true
		}
	}
	return false
}

// goValue decodes a BSON value to the Go form bson.D documents hold.
func goValue(v bsoncore.Value) any {
	var out any
	if err := rawValue(v).Unmarshal(&out); err != nil {
		panic(err) // values come from validated documents
	}
	return out
}

// updateAt rewrites the value at path inside cur (a bson.D or bson.A).
// fn gets the current value and returns the new one, or keep=false to
// remove it. With create, missing documents on the way are created.
func updateAt(cur any, path []string, create bool, fn func(v any, exists bool) (any, bool, error)) (any, error) {
	switch c := cur.(type) {
	case bson.D:
		i := -1
		for j := range c {
			if c[j].Key == path[0] {
				i = j
				break
			}
		}
		if len(path) == 1 {
			var old any
			if i >= 0 {
				old = c[i].Value
			}
			v, keep, err := fn(old, i >= 0)
			switch {
			case err != nil:
				return nil, err
			case !keep && i >= 0:
				return append(c[:i:i], c[i+1:]...), nil
			case !keep:
				return c, nil
			case i >= 0:
				c[i].Value = v
				return c, nil
			}
			return append(c, bson.E{Key: path[0], Value: v}), nil
		}
		var child any
		switch {
		case i >= 0:
			child = c[i].Value
		case create:
			child = bson.D{}
		default:
			return c, nil
		}
		nc, err := updateChild(child, path, create, fn)
		if err != nil {
			return nil, err
		}
		if i >= 0 {
			c[i].Value = nc
			return c, nil
		}
		return append(c, bson.E{Key: path[0], Value: nc}), nil
	case bson.A:
		idx, ok := arrayIndex(path[0])
		if !ok {
			if !create {
				return c, nil
			}
			return nil, errorf(codePathNotViable, "Cannot create field '%s' in element {%s}", path[0], fmt.Sprint(c))
		}
		if idx >= len(c) {
			if !create {
				return c, nil
			}
			for len(c) <= idx {
				c = append(c, nil)
			}
		}
		if len(path) == 1 {
			v, keep, err := fn(c[idx], true)
			if err != nil {
				return nil, err
			}
			if !keep {
				v = nil // $unset of an array element leaves null
			}
			c[idx] = v
			return c, nil
		}
		nc, err := updateChild(c[idx], path, create, fn)
		if err != nil {
			return nil, err
		}
		c[idx] = nc
		return c, nil
	}
	return nil, errorf(codePathNotViable, "Cannot create field '%s' in element %v", path[0], cur)
}

func updateChild(child any, path []string, create bool, fn func(any, bool) (any, bool, error)) (any, error) {
	switch child.(type) {
	case bson.D, bson.A:
		return updateAt(child, path[1:], create, fn)
	}
	if !create {
		return child, nil
	}
	return nil, errorf(codePathNotViable, "Cannot create field '%s' in element {%s: %v}", path[1], path[0], child)
}

func isNumber(v any) bool {
	switch v.(type) {
	case int32, int64, float64:
		return true
	}
	return false
}

func zeroLike(v any) any {
	switch v.(type) {
	case int32:
		return int32(0)
	case int64:
		return int64(0)
	}
	return 0.0
}

// arithmetic adds or multiplies with the server's type promotion: int32
// overflow widens to int64; int64 overflow is an error.
func arithmetic(a, b any, mul bool) (any, bool, error) {
	af, aIsF := a.(float64)
	bf, bIsF := b.(float64)
	if aIsF || bIsF {
		if !aIsF {
			af = float64(toInt64(a))
		}
		if !bIsF {
			bf = float64(toInt64(b))
		}
		if mul {
			return af * bf, true, nil
		}
		return af + bf, true, nil
	}
	x, y := toInt64(a), toInt64(b)
	var r int64
	var overflow bool
	if mul {
		r, overflow = mulInt64(x, y)
	} else {
		r, overflow = addInt64(x, y)
	}
	if overflow {
		return nil, false, errorf(codeBadValue, "Failed to apply update: integer overflow")
	}
	_, a32 := a.(int32)
	_, b32 := b.(int32)
	if a32 && b32 && r >= math.MinInt32 && r <= math.MaxInt32 {
		return int32(r), true, nil
	}
	return r, true, nil
}

func toInt64(v any) int64 {
	switch n := v.(type) {
	case int32:
		return int64(n)
	case int64:
		return n
	}
	return 0
}
