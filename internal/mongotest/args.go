package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// Argument helpers. They return the real server's TypeMismatch wording.

func typeError(field string, v bsoncore.Value, want string) error {
	return errorf(codeTypeMismatch, "BSON field '%s' is the wrong type '%s', expected type '%s'", field, query.TypeName(v.Type), want)
}

func (cx *cmdCtx) field(name string) (bsoncore.Value, bool) {
	v, err := cx.body.LookupErr(name)
	return v, err == nil
}

func (cx *cmdCtx) docArg(name string) (bsoncore.Document, error) {
	v, ok := cx.field(name)
	if !ok || v.Type == bsoncore.TypeNull {
		return nil, nil
	}
	d, ok := v.DocumentOK()
	if !ok {
		return nil, typeError(cx.name+"."+name, v, "object")
	}
	return d, nil
}

func (cx *cmdCtx) arrayArg(name string) ([]bsoncore.Value, error) {
	v, ok := cx.field(name)
	if !ok {
		return nil, nil
	}
	a, ok := v.ArrayOK()
	if !ok {
		return nil, typeError(cx.name+"."+name, v, "array")
	}
	vals, err := a.Values()
	if err != nil {
		return nil, errorf(codeFailedToParse, "malformed array %s", name)
	}
	return vals, nil
}

func (cx *cmdCtx) boolArg(name string) (bool, error) {
	v, ok := cx.field(name)
	if !ok {
		return false, nil
	}
	return asBool(cx.name+"."+name, v)
}

func asBool(field string, v bsoncore.Value) (bool, error) {
	switch {
	case v.Type == bsoncore.TypeBoolean:
		return v.Boolean(), nil
	case v.IsNumber():
		return v.AsFloat64() != 0, nil
	case v.Type == bsoncore.TypeNull:
		return false, nil
	}
	return false, typeError(field, v, "bool")
}

func (cx *cmdCtx) intArg(name string) (int64, bool, error) {
	v, ok := cx.field(name)
	if !ok || v.Type == bsoncore.TypeNull {
		return 0, false, nil
	}
	n, err := query.AsInt(cx.name+"."+name, v)
	return n, err == nil, err
}

// collName is the collection named by the command's first field.
func (cx *cmdCtx) collName() (string, error) {
	name, ok := cx.arg.StringValueOK()
	if !ok {
		if cx.arg.Type == bsoncore.TypeBinary {
			return "", unsupported("collection UUIDs as %s targets", cx.name)
		}
		return "", typeError(cx.name, cx.arg, "string")
	}
	if err := validCollName(name); err != nil {
		return "", err
	}
	return name, nil
}
