package query

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Update is a compiled update: a replacement document, or update operators
// (https://www.mongodb.com/docs/manual/reference/operator/update/) among
// $set, $setOnInsert, $unset, $inc, $currentDate (the collector's leases are
// stamped with the server's clock) and $push (with $each, $slice, $position,
// $sort). Operators work on a decoded bson.D, which keeps field
// order, and log what they change as mongod's update executor logs it for
// the oplog: that log is the change event's updateDescription.
type Update struct {
	replacement bsoncore.Document
	ops         []updateOp
}

type updateOp struct {
	op   string
	path []string
	arg  Value
	push *pushSpec
}

var updateOperators = map[string]bool{"$set": true, "$unset": true, "$inc": true, "$setOnInsert": true, "$push": true, "$currentDate": true}

// Update operators of MongoDB not implemented here: refused with 115.
var unsupportedUpdateOperators = map[string]bool{
	"$mul": true, "$min": true, "$max": true, "$rename": true,
	"$addToSet": true, "$pull": true, "$pullAll": true, "$pop": true, "$bit": true,
}

// CompileUpdate compiles an update statement's u.
func CompileUpdate(u Value) (*Update, error) {
	if u.Type == bsoncore.TypeArray {
		return nil, Unsupported("pipeline-style updates")
	}
	d, ok := u.DocumentOK()
	if !ok {
		return nil, errorf(CodeFailedToParse, "Update argument must be either an object or an array")
	}
	fields := Fields(d)
	if len(fields) == 0 || !strings.HasPrefix(fields[0].Key, "$") {
		for _, f := range fields {
			if strings.HasPrefix(f.Key, "$") {
				return nil, errorf(52, "The dollar ($) prefixed field '%s' in '%s' is not allowed in a replacement document", f.Key, f.Key)
			}
		}
		return &Update{replacement: d}, nil
	}
	up := &Update{}
	var paths []string
	for _, f := range fields {
		switch {
		case unsupportedUpdateOperators[f.Key]:
			return nil, Unsupported("the update operator %s", f.Key)
		case !updateOperators[f.Key]:
			return nil, errorf(CodeFailedToParse, "Unknown modifier: %s. Expected a valid update modifier or pipeline-style update specified as an array", f.Key)
		}
		args, ok := f.Val.DocumentOK()
		if !ok {
			return nil, errorf(CodeFailedToParse, "Modifiers operate on fields but we found type %s instead. For example: {$mod: {<field>: ...}} not {%s: %s}", TypeName(f.Val.Type), f.Key, f.Val)
		}
		for _, a := range Fields(args) {
			if strings.Contains(a.Key, "$") {
				return nil, Unsupported("positional and array-filter update paths (%s)", a.Key)
			}
			for _, p := range paths {
				if p == a.Key || strings.HasPrefix(p, a.Key+".") || strings.HasPrefix(a.Key, p+".") {
					return nil, errorf(CodeConflictingUpdateOperators, "Updating the path '%s' would create a conflict at '%s'", a.Key, p)
				}
			}
			paths = append(paths, a.Key)
			op := updateOp{op: f.Key, path: SplitPath(a.Key), arg: a.Val}
			switch f.Key {
			case "$push":
				var err error
				if op.push, err = compilePush(a.Val); err != nil {
					return nil, err
				}
			case "$currentDate":
				if err := checkCurrentDate(a.Key, a.Val); err != nil {
					return nil, err
				}
			}
			up.ops = append(up.ops, op)
		}
	}
	return up, nil
}

// IsReplacement reports whether the update replaces the document.
func (u *Update) IsReplacement() bool { return u.replacement != nil }

// Apply returns the updated document and, for operators, the description
// of the change. inserting is true for an upsert's insert, the only time
// $setOnInsert applies.
func (u *Update) Apply(old bsoncore.Document, inserting bool) (bsoncore.Document, *Description, error) {
	var out bsoncore.Document
	var log changeLog
	if u.replacement != nil {
		out = WithID(u.replacement, old.Lookup("_id"))
	} else {
		var d bson.D
		if err := bson.Unmarshal(old, &d); err != nil {
			return nil, nil, errorf(1, "cannot decode stored document: %v", err)
		}
		var cur any = d
		for _, op := range u.ops {
			var err error
			if cur, err = op.apply(cur, old, inserting, &log); err != nil {
				return nil, nil, err
			}
		}
		var err error
		if out, err = bson.Marshal(cur); err != nil {
			return nil, nil, errorf(CodeBadValue, "cannot encode updated document: %v", err)
		}
	}
	if oldID, err := old.LookupErr("_id"); err == nil {
		if newID, err := out.LookupErr("_id"); err != nil || !bytes.Equal(oldID.Data, newID.Data) || oldID.Type != newID.Type {
			return nil, nil, errorf(CodeImmutableField, "Performing an update on the path '_id' would modify the immutable field '_id'")
		}
	}
	if len(out) > 16<<20 {
		return nil, nil, errorf(17419, "Resulting document after update is larger than %d", 16<<20)
	}
	if u.replacement != nil {
		return out, nil, nil
	}
	return out, log.describe(out), nil
}

// checkCurrentDate accepts $currentDate's arguments as mongod does: true, or
// {$type: "date"|"timestamp"}.
func checkCurrentDate(field string, v Value) error {
	if v.Type == bsoncore.TypeBoolean {
		return nil
	}
	if d, ok := v.DocumentOK(); ok {
		if t, _ := d.Lookup("$type").StringValueOK(); t == "date" || t == "timestamp" {
			return nil
		}
	}
	return errorf(2, "%s is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({$type: 'timestamp/date'}).", field)
}

// goValue decodes a BSON value to the Go form bson.D documents hold.
func goValue(v Value) any {
	var out any
	if err := RawValue(v).Unmarshal(&out); err != nil {
		panic(err) // values come from validated documents
	}
	return out
}

// sameValue reports whether two decoded values encode identically: a write
// of the same value is a no-op, as for mongod.
func sameValue(a, b any) bool {
	va, vb := MarshalValue(a), MarshalValue(b)
	return va.Type == vb.Type && bytes.Equal(va.Data, vb.Data)
}

func (op updateOp) apply(cur any, old bsoncore.Document, inserting bool, log *changeLog) (any, error) {
	arg := goValue(op.arg)
	switch op.op {
	case "$setOnInsert":
		if !inserting {
			return cur, nil
		}
		fallthrough
	case "$set":
		return log.set(cur, op.path, func(any, bool) (any, error) { return arg, nil })
	case "$unset":
		return log.unset(cur, op.path)
	case "$inc":
		return log.set(cur, op.path, func(v any, exists bool) (any, error) {
			if !isNumber(arg) {
				return nil, errorf(CodeTypeMismatch, "Cannot increment with non-numeric argument: {%s: %v}", strings.Join(op.path, "."), arg)
			}
			if !exists {
				return arg, nil
			}
			if !isNumber(v) {
				return nil, errorf(CodeTypeMismatch, "Cannot apply $inc to a value of non-numeric type. {_id: %s} has the field '%s' of non-numeric type %T", old.Lookup("_id"), strings.Join(op.path, "."), v)
			}
			return add(v, arg)
		})
	case "$push":
		return op.applyPush(cur, old, log)
	case "$currentDate":
		now := time.Now()
		var v any = bson.NewDateTimeFromTime(now)
		if d, ok := op.arg.DocumentOK(); ok && d.Lookup("$type").StringValue() == "timestamp" {
			v = bson.Timestamp{T: uint32(now.Unix()), I: 1}
		}
		return log.set(cur, op.path, func(any, bool) (any, error) { return v, nil })
	}
	return nil, errorf(CodeFailedToParse, "Unknown modifier: %s", op.op)
}

// updateAt rewrites the value at path inside cur (a bson.D or bson.A). fn
// gets the current value and returns the new one, or keep=false to remove
// it; with create, missing documents on the way are created. The walk says
// where the path went: its parts, whether the target existed, and the
// depth at which creation started.
func updateAt(cur any, path []string, create bool, fn func(v any, exists bool) (any, bool, error)) (any, walk, error) {
	w := walk{createdAt: -1}
	out, err := w.step(cur, path, 0, create, fn)
	return out, w, err
}

type walk struct {
	parts     []pathPart
	existed   bool
	createdAt int // index in parts of the first component created; -1 if none
}

func (w *walk) step(cur any, path []string, depth int, create bool, fn func(any, bool) (any, bool, error)) (any, error) {
	switch c := cur.(type) {
	case bson.D:
		w.parts = append(w.parts, pathPart{name: path[0]})
		i := -1
		for j := range c {
			if c[j].Key == path[0] {
				i = j
				break
			}
		}
		if i < 0 && !create {
			return c, nil
		}
		if i < 0 && w.createdAt < 0 {
			w.createdAt = depth
		}
		var child any
		if i >= 0 {
			child = c[i].Value
		} else if len(path) > 1 {
			child = bson.D{}
		}
		nc, keep, err := w.child(child, i >= 0, path, depth, create, fn)
		switch {
		case err != nil:
			return nil, err
		case !keep && i >= 0:
			return append(c[:i:i], c[i+1:]...), nil
		case !keep:
			return c, nil
		case i >= 0:
			c[i].Value = nc
			return c, nil
		}
		return append(c, bson.E{Key: path[0], Value: nc}), nil
	case bson.A:
		idx, ok := ArrayIndex(path[0])
		if !ok {
			if !create {
				return c, nil
			}
			return nil, errorf(CodePathNotViable, "Cannot create field '%s' in element {%s}", path[0], fmt.Sprint(c))
		}
		w.parts = append(w.parts, pathPart{name: path[0], index: true})
		existed := idx < len(c)
		if !existed {
			if !create {
				return c, nil
			}
			if w.createdAt < 0 {
				w.createdAt = depth
			}
			for len(c) <= idx {
				c = append(c, nil) // mongod pads with nulls
			}
			if len(path) > 1 {
				c[idx] = bson.D{}
			}
		}
		nc, keep, err := w.child(c[idx], existed, path, depth, create, fn)
		if err != nil {
			return nil, err
		}
		if !keep {
			nc = nil // $unset of an array element leaves null
		}
		c[idx] = nc
		return c, nil
	}
	return nil, errorf(CodePathNotViable, "Cannot create field '%s' in element %v", path[0], cur)
}

// child applies fn at the end of the path, or goes on into child.
func (w *walk) child(child any, exists bool, path []string, depth int, create bool, fn func(any, bool) (any, bool, error)) (any, bool, error) {
	if len(path) == 1 {
		w.existed = exists
		return fn(child, exists)
	}
	switch child.(type) {
	case bson.D, bson.A:
		nc, err := w.step(child, path[1:], depth+1, create, fn)
		return nc, true, err
	}
	if !create {
		return child, true, nil
	}
	return nil, false, errorf(CodePathNotViable, "Cannot create field '%s' in element {%s: %v}", path[1], path[0], child)
}

// UpsertBase is the document an update with upsert:true starts from when
// nothing matched: the filter's equality fields, or for a replacement its
// _id (https://www.mongodb.com/docs/manual/reference/method/db.collection.update/#upsert-behavior).
func UpsertBase(filter bsoncore.Document, replacement bool) bsoncore.Document {
	base := BuildDoc(nil)
	if replacement {
		if id, err := filter.LookupErr("_id"); err == nil && id.Type != bsoncore.TypeEmbeddedDocument {
			base = BuildDoc([]Field{{"_id", id}})
		}
		return base
	}
	return equalityFields(base, filter)
}

func equalityFields(base, filter bsoncore.Document) bsoncore.Document {
	for _, f := range Fields(filter) {
		switch {
		case f.Key == "$and":
			for _, sub := range ArrayValues(f.Val) {
				base = equalityFields(base, sub.Document())
			}
		case strings.HasPrefix(f.Key, "$"):
		case f.Val.Type == bsoncore.TypeEmbeddedDocument && isOperatorDoc(f.Val.Document()):
			if eq, err := f.Val.Document().LookupErr("$eq"); err == nil {
				base = setPath(base, SplitPath(f.Key), eq)
			}
		case f.Val.Type == bsoncore.TypeRegex:
		default:
			base = setPath(base, SplitPath(f.Key), f.Val)
		}
	}
	return base
}

// setPath returns doc with the dotted path set to v, creating embedded
// documents on the way.
func setPath(doc bsoncore.Document, path []string, v Value) bsoncore.Document {
	fields := Fields(doc)
	at := len(fields)
	for i, f := range fields {
		if f.Key == path[0] {
			at = i
		}
	}
	if at == len(fields) {
		fields = append(fields, Field{Key: path[0]})
	}
	if len(path) > 1 {
		sub, ok := fields[at].Val.DocumentOK()
		if !ok {
			sub = BuildDoc(nil)
		}
		v = DocValue(setPath(sub, path[1:], v))
	}
	fields[at].Val = v
	return BuildDoc(fields)
}

func isNumber(v any) bool {
	switch v.(type) {
	case int32, int64, float64:
		return true
	}
	return false
}

// add adds with the server's type promotion: int32 overflow widens to
// int64; int64 overflow is an error.
func add(a, b any) (any, error) {
	af, aIsF := a.(float64)
	bf, bIsF := b.(float64)
	if aIsF || bIsF {
		if !aIsF {
			af = float64(MarshalValue(a).AsInt64())
		}
		if !bIsF {
			bf = float64(MarshalValue(b).AsInt64())
		}
		return af + bf, nil
	}
	r, overflow := addInt64(MarshalValue(a).AsInt64(), MarshalValue(b).AsInt64())
	if overflow {
		return nil, errorf(CodeBadValue, "Failed to apply $inc operations to current value: integer overflow")
	}
	_, a32 := a.(int32)
	_, b32 := b.(int32)
	if a32 && b32 && r == int64(int32(r)) {
		return int32(r), nil
	}
	return r, nil
}
