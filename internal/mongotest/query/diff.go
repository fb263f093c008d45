package query

import (
	"bytes"
	"slices"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// A pipeline-style update is logged as mongod logs it
// (src/mongo/db/update/pipeline_executor.cpp, document_diff_calculator.cpp):
// the $v:2 diff between the document before and after, or, when that diff
// would be no smaller than the new document, the new document itself: a
// replacement oplog entry, which change streams report as a "replace"
// event (https://www.mongodb.com/docs/manual/reference/change-events/replace/).
//
// The diff walks both documents in step. A field equal in both is skipped;
// one with the same name and a new value is an update, or a sub-diff when
// both values are documents or both arrays; a field of the old document
// whose name is not next in the new one is deleted (unless it comes back
// later, then it is inserted there: a moved field is an insert); the new
// document's remaining fields are inserts. Arrays compare element by
// element: a changed element is an update (or a sub-diff), elements beyond
// the old end are updates, and a shorter new array records its new size,
// which change streams report in truncatedArrays. A level whose diff
// outgrows its new value, by mongod's running estimate of the diff's size,
// is replaced by an update of the whole value.

// deltaMetadataSize is what the oplog entry adds to a diff ($v: 2 and the
// diff field's name), counted against it (update_oplog_entry_serialization.h,
// kSizeOfDeltaOplogEntryMetadata).
const deltaMetadataSize = 15

// Size estimates of mongod's diff tree (document_diff_serialization.h):
// an empty document diff, an empty array diff ({a: true}), a section's
// wrapper (type byte, one-letter name, its terminator and an empty
// document), an array's new size (l: <int32>).
const (
	emptyDocDiffSize   = 5
	emptyArrayDiffSize = 9
	sectionWrapperSize = 8
	resizeEntrySize    = 1 + 4 + 2
)

// pipelineDiff is the diff of a pipeline-style update, or nil when mongod
// would log the new document instead.
func pipelineDiff(pre, post bsoncore.Document) *diffNode {
	root := docDiff(pre, post, deltaMetadataSize)
	if root == nil || len(serializeDiff(root, DocValue(post))) >= len(post) {
		return nil
	}
	return root
}

func docDiff(pre, post bsoncore.Document, padding int) *diffNode {
	n := newDiffNode(false)
	n.size = padding + emptyDocDiffSize
	preE, _ := pre.Elements()
	postE, _ := post.Elements()
	deleted := map[string]bool{}
	i, j := 0, 0
	for i < len(preE) && j < len(postE) {
		if len(post) < n.size {
			return nil
		}
		a, b := preE[i], postE[j]
		switch {
		case bytes.Equal(a, b):
			i, j = i+1, j+1
		case a.Key() == b.Key():
			n.addChange(a.Key(), a.Value(), b.Value())
			i, j = i+1, j+1
		default:
			deleted[a.Key()] = true
			i++
		}
	}
	for ; i < len(preE); i++ {
		n.addDelete(preE[i].Key())
	}
	for ; j < len(postE); j++ {
		n.addInsert(postE[j].Key(), postE[j].Value())
		delete(deleted, postE[j].Key())
	}
	rest := make([]string, 0, len(deleted))
	for k := range deleted {
		rest = append(rest, k)
	}
	slices.Sort(rest) // mongod keeps them in an ordered set
	for _, k := range rest {
		n.addDelete(k)
	}
	if len(post) > n.size {
		return n
	}
	return nil
}

func arrayDiff(pre, post Value) *diffNode {
	n := newDiffNode(true)
	n.size = emptyArrayDiffSize
	preV, postV := ArrayValues(pre), ArrayValues(post)
	k := 0
	for ; k < len(preV) && k < len(postV); k++ {
		if len(post.Data) < n.size {
			return nil
		}
		a, b := preV[k], postV[k]
		if a.Type != b.Type || !bytes.Equal(a.Data, b.Data) {
			n.addChange(ArrayKey(k), a, b)
		}
	}
	for ; k < len(postV); k++ {
		n.addUpdate(ArrayKey(k), postV[k])
	}
	if len(preV) > len(postV) {
		n.resize = len(postV)
		n.size += resizeEntrySize
	}
	if len(post.Data) > n.size {
		return n
	}
	return nil
}

// addChange records a changed value: a sub-diff when both are documents or
// both arrays and the sub-diff is worth it, else an update.
func (n *diffNode) addChange(name string, a, b Value) {
	var sub *diffNode
	switch {
	case a.Type == TypeDocument && b.Type == TypeDocument:
		sub = docDiff(a.Document(), b.Document(), 0)
	case a.Type == TypeArray && b.Type == TypeArray:
		sub = arrayDiff(a, b)
	default:
		n.addUpdate(name, b)
		return
	}
	if sub == nil {
		n.addUpdate(name, b)
		return
	}
	n.size += n.entrySize(name) + sub.size
	if !n.array {
		n.size++ // the sub-diff's "s" prefix
	}
	n.sub[name] = sub
	n.subs = append(n.subs, name)
}

// entrySize is a field's name in the diff, with its type byte and
// terminator; an array's entries are "u" or "s" and the index.
func (n *diffNode) entrySize(name string) int {
	if n.array {
		return 1 + len(name) + 2
	}
	return len(name) + 2
}

func (n *diffNode) addUpdate(name string, v Value) {
	n.size += n.entrySize(name) + len(v.Data)
	if n.array {
		n.elems[name] = true
		return
	}
	if len(n.updates) == 0 {
		n.size += sectionWrapperSize
	}
	n.updates = append(n.updates, name)
}

func (n *diffNode) addInsert(name string, v Value) {
	n.size += n.entrySize(name) + len(v.Data)
	if len(n.inserts) == 0 {
		n.size += sectionWrapperSize
	}
	n.inserts = append(n.inserts, name)
}

func (n *diffNode) addDelete(name string) {
	n.size += n.entrySize(name) + 1
	if len(n.deletes) == 0 {
		n.size += sectionWrapperSize
	}
	n.deletes = append(n.deletes, name)
}

// serializeDiff writes the diff as the oplog holds it, the values taken
// from post (the new value at this level): a document level as {d: {<f>:
// false}, u: {...}, i: {...}, s<f>: <sub-diff>}, an array level as {a:
// true, l: <size>, u<i>: <value>, s<i>: <sub-diff>}.
func serializeDiff(n *diffNode, post Value) bsoncore.Document {
	var fields []Field
	if n.array {
		elems := ArrayValues(post)
		fields = append(fields, Field{"a", BoolValue(true)})
		if n.resize >= 0 {
			fields = append(fields, Field{"l", Int32Value(int32(n.resize))})
		}
		var idx []int
		for k := range n.elems {
			i, _ := ArrayIndex(k)
			idx = append(idx, i)
		}
		for k := range n.sub {
			i, _ := ArrayIndex(k)
			idx = append(idx, i)
		}
		slices.Sort(idx)
		for _, i := range idx {
			k := strconv.Itoa(i)
			if n.elems[k] {
				fields = append(fields, Field{"u" + k, elems[i]})
			} else {
				fields = append(fields, Field{"s" + k, DocValue(serializeDiff(n.sub[k], elems[i]))})
			}
		}
		return BuildDoc(fields)
	}
	d := post.Document()
	section := func(name string, keys []string, value func(string) Value) {
		if len(keys) == 0 {
			return
		}
		entries := make([]Field, len(keys))
		for i, k := range keys {
			entries[i] = Field{k, value(k)}
		}
		fields = append(fields, Field{name, DocValue(BuildDoc(entries))})
	}
	section("d", n.deletes, func(string) Value { return BoolValue(false) })
	lookup := func(k string) Value { return d.Lookup(k) }
	section("u", n.updates, lookup)
	section("i", n.inserts, lookup)
	for _, k := range n.subs {
		fields = append(fields, Field{"s" + k, DocValue(serializeDiff(n.sub[k], d.Lookup(k)))})
	}
	return BuildDoc(fields)
}

func compilePipelineUpdate(u Value) (*Update, error) {
	up := &Update{pipeline: []Stage{}}
	for _, st := range ArrayValues(u) {
		name := StageName(st)
		if KnownStage(name) && !UpdateStages[name] {
			return nil, errorf(72, "%s is not allowed to be used within an update", name)
		}
		s, err := CompileStage(st)
		if err != nil {
			return nil, err
		}
		up.pipeline = append(up.pipeline, s)
	}
	return up, nil
}

// applyPipeline runs the pipeline on the document, as a replacement that
// keeps _id (where the result has none, the old one goes first) and allows
// $-prefixed top-level fields, and describes the change by its diff.
func (u *Update) applyPipeline(old bsoncore.Document, _ time.Time) (bsoncore.Document, *Description, error) {
	docs := []bsoncore.Document{old}
	for _, st := range u.pipeline {
		var err error
		if docs, err = st.Apply(docs); err != nil {
			return nil, nil, err
		}
	}
	out := docs[0]
	if id, err := old.LookupErr("_id"); err == nil {
		if _, err := out.LookupErr("_id"); err != nil {
			out = BuildDoc(append([]Field{{"_id", id}}, Fields(out)...))
		}
	}
	if bytes.Equal(out, old) {
		return out, nil, nil
	}
	diff := pipelineDiff(old, out)
	if diff == nil {
		return out, nil, nil
	}
	return out, diff.describe(out), nil
}
