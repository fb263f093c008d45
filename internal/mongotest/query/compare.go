package query

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"math/big"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// canonicalType orders BSON types for comparison and sorting, as documented
// in https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/:
// MinKey < Null < Numbers < Symbol, String < Object < Array < BinData <
// ObjectId < Boolean < Date < Timestamp < Regular Expression < MaxKey.
// (The values are the server's canonicalizeBSONType.)
func canonicalType(t bsoncore.Type) int {
	switch t {
	case bsoncore.TypeMinKey:
		return -1
	case 0, bsoncore.TypeUndefined:
		return 0
	case bsoncore.TypeNull:
		return 5
	case bsoncore.TypeDouble, bsoncore.TypeInt32, bsoncore.TypeInt64, bsoncore.TypeDecimal128:
		return 10
	case bsoncore.TypeString, bsoncore.TypeSymbol:
		return 15
	case bsoncore.TypeEmbeddedDocument:
		return 20
	case bsoncore.TypeArray:
		return 25
	case bsoncore.TypeBinary:
		return 30
	case bsoncore.TypeObjectID:
		return 35
	case bsoncore.TypeBoolean:
		return 40
	case bsoncore.TypeDateTime:
		return 45
	case bsoncore.TypeTimestamp:
		return 47
	case bsoncore.TypeRegex:
		return 50
	case bsoncore.TypeDBPointer:
		return 55
	case bsoncore.TypeJavaScript:
		return 60
	case bsoncore.TypeCodeWithScope:
		return 65
	default: // MaxKey
		return 127
	}
}

// Compare orders two values as MongoDB does: first by canonical type, then
// by value. Numbers compare by mathematical value across int32, int64,
// double and decimal; strings by bytes (the default "simple" collation).
func Compare(a, b Value) int {
	if c := cmp.Compare(canonicalType(a.Type), canonicalType(b.Type)); c != 0 {
		return c
	}
	switch canonicalType(a.Type) {
	case 10:
		return compareNumbers(a, b)
	case 15:
		return cmp.Compare(stringOf(a), stringOf(b))
	case 20, 25:
		return compareElements(a.Data, b.Data, a.Type == bsoncore.TypeEmbeddedDocument)
	case 30:
		sa, da := a.Binary()
		sb, db := b.Binary()
		return cmp.Or(cmp.Compare(len(da), len(db)), cmp.Compare(sa, sb), bytes.Compare(da, db))
	case 40:
		return cmp.Compare(boolInt(a.Boolean()), boolInt(b.Boolean()))
	case 45:
		return cmp.Compare(a.DateTime(), b.DateTime())
	case 47:
		ta, ia := a.Timestamp()
		tb, ib := b.Timestamp()
		return cmp.Or(cmp.Compare(ta, tb), cmp.Compare(ia, ib))
	case 50:
		pa, oa := a.Regex()
		pb, ob := b.Regex()
		return cmp.Or(cmp.Compare(pa, pb), cmp.Compare(oa, ob))
	case -1, 0, 5, 127:
		return 0
	default: // ObjectId, DBPointer, code: byte order
		return bytes.Compare(a.Data, b.Data)
	}
}

// compareElements compares documents (field names and values in order) or
// arrays (values in order); a prefix sorts first.
func compareElements(a, b []byte, withKeys bool) int {
	ea, _ := bsoncore.Document(a).Elements()
	eb, _ := bsoncore.Document(b).Elements()
	for i := 0; i < len(ea) && i < len(eb); i++ {
		va, vb := ea[i].Value(), eb[i].Value()
		if c := cmp.Compare(canonicalType(va.Type), canonicalType(vb.Type)); c != 0 {
			return c
		}
		if withKeys {
			if c := cmp.Compare(ea[i].Key(), eb[i].Key()); c != 0 {
				return c
			}
		}
		if c := Compare(va, vb); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(ea), len(eb))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Truthy is a value's truth as MongoDB options and expressions read it.
func Truthy(v Value) bool {
	switch {
	case v.Type == bsoncore.TypeBoolean:
		return v.Boolean()
	case v.IsNumber():
		return v.AsFloat64() != 0
	case v.Type == bsoncore.TypeNull || v.Type == bsoncore.TypeUndefined || v.Type == 0:
		return false
	}
	return true
}

// AppendKey appends a canonical encoding of v in which values MongoDB
// considers equal (1, 1.0 and NumberLong(1)) encode identically: the key of
// index entries and groups.
func AppendKey(b []byte, v Value) []byte {
	b = append(b, byte(canonicalType(v.Type)))
	switch {
	case v.IsNumber():
		return fmt.Appendf(b, "%s;", numberKey(v))
	case v.Type == bsoncore.TypeString || v.Type == bsoncore.TypeSymbol:
		s := stringOf(v)
		return fmt.Appendf(b, "%d:%s", len(s), s)
	case v.Type == bsoncore.TypeEmbeddedDocument || v.Type == bsoncore.TypeArray:
		elems, _ := bsoncore.Document(v.Data).Elements()
		b = fmt.Appendf(b, "%d{", len(elems))
		for _, e := range elems {
			if v.Type == bsoncore.TypeEmbeddedDocument {
				b = fmt.Appendf(b, "%d:%s", len(e.Key()), e.Key())
			}
			b = AppendKey(b, e.Value())
		}
		return append(b, '}')
	default:
		b = fmt.Appendf(b, "%d:", len(v.Data))
		return append(b, v.Data...)
	}
}

func stringOf(v bsoncore.Value) string {
	if v.Type == bsoncore.TypeSymbol {
		return v.Symbol()
	}
	return v.StringValue()
}

// compareNumbers compares exactly: int64 values beyond 2^53 are not rounded
// through float64. NaN sorts before every other number, as in MongoDB.
func compareNumbers(a, b bsoncore.Value) int {
	fa, fb := numberFloat(a), numberFloat(b)
	na, nb := fa.IsNaN(), fb.IsNaN()
	switch {
	case na && nb:
		return 0
	case na:
		return -1
	case nb:
		return 1
	}
	return fa.v.Cmp(fb.v)
}

type number struct {
	v   *big.Float
	nan bool
}

func (n number) IsNaN() bool { return n.nan }

func numberFloat(v bsoncore.Value) number {
	switch v.Type {
	case bsoncore.TypeInt32, bsoncore.TypeInt64:
		return number{v: new(big.Float).SetInt64(v.AsInt64())}
	case bsoncore.TypeDecimal128:
		h, l := v.Decimal128()
		s := bson.NewDecimal128(h, l).String()
		switch s {
		case "NaN", "-NaN":
			return number{nan: true}
		case "Infinity", "-Infinity":
			return number{v: new(big.Float).SetInf(s[0] == '-')}
		}
		f, _, err := big.ParseFloat(s, 10, 200, big.ToNearestEven)
		if err != nil {
			return number{nan: true}
		}
		return number{v: f}
	default:
		f := v.Double()
		if math.IsNaN(f) {
			return number{nan: true}
		}
		return number{v: new(big.Float).SetFloat64(f)}
	}
}

// numberKey is a canonical text for a number's value, equal for equal values.
func numberKey(v bsoncore.Value) string {
	n := numberFloat(v)
	if n.nan {
		return "NaN"
	}
	if n.v.IsInt() {
		i, _ := n.v.Int(nil)
		return i.String()
	}
	return n.v.Text('g', -1)
}

func Equal(a, b bsoncore.Value) bool { return Compare(a, b) == 0 }

// typeNames are the $type aliases (https://www.mongodb.com/docs/manual/reference/operator/query/type/).
var typeNames = map[string]bsoncore.Type{
	"double": bsoncore.TypeDouble, "string": bsoncore.TypeString, "object": bsoncore.TypeEmbeddedDocument,
	"array": bsoncore.TypeArray, "binData": bsoncore.TypeBinary, "undefined": bsoncore.TypeUndefined,
	"objectId": bsoncore.TypeObjectID, "bool": bsoncore.TypeBoolean, "date": bsoncore.TypeDateTime,
	"null": bsoncore.TypeNull, "regex": bsoncore.TypeRegex, "dbPointer": bsoncore.TypeDBPointer,
	"javascript": bsoncore.TypeJavaScript, "symbol": bsoncore.TypeSymbol, "javascriptWithScope": bsoncore.TypeCodeWithScope,
	"int": bsoncore.TypeInt32, "timestamp": bsoncore.TypeTimestamp, "long": bsoncore.TypeInt64,
	"decimal": bsoncore.TypeDecimal128, "minKey": bsoncore.TypeMinKey, "maxKey": bsoncore.TypeMaxKey,
}

// TypeName is the $type alias of t, as error messages name types.
func TypeName(t bsoncore.Type) string {
	for name, tt := range typeNames {
		if tt == t {
			return name
		}
	}
	if t == 0 {
		return "missing"
	}
	return "type " + strconv.Itoa(int(t))
}
