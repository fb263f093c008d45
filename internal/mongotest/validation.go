package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// validation is a collection's document validation
// (https://www.mongodb.com/docs/manual/core/schema-validation/): a query
// filter every document written must match. level "strict" (the default)
// checks every insert and update, "moderate" leaves alone updates of
// documents that did not match already, "off" nothing; action "error" (the
// default) refuses the write with 121 DocumentValidationFailure, "warn"
// lets it through (mongod logs it). Levels and actions are kept as given:
// the options of create, listCollections and the events show what was set.
type validation struct {
	validator bsoncore.Document // nil: none
	filter    *query.Filter
	level     string // "" when not set
	action    string // "" when not set
}

const codeDocumentValidationFailure = 121

// parseValidationOption reads validator, validationLevel or
// validationAction into v.
func (v *validation) parseOption(name string, val bsoncore.Value) error {
	switch name {
	case "validator":
		d, ok := val.DocumentOK()
		if !ok {
			return typeError(name, val, "object")
		}
		if len(query.Fields(d)) == 0 {
			v.validator, v.filter = nil, nil // {} removes the validator
			return nil
		}
		for _, f := range query.Fields(d) {
			if f.Key == "$expr" {
				return unsupported("the validator operator %s", f.Key)
			}
		}
		filter, err := query.CompileFilter(d)
		if err != nil {
			return err
		}
		v.validator, v.filter = d, filter
	case "validationLevel":
		s, _ := val.StringValueOK()
		if s != "off" && s != "strict" && s != "moderate" {
			return errorf(codeBadValue, "Enumeration value '%s' for field 'validationLevel' is not a valid value.", val)
		}
		v.level = s
	case "validationAction":
		s, _ := val.StringValueOK()
		if s != "error" && s != "warn" {
			return errorf(codeBadValue, "Enumeration value '%s' for field 'validationAction' is not a valid value.", val)
		}
		v.action = s
	}
	return nil
}

// fields are the options as mongod's CollectionOptions lists them.
func (v *validation) fields() []query.Field {
	var f []query.Field
	if v.validator != nil {
		f = append(f, query.Field{Key: "validator", Val: query.DocValue(v.validator)})
	}
	if v.level != "" {
		f = append(f, query.Field{Key: "validationLevel", Val: query.StringValue(v.level)})
	}
	if v.action != "" {
		f = append(f, query.Field{Key: "validationAction", Val: query.StringValue(v.action)})
	}
	return f
}

// check validates doc, written over old (nil for an insert) by the command
// cx, which may bypass validation (bypassDocumentValidation).
func (v *validation) check(doc, old bsoncore.Document, cx *cmdCtx) error {
	switch {
	case v.filter == nil || v.level == "off" || v.action == "warn" || cx.bypassValidation():
		return nil
	case v.level == "moderate" && old != nil && !v.filter.Matches(old):
		return nil
	case v.filter.Matches(doc):
		return nil
	}
	// errInfo.details, mongod's explanation of which clause failed, is not
	// produced here.
	return &writeError{code: codeDocumentValidationFailure, msg: "Document failed validation",
		extra: bson.D{{Key: "errInfo", Value: bson.D{{Key: "failingDocumentId", Value: query.RawValue(doc.Lookup("_id"))}}}}}
}

// bypassValidation is the command's bypassDocumentValidation.
func (cx *cmdCtx) bypassValidation() bool {
	b, _ := cx.boolArg("bypassDocumentValidation")
	return b
}
