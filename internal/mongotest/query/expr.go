package query

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// expr is a compiled aggregation expression evaluated against a document
// (https://www.mongodb.com/docs/manual/reference/aggregation-variables/):
// field paths, $$ROOT and $$CURRENT, literals, and documents and arrays of
// those. Operator expressions ($cond, $add, ...) are refused. A result of
// Type 0 means "missing".
type expr func(root bsoncore.Document) Value

func compileExpr(v Value) (expr, error) {
	switch v.Type {
	case bsoncore.TypeString:
		if s := v.StringValue(); strings.HasPrefix(s, "$") {
			return compileFieldPath(s)
		}
	case bsoncore.TypeEmbeddedDocument:
		d := v.Document()
		if isOperatorDoc(d) {
			return nil, Unsupported("the expression operator %s", Fields(d)[0].Key)
		}
		return compileObjectExpr(d)
	case bsoncore.TypeArray:
		var parts []expr
		for _, e := range ArrayValues(v) {
			pe, err := compileExpr(e)
			if err != nil {
				return nil, err
			}
			parts = append(parts, pe)
		}
		return func(root bsoncore.Document) Value {
			vals := make([]Value, len(parts))
			for i, p := range parts {
				vals[i] = p(root)
			}
			return ArrayValue(vals)
		}, nil
	}
	return func(bsoncore.Document) Value { return v }, nil
}

func compileFieldPath(s string) (expr, error) {
	var path []string
	switch name, rest, _ := strings.Cut(strings.TrimPrefix(s, "$$"), "."); {
	case !strings.HasPrefix(s, "$$"):
		if s == "$" {
			return nil, errorf(16872, "'$' by itself is not a valid FieldPath")
		}
		path = SplitPath(s[1:])
	case name != "ROOT" && name != "CURRENT":
		return nil, Unsupported("the variable $$%s", name)
	case rest != "":
		path = SplitPath(rest)
	}
	return func(root bsoncore.Document) Value { return fieldPathValue(DocValue(root), path) }, nil
}

// fieldPathValue evaluates "$a.b": through an array of documents it
// yields the array of each element's value.
func fieldPathValue(v Value, path []string) Value {
	if len(path) == 0 {
		return v
	}
	switch v.Type {
	case bsoncore.TypeEmbeddedDocument:
		child, err := v.Document().LookupErr(path[0])
		if err != nil {
			return Value{}
		}
		return fieldPathValue(child, path[1:])
	case bsoncore.TypeArray:
		var out []Value
		for _, e := range ArrayValues(v) {
			if e.Type == bsoncore.TypeEmbeddedDocument || e.Type == bsoncore.TypeArray {
				out = append(out, fieldPathValue(e, path))
			}
		}
		return ArrayValue(out)
	}
	return Value{}
}

func compileObjectExpr(d bsoncore.Document) (expr, error) {
	type part struct {
		key string
		e   expr
	}
	var parts []part
	for _, f := range Fields(d) {
		if strings.Contains(f.Key, ".") {
			return nil, errorf(16412, "FieldPath field names may not contain '.'")
		}
		e, err := compileExpr(f.Val)
		if err != nil {
			return nil, err
		}
		parts = append(parts, part{f.Key, e})
	}
	return func(root bsoncore.Document) Value {
		fields := make([]Field, len(parts))
		for i, p := range parts {
			fields[i] = Field{p.key, p.e(root)}
		}
		return DocValue(BuildDoc(fields))
	}, nil
}
