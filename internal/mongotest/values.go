package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Constructors for BSON values. A zero Value (Type 0) stands for "missing".

func int32Value(i int32) bsoncore.Value {
	return bsoncore.Value{Type: bsoncore.TypeInt32, Data: bsoncore.AppendInt32(nil, i)}
}

func int64Value(i int64) bsoncore.Value {
	return bsoncore.Value{Type: bsoncore.TypeInt64, Data: bsoncore.AppendInt64(nil, i)}
}

func doubleValue(f float64) bsoncore.Value {
	return bsoncore.Value{Type: bsoncore.TypeDouble, Data: bsoncore.AppendDouble(nil, f)}
}

func boolValue(b bool) bsoncore.Value {
	return bsoncore.Value{Type: bsoncore.TypeBoolean, Data: bsoncore.AppendBoolean(nil, b)}
}

func stringValue(s string) bsoncore.Value {
	return bsoncore.Value{Type: bsoncore.TypeString, Data: bsoncore.AppendString(nil, s)}
}

func dateValue(ms int64) bsoncore.Value {
	return bsoncore.Value{Type: bsoncore.TypeDateTime, Data: bsoncore.AppendDateTime(nil, ms)}
}

func timestampValue(ts bson.Timestamp) bsoncore.Value {
	return bsoncore.Value{Type: bsoncore.TypeTimestamp, Data: bsoncore.AppendTimestamp(nil, ts.T, ts.I)}
}

func uuidValue(u []byte) bsoncore.Value {
	return bsoncore.Value{Type: bsoncore.TypeBinary, Data: bsoncore.AppendBinary(nil, 4, u)}
}

// arrayValue builds an array, leaving out missing values.
func arrayValue(vals []bsoncore.Value) bsoncore.Value {
	idx, b := bsoncore.AppendArrayStart(nil)
	i := 0
	for _, v := range vals {
		if v.Type == 0 {
			continue
		}
		b = bsoncore.AppendValueElement(b, arrayKey(i), v)
		i++
	}
	b, _ = bsoncore.AppendArrayEnd(b, idx)
	return bsoncore.Value{Type: bsoncore.TypeArray, Data: b}
}

func arrayValues(v bsoncore.Value) []bsoncore.Value {
	vals, _ := v.Array().Values()
	return vals
}

// field is one element of a document under construction.
type field struct {
	key string
	val bsoncore.Value
}

// buildDoc builds a document, leaving out missing values.
func buildDoc(fields []field) bsoncore.Document {
	idx, b := bsoncore.AppendDocumentStart(nil)
	for _, f := range fields {
		if f.val.Type != 0 {
			b = bsoncore.AppendValueElement(b, f.key, f.val)
		}
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

func docFields(d bsoncore.Document) []field {
	elems, _ := d.Elements()
	out := make([]field, len(elems))
	for i, e := range elems {
		out[i] = field{e.Key(), e.Value()}
	}
	return out
}

// marshalValue converts a Go value to BSON.
func marshalValue(v any) bsoncore.Value {
	t, data, err := bson.MarshalValue(v)
	if err != nil {
		panic(err) // only called with encodable values built here
	}
	return bsoncore.Value{Type: bsoncore.Type(t), Data: data}
}

func mustMarshal(d bson.D) bsoncore.Document {
	b, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

// setRawPath returns doc with the dotted path set to v, creating embedded
// documents on the way; through an array, it sets the path in each
// document element (aggregation $addFields semantics).
func setRawPath(doc bsoncore.Document, path []string, v bsoncore.Value) bsoncore.Document {
	fields := docFields(doc)
	for i, f := range fields {
		if f.key != path[0] {
			continue
		}
		fields[i].val = setValuePath(f.val, path[1:], v)
		return buildDoc(fields)
	}
	return buildDoc(append(fields, field{path[0], setValuePath(bsoncore.Value{}, path[1:], v)}))
}

func setValuePath(cur bsoncore.Value, rest []string, v bsoncore.Value) bsoncore.Value {
	if len(rest) == 0 {
		return v
	}
	switch cur.Type {
	case bsoncore.TypeEmbeddedDocument:
		return docValue(setRawPath(cur.Document(), rest, v))
	case bsoncore.TypeArray:
		elems := arrayValues(cur)
		for i, e := range elems {
			if e.Type == bsoncore.TypeEmbeddedDocument {
				elems[i] = docValue(setRawPath(e.Document(), rest, v))
			}
		}
		return arrayValue(elems)
	default:
		return docValue(setRawPath(buildDoc(nil), rest, v))
	}
}
