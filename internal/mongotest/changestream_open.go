package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// Stages allowed after $changeStream
// (https://www.mongodb.com/docs/manual/changeStreams/#modify-change-stream-output).
var changeStreamStages = map[string]bool{
	"$match": true, "$project": true, "$addFields": true, "$set": true, "$unset": true,
	"$replaceRoot": true, "$replaceWith": true,
}

// openChangeStream runs aggregate with a leading $changeStream stage.
func (cx *cmdCtx) openChangeStream(target string, spec bsoncore.Value, rest []bsoncore.Value, batchSize int, hasBatch bool) (bson.D, error) {
	opts, ok := spec.DocumentOK()
	if !ok {
		return nil, errorf(50808, "$changeStream stage expects a document as argument")
	}
	cs := &changeStream{db: cx.db, coll: target}
	var allForCluster bool
	var resume, startAfter, startAt bsoncore.Value
	for _, f := range query.Fields(opts) {
		switch f.Key {
		case "fullDocument":
			if f.Val.Type != bsoncore.TypeString {
				return nil, typeError("$changeStream.fullDocument", f.Val, "string")
			}
			switch f.Val.StringValue() {
			case "default":
			case "updateLookup":
				cs.lookup = true
			case "whenAvailable", "required":
				cs.postImage = f.Val.StringValue()
			default:
				return nil, errorf(codeBadValue, "unrecognized fullDocument option %s", f.Val)
			}
		case "fullDocumentBeforeChange":
			if f.Val.Type != bsoncore.TypeString {
				return nil, typeError("$changeStream.fullDocumentBeforeChange", f.Val, "string")
			}
			switch mode := f.Val.StringValue(); mode {
			case "off":
			case "whenAvailable", "required":
				cs.preImage = mode
			default:
				return nil, errorf(codeBadValue, "unrecognized fullDocumentBeforeChange option %s", f.Val)
			}
		case "resumeAfter":
			resume = f.Val
		case "startAfter":
			startAfter = f.Val
		case "startAtOperationTime":
			if f.Val.Type != bsoncore.TypeTimestamp {
				return nil, typeError("$changeStream.startAtOperationTime", f.Val, "timestamp")
			}
			startAt = f.Val
		case "allChangesForCluster":
			allForCluster = query.Truthy(f.Val)
		case "showExpandedEvents":
			cs.expanded = query.Truthy(f.Val)
		case "showSystemEvents", "showRawUpdateDescription":
			if query.Truthy(f.Val) {
				return nil, unsupported("$changeStream option %s", f.Key)
			}
		default:
			return nil, errorf(codeIDLUnknownField, "BSON field '$changeStream.%s' is an unknown field.", f.Key)
		}
	}
	if err := cx.streamScope(cs, allForCluster); err != nil {
		return nil, err
	}
	if target != "" {
		if err := cx.s.notView(cx.db, target); err != nil {
			return nil, err
		}
	}
	for i, st := range rest {
		name := query.StageName(st)
		switch {
		case name == "$changeStreamSplitLargeEvent":
			if i != len(rest)-1 {
				return nil, errorf(7182802, "$changeStreamSplitLargeEvent must be the last stage in the pipeline")
			}
			cs.split = true
			continue
		case name == "$changeStream":
			return nil, errorf(codeChangeStreamNotFirstStage, "$changeStream is only valid as the first stage in a pipeline")
		case !query.KnownStage(name):
			return nil, errorf(codeUnrecognizedPipelineStage, "Unrecognized pipeline stage name: '%s'", name)
		case !changeStreamStages[name]:
			return nil, errorf(codeChangeStreamStageNotAllowed, "Stage %s is not permitted in a $changeStream pipeline", name)
		}
		s, err := query.CompileStage(st)
		if err != nil {
			return nil, err
		}
		cs.stages = append(cs.stages, s)
	}
	if err := cx.startPosition(cs, resume, startAfter, startAt); err != nil {
		return nil, err
	}
	ns := cx.db + "." + target
	if target == "" {
		ns = cx.db + ".$cmd.aggregate"
	}
	c := &cursor{ns: ns, stream: cs}
	if !hasBatch {
		batchSize = defaultFirstBatch
	}
	batch, err := cs.read(cx.s, batchSize)
	if err != nil {
		return nil, err
	}
	cx.s.cursors.add(c)
	return cx.streamBatch(c, "firstBatch", batch), nil
}

// streamScope checks where the stream may be opened: a collection, a
// database other than admin/config/local, or the cluster through admin
// with allChangesForCluster.
func (cx *cmdCtx) streamScope(cs *changeStream, allForCluster bool) error {
	switch {
	case allForCluster:
		if cx.db != "admin" || cs.coll != "" {
			return errorf(codeInvalidNamespace, "A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' database, and with no collection name")
		}
		cs.db = ""
	case internalDB(cx.db):
		return errorf(codeInvalidNamespace, "$changeStream may not be opened on the internal %s database", cx.db)
	case systemColl(cs.coll):
		return errorf(codeInvalidNamespace, "$changeStream may not be opened on the internal %s.%s collection", cx.db, cs.coll)
	}
	return nil
}

// startPosition applies resumeAfter, startAfter or startAtOperationTime
// (at most one, https://www.mongodb.com/docs/manual/changeStreams/#resume-a-change-stream);
// without them the stream starts now.
func (cx *cmdCtx) startPosition(cs *changeStream, resume, startAfter, startAt bsoncore.Value) error {
	given := 0
	for _, v := range []bsoncore.Value{resume, startAfter, startAt} {
		if v.Type != 0 {
			given++
		}
	}
	if given > 1 {
		return errorf(codeMultipleResumeOptions, "Only one type of resume option is allowed, but multiple were found.")
	}
	s := cx.s
	switch {
	case startAt.Type != 0:
		t, i := startAt.Timestamp()
		cs.pos = tokenKey{ts: bson.Timestamp{T: t, I: i}, kind: kindStartAt}
	case resume.Type != 0 || startAfter.Type != 0:
		tok := resume
		if tok.Type == 0 {
			tok = startAfter
		}
		k, err := parseToken(tok)
		if err != nil {
			return err
		}
		if k.kind == kindInvalidate && resume.Type != 0 {
			return errorf(codeInvalidResumeToken, "Attempting to resume a change stream using 'resumeAfter' is not allowed from an invalidate notification.")
		}
		if s.log.gone(k) {
			return historyLost()
		}
		if k.frag > 0 && !cs.split {
			return errorf(codeChangeStreamFatalError, "To resume from a split event, the $changeStream pipeline must include a $changeStreamSplitLargeEvent stage")
		}
		// The token's event is checked as the stream reads past it: a token
		// whose time has not come yet waits for it.
		if k.kind != kindHighWaterMark {
			cs.resumeFrom = &k
		}
		cs.pos = k
	default:
		cs.pos = tokenKey{ts: s.clock.now(), kind: kindHighWaterMark}
	}
	return nil
}
