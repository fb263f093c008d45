package query

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Value is one BSON value; a zero Value (Type 0) stands for "missing".
type Value = bsoncore.Value

// The BSON types, as this package and its users name them.
const (
	TypeDouble    = bsoncore.TypeDouble
	TypeString    = bsoncore.TypeString
	TypeDocument  = bsoncore.TypeEmbeddedDocument
	TypeArray     = bsoncore.TypeArray
	TypeBinary    = bsoncore.TypeBinary
	TypeNull      = bsoncore.TypeNull
	TypeRegex     = bsoncore.TypeRegex
	TypeInt32     = bsoncore.TypeInt32
	TypeInt64     = bsoncore.TypeInt64
	TypeTimestamp = bsoncore.TypeTimestamp
	TypeDateTime  = bsoncore.TypeDateTime
	TypeDecimal   = bsoncore.TypeDecimal128
	TypeUndefined = bsoncore.TypeUndefined
	TypeBoolean   = bsoncore.TypeBoolean
)

var (
	// NullValue is BSON null.
	NullValue = Value{Type: bsoncore.TypeNull}
	// UndefinedValue is BSON undefined: how an empty array sorts and indexes.
	UndefinedValue = Value{Type: bsoncore.TypeUndefined}
)

func Int32Value(i int32) Value {
	return Value{Type: bsoncore.TypeInt32, Data: bsoncore.AppendInt32(nil, i)}
}

func Int64Value(i int64) Value {
	return Value{Type: bsoncore.TypeInt64, Data: bsoncore.AppendInt64(nil, i)}
}

func DoubleValue(f float64) Value {
	return Value{Type: bsoncore.TypeDouble, Data: bsoncore.AppendDouble(nil, f)}
}

func BoolValue(b bool) Value {
	return Value{Type: bsoncore.TypeBoolean, Data: bsoncore.AppendBoolean(nil, b)}
}

func StringValue(s string) Value {
	return Value{Type: bsoncore.TypeString, Data: bsoncore.AppendString(nil, s)}
}

func DateValue(ms int64) Value {
	return Value{Type: bsoncore.TypeDateTime, Data: bsoncore.AppendDateTime(nil, ms)}
}

func TimestampValue(ts bson.Timestamp) Value {
	return Value{Type: bsoncore.TypeTimestamp, Data: bsoncore.AppendTimestamp(nil, ts.T, ts.I)}
}

// UUIDValue is a UUID: binary subtype 4.
func UUIDValue(u []byte) Value {
	return Value{Type: bsoncore.TypeBinary, Data: bsoncore.AppendBinary(nil, 4, u)}
}

func DocValue(d bsoncore.Document) Value {
	return Value{Type: bsoncore.TypeEmbeddedDocument, Data: d}
}

// ArrayValue builds an array, leaving out missing values.
func ArrayValue(vals []Value) Value {
	idx, b := bsoncore.AppendArrayStart(nil)
	i := 0
	for _, v := range vals {
		if v.Type == 0 {
			continue
		}
		b = bsoncore.AppendValueElement(b, ArrayKey(i), v)
		i++
	}
	b, _ = bsoncore.AppendArrayEnd(b, idx)
	return Value{Type: bsoncore.TypeArray, Data: b}
}

// ArrayValues are an array's elements.
func ArrayValues(v Value) []Value {
	vals, _ := v.Array().Values()
	return vals
}

// RawValue converts to the driver's bson.RawValue.
func RawValue(v Value) bson.RawValue {
	return bson.RawValue{Type: bson.Type(v.Type), Value: v.Data}
}

// MarshalValue converts a Go value, as decoded into a bson.D, to BSON; it
// is only called with values that encode.
func MarshalValue(v any) Value {
	if v == nil {
		return NullValue
	}
	t, data, err := bson.MarshalValue(v)
	if err != nil {
		panic(err)
	}
	return Value{Type: bsoncore.Type(t), Data: data}
}

// Field is one element of a document under construction.
type Field struct {
	Key string
	Val Value
}

// BuildDoc builds a document, leaving out missing values.
func BuildDoc(fields []Field) bsoncore.Document {
	// Sized first: every change event and reply is built here, and growing the
	// buffer by doubling would allocate about three times the document.
	size := 4 + 1
	for _, f := range fields {
		if f.Val.Type != 0 {
			size += 1 + len(f.Key) + 1 + len(f.Val.Data)
		}
	}
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, size))
	for _, f := range fields {
		if f.Val.Type != 0 {
			b = bsoncore.AppendValueElement(b, f.Key, f.Val)
		}
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

// Fields are a document's elements.
func Fields(d bsoncore.Document) []Field {
	elems, _ := d.Elements()
	out := make([]Field, len(elems))
	for i, e := range elems {
		out[i] = Field{e.Key(), e.Value()}
	}
	return out
}

// idFirstOnly tells whether doc already has id, of the same type, as its first
// element and no other _id: most inserts, which then need no rebuilding.
func idFirstOnly(doc bsoncore.Document, id Value) bool {
	if len(doc) < 5 {
		return false
	}
	rest := doc[4 : len(doc)-1] // the elements, without the length and the final 0
	for i := 0; len(rest) > 0; i++ {
		elem, after, ok := bsoncore.ReadElement(rest)
		if !ok || elem.Validate() != nil {
			return false
		}
		isID := elem.Key() == "_id"
		if i == 0 && (!isID || elem.Value().Type != id.Type || !Equal(elem.Value(), id)) || i > 0 && isID {
			return false
		}
		rest = after
	}
	return true
}

// WithID puts id first in doc (replacing any _id in it), as the server
// stores _id first; a missing id keeps doc's own.
func WithID(doc bsoncore.Document, id Value) bsoncore.Document {
	if id.Type == 0 {
		if _, err := doc.LookupErr("_id"); err != nil {
			return doc
		}
		id = doc.Lookup("_id")
	}
	if idFirstOnly(doc, id) {
		return append(bsoncore.Document(nil), doc...) // its own copy, not the request's bytes
	}
	fields := []Field{{"_id", id}}
	for _, f := range Fields(doc) {
		if f.Key != "_id" {
			fields = append(fields, f)
		} else if !Equal(f.Val, id) || f.Val.Type != id.Type {
			fields[0].Val = f.Val // a different _id: the immutable-field check reports it
		}
	}
	return BuildDoc(fields)
}
