package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

var aggregateCommands = map[string]command{
	"aggregate": {run: aggregate, fields: []string{
		"pipeline", "cursor", "allowDiskUse", "explain", "bypassDocumentValidation", "hint", "let", "collation"}},
}

func aggregate(cx *cmdCtx) (bson.D, error) {
	if err := cx.rejectOptions("explain", "let", "collation"); err != nil {
		return nil, err
	}
	pipeline, err := cx.arrayArg("pipeline")
	if err != nil {
		return nil, err
	}
	if _, ok := cx.field("cursor"); !ok {
		return nil, errorf(codeFailedToParse, "The 'cursor' option is required, except for aggregate with the explain argument")
	}
	batchSize, hasBatch, err := cx.cursorBatchSize()
	if err != nil {
		return nil, err
	}
	var target string
	if cx.arg.IsNumber() && cx.arg.AsInt64() == 1 {
		target = "" // aggregate: 1 runs on the database
	} else if target, err = cx.collName(); err != nil {
		return nil, err
	}
	if len(pipeline) > 0 && stageName(pipeline[0]) == "$changeStream" {
		return cx.openChangeStream(target, pipeline[0].Document().Lookup("$changeStream"), pipeline[1:], batchSize, hasBatch)
	}
	if target == "" {
		return nil, unsupported("database-level aggregate without $changeStream")
	}
	stages := make([]stage, len(pipeline))
	for i, st := range pipeline {
		if stages[i], err = compileStage(st); err != nil {
			return nil, err
		}
	}
	c, err := cx.hintedColl(target)
	if err != nil {
		return nil, err
	}
	var docs []bsoncore.Document
	if c != nil {
		for _, r := range c.visible(cx.txn) {
			docs = append(docs, r.doc)
		}
	}
	for _, st := range stages {
		if docs, err = st.apply(docs); err != nil {
			return nil, err
		}
	}
	return cx.openCursor(cx.db+"."+target, docs, batchSize, hasBatch, false), nil
}

// stage is one compiled aggregation stage
// (https://www.mongodb.com/docs/manual/reference/operator/aggregation-pipeline/).
type stage interface {
	apply(docs []bsoncore.Document) ([]bsoncore.Document, error)
}

type stageFunc func(docs []bsoncore.Document) ([]bsoncore.Document, error)

func (f stageFunc) apply(docs []bsoncore.Document) ([]bsoncore.Document, error) { return f(docs) }

// perDoc lifts a one-document transformation into a stage; nil drops the document.
func perDoc(f func(d bsoncore.Document) (bsoncore.Document, error)) stage {
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

func stageName(v bsoncore.Value) string {
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

// Real stages this fake does not implement, refused with 115.
var unsupportedStages = map[string]bool{
	"$lookup": true, "$out": true, "$merge": true, "$geoNear": true, "$graphLookup": true, "$bucket": true,
	"$bucketAuto": true, "$sample": true, "$collStats": true, "$indexStats": true, "$currentOp": true,
	"$listSessions": true, "$redact": true, "$densify": true, "$fill": true, "$setWindowFields": true,
	"$unionWith": true, "$documents": true, "$search": true, "$sortByCount": true, "$planCacheStats": true,
	"$listLocalSessions": true, "$changeStreamSplitLargeEvent": true,
}

func compileStage(v bsoncore.Value) (stage, error) {
	d, ok := v.DocumentOK()
	if !ok || len(docFields(d)) != 1 {
		return nil, errorf(40323, "A pipeline stage specification object must contain exactly one field.")
	}
	name := stageName(v)
	arg := d.Lookup(name)
	switch name {
	case "$match":
		m, err := compileFilter(arg.Document())
		if err != nil {
			return nil, err
		}
		return perDoc(func(d bsoncore.Document) (bsoncore.Document, error) {
			if m.matches(d) {
				return d, nil
			}
			return nil, nil
		}), nil
	case "$project":
		p, err := compileProjection(arg.Document(), false)
		if err != nil {
			return nil, err
		}
		return perDoc(p.apply), nil
	case "$unset":
		return compileUnset(arg)
	case "$addFields", "$set":
		return compileAddFields(arg)
	case "$replaceRoot", "$replaceWith":
		root := arg
		if name == "$replaceRoot" {
			root = arg.Document().Lookup("newRoot")
		}
		e, err := compileExpr(root)
		if err != nil {
			return nil, err
		}
		return perDoc(func(d bsoncore.Document) (bsoncore.Document, error) {
			v, err := e(d)
			if err != nil {
				return nil, err
			}
			if v.Type != bsoncore.TypeEmbeddedDocument {
				return nil, errorf(40228, "'newRoot' expression must evaluate to an object, but resulting value was: %s. Type of resulting value: '%s'.", v, typeName(v.Type))
			}
			return v.Document(), nil
		}), nil
	case "$sort":
		keys, err := compileSort(arg.Document())
		if err != nil {
			return nil, err
		}
		return stageFunc(func(docs []bsoncore.Document) ([]bsoncore.Document, error) {
			sortBy(docs, func(d bsoncore.Document) bsoncore.Document { return d }, keys)
			return docs, nil
		}), nil
	case "$limit", "$skip":
		n, err := asInt(name, arg)
		if err != nil || n < 0 || (name == "$limit" && n == 0) {
			return nil, firstErr(err, errorf(15958, "the %s must be positive", name[1:]))
		}
		return stageFunc(func(docs []bsoncore.Document) ([]bsoncore.Document, error) {
			if name == "$skip" {
				return docs[min(int(n), len(docs)):], nil
			}
			return docs[:min(int(n), len(docs))], nil
		}), nil
	case "$count":
		out, ok := arg.StringValueOK()
		if !ok || out == "" {
			return nil, errorf(40156, "the count field must be a non-empty string")
		}
		return stageFunc(func(docs []bsoncore.Document) ([]bsoncore.Document, error) {
			if len(docs) == 0 {
				return nil, nil
			}
			return []bsoncore.Document{buildDoc([]field{{out, int32Value(int32(len(docs)))}})}, nil
		}), nil
	case "$group":
		return compileGroup(arg)
	case "$facet":
		return compileFacet(arg)
	case "$unwind":
		return compileUnwind(arg)
	}
	if unsupportedStages[name] {
		return nil, unsupported("the aggregation stage %s", name)
	}
	return nil, errorf(codeUnrecognizedPipelineStage, "Unrecognized pipeline stage name: '%s'", name)
}

func compileUnset(arg bsoncore.Value) (stage, error) {
	names := []bsoncore.Value{arg}
	if arg.Type == bsoncore.TypeArray {
		names = arrayValues(arg)
	}
	var spec []field
	for _, n := range names {
		s, ok := n.StringValueOK()
		if !ok {
			return nil, errorf(31120, "$unset specification must be a string or an array containing only string values")
		}
		spec = append(spec, field{s, int32Value(0)})
	}
	p, err := compileProjection(buildDoc(spec), false)
	if err != nil {
		return nil, err
	}
	return perDoc(p.apply), nil
}

func compileAddFields(arg bsoncore.Value) (stage, error) {
	type setter struct {
		path []string
		e    expr
	}
	var setters []setter
	for _, f := range docFields(arg.Document()) {
		e, err := compileExpr(f.val)
		if err != nil {
			return nil, err
		}
		setters = append(setters, setter{splitPath(f.key), e})
	}
	return perDoc(func(d bsoncore.Document) (bsoncore.Document, error) {
		out := d
		for _, s := range setters {
			v, err := s.e(d)
			if err != nil {
				return nil, err
			}
			if v.Type == 0 {
				continue // $$REMOVE or a missing field adds nothing
			}
			out = setRawPath(out, s.path, v)
		}
		return out, nil
	}), nil
}

func compileFacet(arg bsoncore.Value) (stage, error) {
	type facet struct {
		name   string
		stages []stage
	}
	var facets []facet
	for _, f := range docFields(arg.Document()) {
		if f.val.Type != bsoncore.TypeArray {
			return nil, errorf(40170, "arguments to $facet must be arrays, %s is type %s", f.key, typeName(f.val.Type))
		}
		fc := facet{name: f.key}
		for _, st := range arrayValues(f.val) {
			s, err := compileStage(st)
			if err != nil {
				return nil, err
			}
			fc.stages = append(fc.stages, s)
		}
		facets = append(facets, fc)
	}
	return stageFunc(func(docs []bsoncore.Document) ([]bsoncore.Document, error) {
		var out []field
		for _, fc := range facets {
			res := append([]bsoncore.Document(nil), docs...)
			var err error
			for _, s := range fc.stages {
				if res, err = s.apply(res); err != nil {
					return nil, err
				}
			}
			vals := make([]bsoncore.Value, len(res))
			for i, d := range res {
				vals[i] = docValue(d)
			}
			out = append(out, field{fc.name, arrayValue(vals)})
		}
		return []bsoncore.Document{buildDoc(out)}, nil
	}), nil
}

func compileUnwind(arg bsoncore.Value) (stage, error) {
	var path, indexField string
	var preserve bool
	switch arg.Type {
	case bsoncore.TypeString:
		path = arg.StringValue()
	case bsoncore.TypeEmbeddedDocument:
		for _, f := range docFields(arg.Document()) {
			switch f.key {
			case "path":
				path = f.val.StringValue()
			case "includeArrayIndex":
				indexField = f.val.StringValue()
			case "preserveNullAndEmptyArrays":
				preserve = truthy(f.val)
			default:
				return nil, errorf(28811, "unrecognized option to $unwind: %s", f.key)
			}
		}
	}
	if len(path) < 2 || path[0] != '$' {
		return nil, errorf(28818, "path option to $unwind stage should be prefixed with a '$': %s", path)
	}
	parts := splitPath(path[1:])
	return stageFunc(func(docs []bsoncore.Document) ([]bsoncore.Document, error) {
		var out []bsoncore.Document
		for _, d := range docs {
			v, found := lookupPath(d, parts)
			var elems []bsoncore.Value
			switch {
			case found && v.Type == bsoncore.TypeArray:
				elems = arrayValues(v)
			case found && v.Type != bsoncore.TypeNull:
				elems = []bsoncore.Value{v}
			}
			if len(elems) == 0 {
				if preserve {
					if indexField != "" {
						d = setRawPath(d, []string{indexField}, nullValue)
					}
					out = append(out, d)
				}
				continue
			}
			for i, e := range elems {
				nd := setRawPath(d, parts, e)
				if indexField != "" {
					nd = setRawPath(nd, []string{indexField}, int64Value(int64(i)))
				}
				out = append(out, nd)
			}
		}
		return out, nil
	}), nil
}
