package query

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Update is a compiled update statement's u: a replacement document, a
// pipeline (https://www.mongodb.com/docs/manual/tutorial/update-documents-with-aggregation-pipeline/),
// or update operators (https://www.mongodb.com/docs/manual/reference/operator/update/):
// $set $setOnInsert $unset $inc $mul $min $max $rename $currentDate, and on
// arrays $push (with $each $slice $position $sort) $addToSet (with $each)
// $pull $pullAll $pop, at plain, positional ($), all-elements ($[]) and
// filtered ($[<id>], arrayFilters) paths.
//
// Operators work on a decoded bson.D, which keeps field order, in mongod's
// order (fields by name, numeric names by number: "Update Operators",
// Behavior), and log what they change as mongod's update nodes log it for
// the oplog's $v:2 diff; a pipeline's diff is computed from the documents
// before and after, as mongod computes it. Either is the change event's
// updateDescription (updatedesc.go, diff.go).
type Update struct {
	replacement  bsoncore.Document
	pipeline     []Stage
	ops          []updateOp
	arrayFilters map[string]*Filter
	positional   bool // a path has "$": the statement's query must match an array
}

type updateOp struct {
	op   string
	path []string // may hold "$", "$[]" and "$[<id>]"
	arg  Value
	to   []string // $rename's destination
	push *pushSpec
	set  bson.A  // $addToSet's values, without duplicates
	pull *Filter // $pull's condition
	// pullEqual is $pull's value when it is compared for equality.
	pullEqual *Value
}

// ApplyOptions are what applying an update depends on besides the document.
type ApplyOptions struct {
	// Inserting is true for an upsert's insert: $setOnInsert applies, and
	// field names are checked as an insert's.
	Inserting bool
	// Matched is the array index the statement's query matched (the
	// positional operator's), "" when it matched none.
	Matched string
	// Now is $$NOW and $currentDate's time, one per statement.
	Now time.Time
}

var updateOperators = map[string]bool{
	"$set": true, "$unset": true, "$inc": true, "$setOnInsert": true, "$push": true, "$currentDate": true,
	"$mul": true, "$min": true, "$max": true, "$rename": true, "$addToSet": true, "$pull": true,
	"$pullAll": true, "$pop": true, "$bit": true,
}

// Update operators of MongoDB not implemented here: refused with 115.
var unsupportedUpdateOperators = map[string]bool{}

// CompileUpdate compiles an update statement's u and its arrayFilters
// (missing: none).
func CompileUpdate(u Value, arrayFilters Value) (*Update, error) {
	if u.Type == bsoncore.TypeArray {
		if arrayFilters.Type != 0 {
			return nil, errorf(CodeFailedToParse, "arrayFilters may not be specified for pipeline-style updates")
		}
		return compilePipelineUpdate(u)
	}
	d, ok := u.DocumentOK()
	if !ok {
		return nil, errorf(CodeFailedToParse, "Update argument must be either an object or an array")
	}
	fields := Fields(d)
	if len(fields) == 0 || !strings.HasPrefix(fields[0].Key, "$") {
		if arrayFilters.Type != 0 && len(ArrayValues(arrayFilters)) > 0 {
			return nil, errorf(CodeFailedToParse, "arrayFilters may not be specified for replacement-style updates")
		}
		return &Update{replacement: d}, nil
	}
	up := &Update{}
	var err error
	if up.arrayFilters, err = compileArrayFilters(arrayFilters); err != nil {
		return nil, err
	}
	var paths [][]string // every path written, for conflicts
	used := map[string]bool{}
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
			op, err := up.compileOp(f.Key, a, used)
			if err != nil {
				return nil, err
			}
			written := [][]string{op.path}
			if op.to != nil {
				written = append(written, op.to)
			}
			for _, w := range written {
				for _, p := range paths {
					if conflicts(p, w) {
						return nil, errorf(CodeConflictingUpdateOperators, "Updating the path '%s' would create a conflict at '%s'", strings.Join(w, "."), strings.Join(commonPrefix(p, w), "."))
					}
				}
				paths = append(paths, w)
			}
			up.ops = append(up.ops, op)
		}
	}
	for id := range up.arrayFilters {
		if !used[id] {
			return nil, errorf(CodeFailedToParse, "The array filter for identifier '%s' was not used in the update %s", id, d)
		}
	}
	return up, nil
}

// conflicts reports whether two written paths overlap: one is the other or
// a prefix of it (mongod's update tree cannot hold both).
func conflicts(a, b []string) bool {
	n := min(len(a), len(b))
	return slices.Equal(a[:n], b[:n])
}

func commonPrefix(a, b []string) []string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return a[:n]
}

// compileOp reads one field of an operator; used collects the array
// filters its path names.
func (up *Update) compileOp(op string, a Field, used map[string]bool) (updateOp, error) {
	path, err := up.updatePath(a.Key, op == "$rename", used)
	if err != nil {
		return updateOp{}, err
	}
	o := updateOp{op: op, path: path, arg: a.Val}
	switch op {
	case "$push":
		o.push, err = compilePush(a.Val)
	case "$addToSet":
		o.set, err = compileAddToSet(a.Val)
	case "$pull":
		err = o.compilePull(a.Val)
	case "$pullAll":
		if a.Val.Type != bsoncore.TypeArray {
			err = errorf(CodeBadValue, "$pullAll requires an array argument but was given a %s", TypeName(a.Val.Type))
		}
	case "$pop":
		if n, ok := wholeNumber(a.Val); !ok || (n != 1 && n != -1) {
			err = errorf(CodeFailedToParse, "$pop expects 1 or -1, found: %s", a.Val)
		}
	case "$inc", "$mul":
		err = checkArithmeticArg(op, a)
	case "$bit":
		err = checkBitArg(a.Val)
	case "$currentDate":
		err = checkCurrentDate(a.Key, a.Val)
	case "$rename":
		to, ok := a.Val.StringValueOK()
		switch {
		case !ok:
			return o, errorf(CodeBadValue, "The 'to' field for $rename must be a string: %s: %s", a.Key, a.Val)
		case to == a.Key:
			return o, errorf(CodeBadValue, "The source and target field for $rename must differ: %s: %q", a.Key, to)
		case strings.HasPrefix(to, a.Key+".") || strings.HasPrefix(a.Key, to+"."):
			return o, errorf(CodeBadValue, "The source and target field for $rename must not be on the same path: %s: %q", a.Key, to)
		}
		if o.to, err = up.updatePath(to, true, used); err != nil {
			return o, err
		}
	}
	return o, err
}

// updatePath splits and checks an update path: no empty part, at most one
// positional "$" and not first, array filter identifiers that exist; a
// $rename's paths may not be dynamic.
func (up *Update) updatePath(s string, rename bool, used map[string]bool) ([]string, error) {
	if s == "" {
		return nil, errorf(56, "An empty update path is not valid.")
	}
	path := SplitPath(s)
	positional := 0
	for i, p := range path {
		switch {
		case p == "":
			return nil, errorf(56, "The update path '%s' contains an empty field name, which is not allowed.", s)
		case p == "$" || strings.HasPrefix(p, "$["):
			if rename {
				return nil, errorf(CodeBadValue, "The source field for $rename may not be dynamic: %s", s)
			}
			if i == 0 {
				return nil, errorf(CodeBadValue, "Cannot have array filter identifier (i.e. '$[<id>]') element in the first position in path '%s'", s)
			}
		}
		switch {
		case p == "$":
			positional++
			up.positional = true
			if positional > 1 {
				return nil, errorf(CodeBadValue, "Too many positional (i.e. '$') elements found in path '%s'", s)
			}
		case strings.HasPrefix(p, "$[") && strings.HasSuffix(p, "]"):
			id := p[2 : len(p)-1]
			if id == "" {
				continue
			}
			if up.arrayFilters[id] == nil {
				return nil, errorf(CodeBadValue, "No array filter found for identifier '%s' in path '%s'", id, s)
			}
			used[id] = true
		}
	}
	return path, nil
}

// arrayID tells whether a path part is "$[]" (id "") or "$[<id>]".
func arrayID(p string) (string, bool) {
	if strings.HasPrefix(p, "$[") && strings.HasSuffix(p, "]") {
		return p[2 : len(p)-1], true
	}
	return "", false
}

func checkArithmeticArg(op string, a Field) error {
	switch a.Val.Type {
	case bsoncore.TypeInt32, bsoncore.TypeInt64, bsoncore.TypeDouble:
		return nil
	case bsoncore.TypeDecimal128:
		return Unsupported("Decimal128 operands of %s", op)
	}
	verb := map[string]string{"$inc": "increment", "$mul": "multiply"}[op]
	return errorf(CodeTypeMismatch, "Cannot %s with non-numeric argument: {%s: %s}", verb, a.Key, a.Val)
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

// IsReplacement reports whether the update replaces the document.
func (u *Update) IsReplacement() bool { return u.replacement != nil }

// Positional reports whether the update needs the array index the query
// matched.
func (u *Update) Positional() bool { return u.positional }

// Apply returns the updated document and the description of the change:
// nil for a replacement, and for a pipeline whose change mongod logs as a
// replacement (its diff is no smaller than the document).
func (u *Update) Apply(old bsoncore.Document, o ApplyOptions) (bsoncore.Document, *Description, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	var out bsoncore.Document
	var desc *Description
	switch {
	case u.replacement != nil:
		out = WithID(u.replacement, old.Lookup("_id"))
		if !o.Inserting {
			if err := checkTopLevelNames(out); err != nil {
				return nil, nil, err
			}
		}
	case u.pipeline != nil:
		var err error
		if out, desc, err = u.applyPipeline(old, o.Now); err != nil {
			return nil, nil, err
		}
	default:
		var err error
		if out, desc, err = u.applyOperators(old, o); err != nil {
			return nil, nil, err
		}
	}
	if oldID, err := old.LookupErr("_id"); err == nil {
		if newID, err := out.LookupErr("_id"); err != nil || !bytes.Equal(oldID.Data, newID.Data) || oldID.Type != newID.Type {
			if u.pipeline != nil {
				return nil, nil, errorf(CodeImmutableField, "After applying the update, the (immutable) field '_id' was found to have been altered to _id: %s", newID)
			}
			return nil, nil, errorf(CodeImmutableField, "Performing an update on the path '_id' would modify the immutable field '_id'")
		}
	}
	if len(out) > 16<<20 {
		return nil, nil, errorf(17419, "Resulting document after update is larger than %d", 16<<20)
	}
	return out, desc, nil
}

// checkTopLevelNames refuses a $-prefixed top-level field in a document an
// update writes (not one it inserts), as mongod's storage validation does
// (storage_validation.cpp) and "Dollar-Prefixed Field Names" documents;
// those fields are written with a pipeline ($replaceWith, $setField).
func checkTopLevelNames(doc bsoncore.Document) error {
	for _, f := range Fields(doc) {
		if err := dollarPrefixed(f.Key); err != nil {
			return err
		}
	}
	return nil
}

// DollarPrefixedFieldName (52).
const codeDollarPrefixedFieldName = 52

func dollarPrefixed(name string) error {
	if strings.HasPrefix(name, "$") {
		return errorf(codeDollarPrefixedFieldName, "The dollar ($) prefixed field '%s' in '%s' is not allowed in the context of an update's replacement document. Consider using an aggregation pipeline with $replaceWith.", name, name)
	}
	return nil
}

func (u *Update) applyOperators(old bsoncore.Document, o ApplyOptions) (bsoncore.Document, *Description, error) {
	ops := u.ops
	if u.positional {
		var err error
		if ops, err = u.resolvePositional(o); err != nil {
			return nil, nil, err
		}
	}
	var d bson.D
	if err := bson.Unmarshal(old, &d); err != nil {
		return nil, nil, errorf(1, "cannot decode stored document: %v", err)
	}
	a := applier{old: old, opts: o, filters: u.arrayFilters}
	cur, err := a.run(d, ops)
	if err != nil {
		return nil, nil, err
	}
	out, err := bson.Marshal(cur)
	if err != nil {
		return nil, nil, errorf(CodeBadValue, "cannot encode updated document: %v", err)
	}
	return out, a.log.describe(out), nil
}

// resolvePositional puts the matched array index in place of "$", then
// checks the paths for conflicts again (a.$ and a.0 may now be one).
func (u *Update) resolvePositional(o ApplyOptions) ([]updateOp, error) {
	ops := make([]updateOp, len(u.ops))
	var paths [][]string
	for i, op := range u.ops {
		if slices.Contains(op.path, "$") {
			if o.Matched == "" {
				return nil, errorf(CodeBadValue, "The positional operator did not find the match needed from the query.")
			}
			op.path = slices.Clone(op.path)
			op.path[slices.Index(op.path, "$")] = o.Matched
		}
		for _, p := range paths {
			if conflicts(p, op.path) {
				return nil, errorf(CodeConflictingUpdateOperators, "Update created a conflict at '%s'", strings.Join(commonPrefix(p, op.path), "."))
			}
		}
		paths = append(paths, op.path)
		ops[i] = op
	}
	return ops, nil
}

// comparePaths orders paths as mongod's update tree applies them: part by
// part, two numeric names by number, other names as strings.
func comparePaths(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, xn := ArrayIndex(a[i])
		y, yn := ArrayIndex(b[i])
		if xn && yn {
			if c := cmp.Compare(x, y); c != 0 {
				return c
			}
			continue
		}
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// sortKey is where an operator sits in mongod's update tree: $rename at its
// destination.
func (op updateOp) sortKey() []string {
	if op.to != nil {
		return op.to
	}
	return op.path
}

// applier applies operators to one document, logging their changes.
type applier struct {
	old     bsoncore.Document
	opts    ApplyOptions
	filters map[string]*Filter
	log     changeLog
}

// run applies ops (absolute paths, "$[..]" parts still to expand) to cur in
// the tree's order; an op whose path holds "$[..]" goes with the others
// under the same array, as one array node of mongod's.
func (a *applier) run(cur any, ops []updateOp) (any, error) {
	ops = slices.Clone(ops)
	slices.SortStableFunc(ops, func(x, y updateOp) int { return comparePaths(x.sortKey(), y.sortKey()) })
	for i := 0; i < len(ops); {
		k := firstArrayID(ops[i].path)
		if k < 0 {
			var err error
			if cur, err = a.apply(cur, ops[i]); err != nil {
				return nil, err
			}
			i++
			continue
		}
		j := i + 1
		for j < len(ops) && firstArrayID(ops[j].path) == k && slices.Equal(ops[j].path[:k], ops[i].path[:k]) {
			j++
		}
		var err error
		if cur, err = a.arrayNode(cur, ops[i].path[:k], ops[i:j]); err != nil {
			return nil, err
		}
		i = j
	}
	return cur, nil
}

func firstArrayID(path []string) int {
	for i, p := range path {
		if _, ok := arrayID(p); ok {
			return i
		}
	}
	return -1
}

// arrayNode applies the ops whose path continues with "$[..]" after prefix
// to each element of the array there that their filter selects, as mongod's
// UpdateArrayNode does (update_array_node.cpp), and logs as it does: when at
// most one element is selected, each change where it is; otherwise the
// whole array if several elements changed, the element if one did.
func (a *applier) arrayNode(cur any, prefix []string, ops []updateOp) (any, error) {
	shown := strings.Join(prefix, ".")
	v, ok := lookupD(cur, prefix)
	if !ok {
		return nil, errorf(CodeBadValue, "The path '%s' must exist in the document in order to apply array updates.", shown)
	}
	arr, isArray := v.(bson.A)
	if !isArray {
		return nil, errorf(CodeBadValue, "Cannot apply array updates to non-array element %s: %s", prefix[len(prefix)-1], MarshalValue(v))
	}
	k := len(prefix)
	selected := make([][]updateOp, len(arr))
	n := 0
	for i, elem := range arr {
		for _, op := range ops {
			id, _ := arrayID(op.path[k])
			if id == "" || a.filters[id].matchesElement(id, elem) {
				op.path = append(append(slices.Clone(prefix), ArrayKey(i)), op.path[k+1:]...)
				selected[i] = append(selected[i], op)
			}
		}
		if selected[i] != nil {
			n++
		}
	}
	parts := a.partsOf(cur, prefix)
	outer := a.log
	modified, last := 0, -1
	var logs changeLog
	for i, elemOps := range selected {
		if elemOps == nil {
			continue
		}
		for x := range elemOps {
			for y := range x {
				if conflicts(elemOps[x].path, elemOps[y].path) {
					return nil, errorf(CodeConflictingUpdateOperators, "Update created a conflict at '%s'", strings.Join(commonPrefix(elemOps[x].path, elemOps[y].path), "."))
				}
			}
		}
		a.log = nil
		var err error
		if cur, err = a.run(cur, elemOps); err != nil {
			return nil, err
		}
		if len(a.log) > 0 {
			modified++
			last = i
			logs = append(logs, a.log...)
		}
	}
	a.log = outer
	switch {
	case n <= 1:
		a.log = append(a.log, logs...)
	case modified > 1:
		a.log.add(parts, changeUpdate)
	case modified == 1:
		a.log.add(append(parts, pathPart{name: ArrayKey(last), index: true}), changeUpdate)
	}
	return cur, nil
}

// lookupD returns the value at path in a decoded document, through
// documents and array indexes.
func lookupD(cur any, path []string) (any, bool) {
	for _, p := range path {
		switch c := cur.(type) {
		case bson.D:
			var found bool
			if cur, found = fieldOf(c, p); !found {
				return nil, false
			}
		case bson.A:
			i, ok := ArrayIndex(p)
			if !ok || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// fieldOf is the value of field key of d.
func fieldOf(d bson.D, key string) (any, bool) {
	for _, e := range d {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

// partsOf is path with each part marked as an array index where its
// container is an array.
func (a *applier) partsOf(cur any, path []string) []pathPart {
	parts := make([]pathPart, len(path))
	for i, p := range path {
		_, isArray := cur.(bson.A)
		parts[i] = pathPart{name: p, index: isArray}
		cur, _ = lookupD(cur, path[i:i+1])
	}
	return parts
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
