package query

import (
	"math"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// $jsonSchema (https://www.mongodb.com/docs/manual/reference/operator/query/jsonSchema/),
// MongoDB's dialect of JSON Schema draft 4, for validators and queries.
// What it runs: bsonType, type, enum, required, properties,
// additionalProperties, minProperties, maxProperties, items (one schema or
// one per position) with additionalItems, minItems, maxItems, uniqueItems,
// minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf (of
// doubles and integers), minLength, maxLength, allOf, anyOf, oneOf, not,
// title and description. As MongoDB, a keyword about a kind of value
// (minimum, properties...) holds for a value of another kind, and a
// property's schema holds when the field is missing. Keywords this server
// leaves out (pattern, patternProperties, dependencies, encrypt...) are
// refused with 115 naming them.

// schemaPred tests a value against a compiled schema.
type schemaPred = func(v Value) bool

var unsupportedSchemaKeywords = map[string]bool{
	"pattern": true, "patternProperties": true, "dependencies": true, "encrypt": true, "encryptMetadata": true,
}

// jsonTypes are the JSON types `type` takes, as BSON types ("integer" is
// refused by MongoDB).
var jsonTypes = map[string]func(bsoncore.Type) bool{
	"object":  func(t bsoncore.Type) bool { return t == bsoncore.TypeEmbeddedDocument },
	"array":   func(t bsoncore.Type) bool { return t == bsoncore.TypeArray },
	"number":  isNumberType,
	"boolean": func(t bsoncore.Type) bool { return t == bsoncore.TypeBoolean },
	"string":  func(t bsoncore.Type) bool { return t == bsoncore.TypeString },
	"null":    func(t bsoncore.Type) bool { return t == bsoncore.TypeNull },
}

func isNumberType(t bsoncore.Type) bool { return canonicalType(t) == 10 }

// compileJSONSchema compiles a top-level {$jsonSchema: <schema>}.
func compileJSONSchema(v Value) (docPred, error) {
	d, ok := v.DocumentOK()
	if !ok {
		return nil, errorf(CodeTypeMismatch, "$jsonSchema must be an object")
	}
	return compileSchema(d)
}

func compileSchema(schema bsoncore.Document) (schemaPred, error) {
	var preds []schemaPred
	add := func(p schemaPred) { preds = append(preds, p) }
	fields := Fields(schema)
	given := map[string]Value{}
	for _, f := range fields {
		given[f.Key] = f.Val
	}
	if _, hasType := given["type"]; hasType {
		if _, hasBSON := given["bsonType"]; hasBSON {
			return nil, errorf(CodeFailedToParse, "Cannot specify both $jsonSchema keywords 'type' and 'bsonType'")
		}
	}
	for _, f := range fields {
		var p schemaPred
		var err error
		switch k, v := f.Key, f.Val; {
		case k == "title" || k == "description":
			if v.Type != bsoncore.TypeString {
				return nil, errorf(CodeTypeMismatch, "$jsonSchema keyword '%s' must be a string", k)
			}
			continue
		case k == "bsonType" || k == "type":
			p, err = schemaType(k, v)
		case k == "enum":
			p, err = schemaEnum(v)
		case k == "required":
			p, err = schemaRequired(v)
		case k == "properties":
			p, err = schemaProperties(v)
		case k == "additionalProperties":
			p, err = schemaAdditionalProperties(v, given["properties"])
		case k == "minProperties" || k == "maxProperties":
			p, err = schemaCount(k, v, bsoncore.TypeEmbeddedDocument, func(x Value) int { return len(Fields(x.Document())) })
		case k == "minItems" || k == "maxItems":
			p, err = schemaCount(k, v, bsoncore.TypeArray, func(x Value) int { return len(ArrayValues(x)) })
		case k == "minLength" || k == "maxLength":
			p, err = schemaCount(k, v, bsoncore.TypeString, func(x Value) int { return utf8.RuneCountInString(x.StringValue()) })
		case k == "items":
			p, err = schemaItems(v, given["additionalItems"])
		case k == "additionalItems":
			continue // compiled with items: without them, it constrains nothing
		case k == "uniqueItems":
			p, err = schemaUniqueItems(v)
		case k == "minimum" || k == "maximum":
			p, err = schemaBound(k, v, given)
		case k == "exclusiveMinimum" || k == "exclusiveMaximum":
			if v.Type != bsoncore.TypeBoolean {
				return nil, errorf(CodeTypeMismatch, "$jsonSchema keyword '%s' must be a boolean", k)
			}
			bound := map[string]string{"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}[k]
			if _, ok := given[bound]; !ok {
				return nil, errorf(CodeFailedToParse, "$jsonSchema keyword '%s' must be a present if %s is present", bound, k)
			}
			continue // compiled with its bound
		case k == "multipleOf":
			p, err = schemaMultipleOf(v)
		case k == "allOf" || k == "anyOf" || k == "oneOf":
			p, err = schemaLogic(k, v)
		case k == "not":
			d, ok := v.DocumentOK()
			if !ok {
				return nil, errorf(CodeTypeMismatch, "$jsonSchema keyword 'not' must be an object")
			}
			var inner schemaPred
			if inner, err = compileSchema(d); err == nil {
				p = func(x Value) bool { return !inner(x) }
			}
		case unsupportedSchemaKeywords[k]:
			return nil, Unsupported("the $jsonSchema keyword %s", k)
		default:
			return nil, errorf(CodeFailedToParse, "Unknown $jsonSchema keyword: %s", k)
		}
		if err != nil {
			return nil, err
		}
		add(p)
	}
	return allOf(preds), nil
}

// schemaType is bsonType (aliases of $type, "number" for any number) or
// type (JSON types): one name or an array of them.
func schemaType(keyword string, v Value) (schemaPred, error) {
	names := []Value{v}
	if v.Type == bsoncore.TypeArray {
		names = ArrayValues(v)
		if len(names) == 0 {
			return nil, errorf(CodeFailedToParse, "$jsonSchema keyword '%s' must name at least one type", keyword)
		}
	}
	var want []func(bsoncore.Type) bool
	for _, n := range names {
		name, ok := n.StringValueOK()
		if !ok {
			return nil, errorf(CodeTypeMismatch, "$jsonSchema keyword '%s' must be a string or an array of strings", keyword)
		}
		switch {
		case keyword == "type" && name == "integer":
			return nil, errorf(CodeFailedToParse, "$jsonSchema type 'integer' is not currently supported.")
		case keyword == "type":
			is, ok := jsonTypes[name]
			if !ok {
				return nil, errorf(CodeBadValue, "Unknown type name alias: %s", name)
			}
			want = append(want, is)
		case name == "number":
			want = append(want, isNumberType)
		default:
			t, ok := typeNames[name]
			if !ok {
				return nil, errorf(CodeBadValue, "Unknown type name alias: %s", name)
			}
			want = append(want, func(x bsoncore.Type) bool { return x == t })
		}
	}
	return func(x Value) bool {
		for _, w := range want {
			if w(x.Type) {
				return true
			}
		}
		return false
	}, nil
}

func schemaEnum(v Value) (schemaPred, error) {
	values := ArrayValues(v)
	if v.Type != bsoncore.TypeArray || len(values) == 0 {
		return nil, errorf(CodeFailedToParse, "$jsonSchema keyword 'enum' must be a non-empty array")
	}
	return func(x Value) bool {
		for _, e := range values {
			if e.Type == x.Type || (isNumberType(e.Type) && isNumberType(x.Type)) {
				if Equal(e, x) {
					return true
				}
			}
		}
		return false
	}, nil
}

func schemaRequired(v Value) (schemaPred, error) {
	var names []string
	for _, n := range ArrayValues(v) {
		s, ok := n.StringValueOK()
		if !ok {
			return nil, errorf(CodeTypeMismatch, "$jsonSchema keyword 'required' must be an array of strings")
		}
		names = append(names, s)
	}
	if v.Type != bsoncore.TypeArray || len(names) == 0 {
		return nil, errorf(CodeFailedToParse, "$jsonSchema keyword 'required' must be a non-empty array of strings")
	}
	return ofType(bsoncore.TypeEmbeddedDocument, func(x Value) bool {
		for _, n := range names {
			if _, err := x.Document().LookupErr(n); err != nil {
				return false
			}
		}
		return true
	}), nil
}

// ofType makes p hold for values of other types than t, as MongoDB's
// keywords about one kind of value do.
func ofType(t bsoncore.Type, p schemaPred) schemaPred {
	return func(x Value) bool { return x.Type != t || p(x) }
}

func subSchemas(keyword string, v Value) (map[string]schemaPred, []string, error) {
	d, ok := v.DocumentOK()
	if !ok {
		return nil, nil, errorf(CodeTypeMismatch, "$jsonSchema keyword '%s' must be an object", keyword)
	}
	subs := map[string]schemaPred{}
	var names []string
	for _, f := range Fields(d) {
		sd, ok := f.Val.DocumentOK()
		if !ok {
			return nil, nil, errorf(CodeTypeMismatch, "Nested schema for $jsonSchema property '%s' must be an object", f.Key)
		}
		p, err := compileSchema(sd)
		if err != nil {
			return nil, nil, err
		}
		subs[f.Key] = p
		names = append(names, f.Key)
	}
	return subs, names, nil
}

func schemaProperties(v Value) (schemaPred, error) {
	subs, names, err := subSchemas("properties", v)
	if err != nil {
		return nil, err
	}
	return ofType(bsoncore.TypeEmbeddedDocument, func(x Value) bool {
		for _, n := range names {
			if field, err := x.Document().LookupErr(n); err == nil && !subs[n](field) {
				return false
			}
		}
		return true
	}), nil
}

// schemaAdditionalProperties: false forbids fields properties does not
// name; a schema constrains them.
func schemaAdditionalProperties(v, properties Value) (schemaPred, error) {
	named := map[string]bool{}
	if d, ok := properties.DocumentOK(); ok {
		for _, f := range Fields(d) {
			named[f.Key] = true
		}
	}
	var extra schemaPred
	switch v.Type {
	case bsoncore.TypeBoolean:
		allowed := v.Boolean()
		extra = func(Value) bool { return allowed }
	case bsoncore.TypeEmbeddedDocument:
		var err error
		if extra, err = compileSchema(v.Document()); err != nil {
			return nil, err
		}
	default:
		return nil, errorf(CodeTypeMismatch, "$jsonSchema keyword 'additionalProperties' must be either an object or a boolean")
	}
	return ofType(bsoncore.TypeEmbeddedDocument, func(x Value) bool {
		for _, f := range Fields(x.Document()) {
			if !named[f.Key] && !extra(f.Val) {
				return false
			}
		}
		return true
	}), nil
}

// schemaCount is a bound on a count (properties, items, characters) of
// values of type t.
func schemaCount(keyword string, v Value, t bsoncore.Type, count func(Value) int) (schemaPred, error) {
	n, err := AsInt(keyword, v)
	if err != nil || n < 0 {
		return nil, errorf(CodeFailedToParse, "$jsonSchema keyword '%s' must be a representable as a non-negative integer", keyword)
	}
	atLeast := keyword[:3] == "min"
	return ofType(t, func(x Value) bool {
		c := int64(count(x))
		return (atLeast && c >= n) || (!atLeast && c <= n)
	}), nil
}

// schemaItems is items: one schema for every element, or one per position,
// the elements past them held to additionalItems.
func schemaItems(v, additional Value) (schemaPred, error) {
	if d, ok := v.DocumentOK(); ok {
		each, err := compileSchema(d)
		if err != nil {
			return nil, err
		}
		return ofType(bsoncore.TypeArray, func(x Value) bool {
			for _, e := range ArrayValues(x) {
				if !each(e) {
					return false
				}
			}
			return true
		}), nil
	}
	if v.Type != bsoncore.TypeArray {
		return nil, errorf(CodeTypeMismatch, "$jsonSchema keyword 'items' must be an array or an object")
	}
	var positions []schemaPred
	for _, s := range ArrayValues(v) {
		d, ok := s.DocumentOK()
		if !ok {
			return nil, errorf(CodeTypeMismatch, "$jsonSchema keyword 'items' requires that each element of the array is an object")
		}
		p, err := compileSchema(d)
		if err != nil {
			return nil, err
		}
		positions = append(positions, p)
	}
	rest := func(Value) bool { return true }
	switch additional.Type {
	case 0:
	case bsoncore.TypeBoolean:
		allowed := additional.Boolean()
		rest = func(Value) bool { return allowed }
	case bsoncore.TypeEmbeddedDocument:
		p, err := compileSchema(additional.Document())
		if err != nil {
			return nil, err
		}
		rest = p
	default:
		return nil, errorf(CodeTypeMismatch, "$jsonSchema keyword 'additionalItems' must be either an object or a boolean")
	}
	return ofType(bsoncore.TypeArray, func(x Value) bool {
		for i, e := range ArrayValues(x) {
			if i < len(positions) && !positions[i](e) || i >= len(positions) && !rest(e) {
				return false
			}
		}
		return true
	}), nil
}

func schemaUniqueItems(v Value) (schemaPred, error) {
	if v.Type != bsoncore.TypeBoolean {
		return nil, errorf(CodeTypeMismatch, "$jsonSchema keyword 'uniqueItems' must be a boolean")
	}
	if !v.Boolean() {
		return func(Value) bool { return true }, nil
	}
	return ofType(bsoncore.TypeArray, func(x Value) bool {
		elems := ArrayValues(x)
		for i := range elems {
			for j := i + 1; j < len(elems); j++ {
				if elems[i].Type == elems[j].Type && Equal(elems[i], elems[j]) {
					return false
				}
			}
		}
		return true
	}), nil
}

// schemaBound is minimum or maximum, exclusive when exclusiveMinimum or
// exclusiveMaximum is true.
func schemaBound(keyword string, v Value, given map[string]Value) (schemaPred, error) {
	if !v.IsNumber() {
		return nil, errorf(CodeTypeMismatch, "$jsonSchema keyword '%s' must be a number", keyword)
	}
	exclusive := Truthy(given[map[string]string{"minimum": "exclusiveMinimum", "maximum": "exclusiveMaximum"}[keyword]])
	return func(x Value) bool {
		if !isNumberType(x.Type) {
			return true
		}
		c := Compare(x, v)
		if keyword == "minimum" {
			return c > 0 || (c == 0 && !exclusive)
		}
		return c < 0 || (c == 0 && !exclusive)
	}, nil
}

func schemaMultipleOf(v Value) (schemaPred, error) {
	switch {
	case v.Type == bsoncore.TypeDecimal128:
		return nil, Unsupported("a Decimal128 multipleOf in $jsonSchema")
	case !v.IsNumber() || v.AsFloat64() <= 0:
		return nil, errorf(CodeFailedToParse, "$jsonSchema keyword 'multipleOf' must be a positive number")
	}
	m := v.AsFloat64()
	return func(x Value) bool {
		switch {
		case !isNumberType(x.Type):
			return true
		case x.Type == bsoncore.TypeDecimal128:
			return false // not compared here: a write of one fails validation
		}
		return math.Mod(x.AsFloat64(), m) == 0
	}, nil
}

func schemaLogic(keyword string, v Value) (schemaPred, error) {
	items := ArrayValues(v)
	if v.Type != bsoncore.TypeArray || len(items) == 0 {
		return nil, errorf(CodeFailedToParse, "$jsonSchema keyword '%s' must be a non-empty array", keyword)
	}
	var subs []schemaPred
	for _, s := range items {
		d, ok := s.DocumentOK()
		if !ok {
			return nil, errorf(CodeTypeMismatch, "$jsonSchema keyword '%s' must be an array of objects", keyword)
		}
		p, err := compileSchema(d)
		if err != nil {
			return nil, err
		}
		subs = append(subs, p)
	}
	return func(x Value) bool {
		n := 0
		for _, p := range subs {
			if p(x) {
				n++
			}
		}
		switch keyword {
		case "allOf":
			return n == len(subs)
		case "anyOf":
			return n > 0
		}
		return n == 1
	}, nil
}
