package query

import (
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// pushSpec is a compiled $push argument: the values, and the $each
// modifiers $position, $sort and $slice
// (https://www.mongodb.com/docs/manual/reference/operator/update/push/).
type pushSpec struct {
	values   bson.A
	position *int64
	slice    *int64
	sortAll  int       // $sort: 1 or -1 on whole elements; 0: see sortKeys
	sortKeys []SortKey // $sort: {field: 1 | -1}
	sorted   bool
}

func compilePush(v Value) (*pushSpec, error) {
	d, ok := v.DocumentOK()
	if !ok || d.Lookup("$each").Type == 0 {
		return &pushSpec{values: bson.A{goValue(v)}}, nil // the value itself
	}
	p := &pushSpec{}
	for _, f := range Fields(d) {
		switch f.Key {
		case "$each":
			if f.Val.Type != bsoncore.TypeArray {
				return nil, errorf(CodeBadValue, "The argument to $each in $push must be an array but it was of type: %s", TypeName(f.Val.Type))
			}
			p.values, _ = goValue(f.Val).(bson.A)
		case "$position", "$slice":
			n, err := AsInt(f.Key, f.Val)
			if err != nil {
				return nil, errorf(CodeBadValue, "The value for %s must be an integer value, not of type: %s", f.Key, TypeName(f.Val.Type))
			}
			if f.Key == "$position" {
				p.position = &n
			} else {
				p.slice = &n
			}
		case "$sort":
			if err := p.compileSort(f.Val); err != nil {
				return nil, err
			}
		default:
			return nil, errorf(CodeBadValue, "Unrecognized clause in $push: %s", f.Key)
		}
	}
	return p, nil
}

func (p *pushSpec) compileSort(v Value) error {
	p.sorted = true
	invalid := errorf(CodeBadValue, "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields")
	if v.IsNumber() {
		if f := v.AsFloat64(); f == 1 || f == -1 {
			p.sortAll = int(f)
			return nil
		}
		return invalid
	}
	d, ok := v.DocumentOK()
	if !ok || len(Fields(d)) == 0 {
		return invalid
	}
	for _, f := range Fields(d) {
		if strings.HasPrefix(f.Key, "$") || strings.HasSuffix(f.Key, ".") || strings.HasPrefix(f.Key, ".") {
			return invalid
		}
	}
	keys, err := CompileSort(d)
	if err != nil {
		return invalid
	}
	p.sortKeys = keys
	return nil
}

// pushResult is how a $push changed the array, which decides how it is
// logged: appended elements each at its index, or the whole array.
type pushResult int

const (
	pushNoop pushResult = iota
	pushAppend
	pushWhole
)

// apply pushes into arr as mongod's PushNode does.
func (p *pushSpec) apply(arr bson.A) (bson.A, pushResult) {
	if len(p.values) == 0 && !p.sorted && p.slice == nil {
		return arr, pushNoop
	}
	res := pushWhole
	switch pos := p.position; {
	case len(p.values) == 0:
		res = pushNoop
	case len(arr) > 0 && (pos == nil || *pos > int64(len(arr))):
		res = pushAppend
		arr = append(arr, p.values...)
	case pos == nil || *pos >= int64(len(arr)):
		arr = append(arr, p.values...)
	default:
		at := *pos
		if at < 0 {
			at = max(int64(len(arr))+at, 0)
		}
		arr = slices.Insert(arr, int(at), p.values...)
	}
	if p.sorted {
		res = pushWhole
		p.sort(arr)
	}
	if s := p.slice; s != nil {
		n := *s
		if n < 0 {
			n = -n
		}
		if int64(len(arr)) > n {
			res = pushWhole
			if *s >= 0 {
				arr = arr[:n]
			} else {
				arr = arr[int64(len(arr))-n:]
			}
		}
	}
	if res == pushNoop && p.sorted {
		res = pushWhole
	}
	return arr, res
}

func (p *pushSpec) sort(arr bson.A) {
	if p.sortAll != 0 {
		slices.SortStableFunc(arr, func(a, b any) int { return p.sortAll * Compare(MarshalValue(a), MarshalValue(b)) })
		return
	}
	docs := make([]bsoncore.Document, len(arr))
	for i, e := range arr {
		if v := MarshalValue(e); v.Type == bsoncore.TypeEmbeddedDocument {
			docs[i] = v.Document()
		} else {
			docs[i] = BuildDoc(nil) // sorts as a document without the fields
		}
	}
	idx := make([]int, len(arr))
	for i := range idx {
		idx[i] = i
	}
	SortBy(idx, func(i int) bsoncore.Document { return docs[i] }, p.sortKeys)
	sorted := make(bson.A, len(arr))
	for i, j := range idx {
		sorted[i] = arr[j]
	}
	copy(arr, sorted)
}

func (op updateOp) applyPush(cur any, old bsoncore.Document, log *changeLog) (any, error) {
	var res pushResult
	var size int
	out, w, err := updateAt(cur, op.path, true, func(v any, exists bool) (any, bool, error) {
		arr, ok := v.(bson.A)
		if exists && !ok {
			return nil, false, errorf(CodeBadValue, "The field '%s' must be an array but is of type %s in document {_id: %s}",
				strings.Join(op.path, "."), TypeName(MarshalValue(v).Type), old.Lookup("_id"))
		}
		arr, res = op.push.apply(slices.Clone(arr))
		if arr == nil {
			arr = bson.A{}
		}
		size = len(arr)
		return arr, true, nil
	})
	switch {
	case err != nil:
		return nil, err
	case w.createdAt >= 0:
		log.add(w.parts[:w.createdAt+1], changeCreate)
	case res == pushAppend:
		for i := size - len(op.push.values); i < size; i++ {
			log.add(append(w.parts, pathPart{name: ArrayKey(i), index: true}), changeCreate)
		}
	case res == pushWhole:
		log.add(w.parts, changeUpdate)
	}
	return out, nil
}
