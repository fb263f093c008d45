package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/mongotest/query"
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
	if len(pipeline) > 0 && query.StageName(pipeline[0]) == "$changeStream" {
		return cx.openChangeStream(target, pipeline[0].Document().Lookup("$changeStream"), pipeline[1:], batchSize, hasBatch)
	}
	if target == "" {
		return nil, unsupported("database-level aggregate without $changeStream")
	}
	stages := make([]query.Stage, len(pipeline))
	for i, st := range pipeline {
		if stages[i], err = query.CompileStage(st); err != nil {
			return nil, err
		}
	}
	if err := cx.rejectOptions("hint"); err != nil {
		return nil, err
	}
	docs, _, err := cx.readDocs(target)
	if err != nil {
		return nil, err
	}
	for _, st := range stages {
		if docs, err = st.Apply(docs); err != nil {
			return nil, err
		}
	}
	return cx.openCursor(cx.db+"."+target, docs, batchSize, hasBatch, false), nil
}
