package query

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Stage is one compiled aggregation stage
// (https://www.mongodb.com/docs/manual/reference/operator/aggregation-pipeline/):
// $match, $project, $addFields/$set, $unset, $replaceRoot/$replaceWith,
// $sort, $group and $limit.
type Stage interface {
	Apply(docs []bsoncore.Document) ([]bsoncore.Document, error)
}

type stageFunc func(docs []bsoncore.Document) ([]bsoncore.Document, error)

func (f stageFunc) Apply(docs []bsoncore.Document) ([]bsoncore.Document, error) { return f(docs) }

// perDoc lifts a one-document transformation into a stage; nil drops the document.
func perDoc(f func(d bsoncore.Document) (bsoncore.Document, error)) Stage {
	return stageFunc(func(docs []bsoncore.Document) ([]bsoncore.Document, error) {
		out := make([]bsoncore.Document, 0, len(docs))
		for _, d := range docs {
			nd, err := f(d)
			if err != nil {
				return nil, err
			}
			if nd != nil {
				out = append(out, nd)
			}
		}
		return out, nil
	})
}

// StageName is the name of a stage specification, "" if it is none.
func StageName(v Value) string {
	d, ok := v.DocumentOK()
	if !ok {
		return ""
	}
	e, err := d.IndexErr(0)
	if err != nil {
		return ""
	}
	return e.Key()
}

// Real stages this package does not implement, refused with 115.
var unsupportedStages = map[string]bool{
	"$lookup": true, "$out": true, "$merge": true, "$geoNear": true, "$graphLookup": true, "$bucket": true,
	"$bucketAuto": true, "$sample": true, "$collStats": true, "$indexStats": true, "$currentOp": true,
	"$listSessions": true, "$redact": true, "$densify": true, "$fill": true, "$setWindowFields": true,
	"$unionWith": true, "$documents": true, "$search": true, "$sortByCount": true, "$planCacheStats": true,
	"$listLocalSessions": true, "$facet": true, "$unwind": true, "$changeStream": true,
	"$changeStreamSplitLargeEvent": true, "$skip": true, "$count": true,
}

var stages = map[string]func(arg Value) (Stage, error){
	"$match":       compileMatch,
	"$project":     compileProject,
	"$addFields":   compileAddFieldsStage,
	"$set":         compileAddFieldsStage,
	"$unset":       compileUnset,
	"$replaceRoot": compileReplaceRoot,
	"$replaceWith": compileReplaceWith,
	"$sort":        compileSortStage,
	"$group":       compileGroup,
	"$limit":       compileLimit,
}

// UpdateStages are the stages a pipeline-style update may use
// (https://www.mongodb.com/docs/manual/tutorial/update-documents-with-aggregation-pipeline/).
var UpdateStages = map[string]bool{
	"$addFields": true, "$set": true, "$project": true, "$unset": true, "$replaceRoot": true, "$replaceWith": true,
}

// KnownStage reports whether name is a stage of MongoDB's, implemented
// here or not.
func KnownStage(name string) bool { return stages[name] != nil || unsupportedStages[name] }

// CompileStage compiles one stage: 40323 if it is malformed, 115 for a real
// stage not implemented here, 40324 for a stage MongoDB does not have.
func CompileStage(v Value) (Stage, error) {
	d, ok := v.DocumentOK()
	if !ok || len(Fields(d)) != 1 {
		return nil, errorf(40323, "A pipeline stage specification object must contain exactly one field.")
	}
	name := StageName(v)
	if compile := stages[name]; compile != nil {
		return compile(d.Lookup(name))
	}
	if unsupportedStages[name] {
		return nil, Unsupported("the aggregation stage %s", name)
	}
	return nil, errorf(CodeUnrecognizedPipelineStage, "Unrecognized pipeline stage name: '%s'", name)
}

func compileMatch(arg Value) (Stage, error) {
	d, ok := arg.DocumentOK()
	if !ok {
		return nil, errorf(15959, "the match filter must be an expression in an object")
	}
	m, err := CompileFilter(d)
	if err != nil {
		return nil, err
	}
	return perDoc(func(d bsoncore.Document) (bsoncore.Document, error) {
		if m.Matches(d) {
			return d, nil
		}
		return nil, nil
	}), nil
}

func compileProject(arg Value) (Stage, error) {
	d, ok := arg.DocumentOK()
	if !ok {
		return nil, errorf(15969, "$project specification must be an object")
	}
	p, err := CompileProjection(d, false)
	if err != nil {
		return nil, err
	}
	return perDoc(p.Apply), nil
}

func compileAddFieldsStage(arg Value) (Stage, error) {
	d, ok := arg.DocumentOK()
	if !ok {
		return nil, errorf(40272, "$addFields specification stage must be an object, got %s", TypeName(arg.Type))
	}
	p, err := compileAddFields(d)
	if err != nil {
		return nil, err
	}
	return perDoc(p.Apply), nil
}

// compileUnset is $unset: a field path or an array of them, excluded.
func compileUnset(arg Value) (Stage, error) {
	names := []Value{arg}
	if arg.Type == bsoncore.TypeArray {
		names = ArrayValues(arg)
	}
	var spec []Field
	for _, n := range names {
		s, ok := n.StringValueOK()
		if !ok || s == "" {
			return nil, errorf(31120, "$unset specification must be a string or an array containing only string values")
		}
		spec = append(spec, Field{s, Int32Value(0)})
	}
	if len(spec) == 0 {
		return nil, errorf(31119, "$unset specification must be a string or an array with at least one field")
	}
	p, err := CompileProjection(BuildDoc(spec), false)
	if err != nil {
		return nil, err
	}
	return perDoc(p.Apply), nil
}

func compileReplaceRoot(arg Value) (Stage, error) {
	d, ok := arg.DocumentOK()
	if !ok {
		return nil, errorf(40228, "expected an object as specification for $replaceRoot stage, got %s", TypeName(arg.Type))
	}
	root, err := d.LookupErr("newRoot")
	if err != nil || len(Fields(d)) != 1 {
		return nil, errorf(40231, "no newRoot specified for the $replaceRoot stage")
	}
	return compileReplaceWith(root)
}

// compileReplaceWith is $replaceWith (and $replaceRoot's newRoot): the
// document becomes what the expression gives, which must be a document.
func compileReplaceWith(arg Value) (Stage, error) {
	e, err := compileExpr(arg)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return perDoc(func(d bsoncore.Document) (bsoncore.Document, error) {
		v, err := e(newEvalCtx(d, now))
		if err != nil {
			return nil, err
		}
		if v.Type != bsoncore.TypeEmbeddedDocument {
			shown := "missing"
			if v.Type != 0 {
				shown = v.String()
			}
			return nil, errorf(40228, "'replacement document' must evaluate to an object, but resulting value was: %s. Type of resulting value: '%s'. Input document: %s", shown, TypeName(v.Type), d)
		}
		return v.Document(), nil
	}), nil
}

func compileSortStage(arg Value) (Stage, error) {
	d, ok := arg.DocumentOK()
	if !ok {
		return nil, errorf(15973, "the $sort key specification must be an object")
	}
	keys, err := CompileSort(d)
	if err != nil {
		return nil, err
	}
	return stageFunc(func(docs []bsoncore.Document) ([]bsoncore.Document, error) {
		SortBy(docs, func(d bsoncore.Document) bsoncore.Document { return d }, keys)
		return docs, nil
	}), nil
}

func compileLimit(arg Value) (Stage, error) {
	n, ok := arg.AsInt64OK()
	if !ok || n <= 0 {
		return nil, errorf(15958, "the limit must be positive")
	}
	return stageFunc(func(docs []bsoncore.Document) ([]bsoncore.Document, error) {
		return docs[:min(int64(len(docs)), n)], nil
	}), nil
}
