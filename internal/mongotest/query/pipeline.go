package query

import (
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Stage is one compiled aggregation stage
// (https://www.mongodb.com/docs/manual/reference/operator/aggregation-pipeline/):
// $match, $project, $sort, $group and $limit.
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
	"$listLocalSessions": true, "$addFields": true, "$set": true, "$unset": true, "$replaceRoot": true,
	"$replaceWith": true, "$facet": true, "$unwind": true, "$changeStream": true,
	"$changeStreamSplitLargeEvent": true, "$skip": true, "$count": true,
}

var stages = map[string]func(arg Value) (Stage, error){
	"$match":   compileMatch,
	"$project": compileProject,
	"$sort":    compileSortStage,
	"$group":   compileGroup,
	"$limit":   compileLimit,
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
