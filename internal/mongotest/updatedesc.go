package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// describeUpdate computes a change event's updateDescription from the
// document before and after: changed fields by dotted path (descending into
// embedded documents and array elements), removed fields, and truncated
// arrays, as the server derives them from its oplog diffs
// (https://www.mongodb.com/docs/manual/reference/change-events/update/).
func describeUpdate(before, after bsoncore.Document) bsoncore.Document {
	var d updateDiff
	d.docs("", before, after)
	return buildDoc([]field{
		{"updatedFields", docValue(buildDoc(d.updated))},
		{"removedFields", arrayValue(d.removed)},
		{"truncatedArrays", arrayValue(d.truncated)},
	})
}

type updateDiff struct {
	updated   []field
	removed   []bsoncore.Value
	truncated []bsoncore.Value
}

func (d *updateDiff) docs(prefix string, before, after bsoncore.Document) {
	for _, f := range docFields(after) {
		old, err := before.LookupErr(f.key)
		if err != nil {
			d.updated = append(d.updated, field{prefix + f.key, f.val})
			continue
		}
		d.values(prefix+f.key, old, f.val)
	}
	for _, f := range docFields(before) {
		if _, err := after.LookupErr(f.key); err != nil {
			d.removed = append(d.removed, stringValue(prefix+f.key))
		}
	}
}

func (d *updateDiff) values(path string, old, cur bsoncore.Value) {
	switch {
	case old.Type == cur.Type && string(old.Data) == string(cur.Data):
	case old.Type == bsoncore.TypeEmbeddedDocument && cur.Type == bsoncore.TypeEmbeddedDocument:
		d.docs(path+".", old.Document(), cur.Document())
	case old.Type == bsoncore.TypeArray && cur.Type == bsoncore.TypeArray:
		olds, curs := arrayValues(old), arrayValues(cur)
		if len(curs) < len(olds) {
			d.truncated = append(d.truncated, docValue(buildDoc([]field{
				{"field", stringValue(path)}, {"newSize", int32Value(int32(len(curs)))},
			})))
		}
		for i, v := range curs {
			p := path + "." + arrayKey(i)
			if i < len(olds) {
				d.values(p, olds[i], v)
			} else {
				d.updated = append(d.updated, field{p, v})
			}
		}
	default:
		d.updated = append(d.updated, field{path, cur})
	}
}
