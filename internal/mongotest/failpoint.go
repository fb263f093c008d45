package mongotest

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// failPoint is the real server's failCommand test failpoint
// (https://github.com/mongodb/mongo/wiki/The-%22failCommand%22-fail-point),
// configured through configureFailPoint so the same tests can run against a
// mongod started with enableTestCommands=1.
type failPoint struct {
	name      string
	mu        sync.Mutex
	on        bool
	times     int // remaining activations when limited; 0 = unlimited
	skip      int // matching commands to let through first
	commands  []string
	appName   string
	action    failAction
	timesUsed int64
}

// failAction is what a triggered failpoint does to one command.
type failAction struct {
	blockFor          time.Duration
	closeConn         bool
	err               error
	writeConcernError bson.D
}

// check consumes one activation if cmdName from a client named appName matches.
func (f *failPoint) check(cmdName, appName string) failAction {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on || !slices.Contains(f.commands, cmdName) || (f.appName != "" && f.appName != appName) {
		return failAction{}
	}
	if f.skip > 0 {
		f.skip--
		return failAction{}
	}
	f.timesUsed++
	if f.times > 0 {
		f.times--
		if f.times == 0 {
			f.on = false
		}
	}
	return f.action
}

var failPointCommands = map[string]command{
	"configureFailPoint": {run: configureFailPoint, fields: []string{"mode", "data"}},
}

func configureFailPoint(cx *cmdCtx) (bson.D, error) {
	if cx.db != "admin" {
		return nil, errorf(codeUnauthorized, "configureFailPoint may only be run against the admin database.")
	}
	var f *failPoint
	switch name := cx.arg.StringValue(); name {
	case "failCommand":
		f = &cx.s.fail
	case "failGetMoreAfterCursorCheckout":
		f = &cx.s.failGetMore
	default:
		return nil, unsupported("failpoint %q (only failCommand and failGetMoreAfterCursorCheckout)", name)
	}
	next := failPoint{on: true, name: cx.arg.StringValue()}
	mode, _ := cx.field("mode")
	switch {
	case mode.Type == bsoncore.TypeString && mode.StringValue() == "off":
		next.on = false
	case mode.Type == bsoncore.TypeString && mode.StringValue() == "alwaysOn":
	case mode.Type == bsoncore.TypeEmbeddedDocument:
		elems, _ := mode.Document().Elements()
		for _, e := range elems {
			n, err := query.AsInt("mode."+e.Key(), e.Value())
			if err != nil {
				return nil, err
			}
			switch e.Key() {
			case "times":
				next.times = int(n)
				next.on = n > 0
			case "skip":
				next.skip = int(n)
			default:
				return nil, unsupported("failpoint mode %q", e.Key())
			}
		}
	default:
		return nil, errorf(codeBadValue, "invalid failpoint mode %s", mode)
	}
	data, err := cx.docArg("data")
	if err != nil {
		return nil, err
	}
	if err := parseFailData(&next, data); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	count := f.timesUsed
	next.timesUsed = f.timesUsed
	f.on, f.times, f.skip, f.commands, f.appName, f.action = next.on, next.times, next.skip, next.commands, next.appName, next.action
	return bson.D{{Key: "count", Value: count}}, nil
}

func parseFailData(f *failPoint, data bsoncore.Document) error {
	if f.name == "failGetMoreAfterCursorCheckout" {
		// mongod's getMore throws errorCode (InternalError without one) once
		// it holds the cursor, which then dies; the failpoint filters as
		// failCommand does, on getMore. mongod reads nothing else of its data:
		// closeConnection, which the Change Streams specification's tests
		// send, changes nothing.
		f.commands = []string{"getMore"}
		var kept []query.Field
		for _, e := range query.Fields(data) {
			switch e.Key {
			case "errorCode", "appName":
				kept = append(kept, e)
			case "closeConnection":
			default:
				return unsupported("failGetMoreAfterCursorCheckout option %q", e.Key)
			}
		}
		data = query.BuildDoc(kept)
		if data.Lookup("errorCode").Type == 0 {
			data = query.BuildDoc(append(query.Fields(data), query.Field{Key: "errorCode", Val: query.Int32Value(1)}))
		}
	}
	elems, _ := data.Elements()
	blocking := false
	var blockMS int64
	code := int32(0)
	for _, e := range elems {
		v, field := e.Value(), "data."+e.Key()
		switch e.Key() {
		case "failCommands":
			vals, ok := v.ArrayOK()
			if !ok {
				return typeError(field, v, "array")
			}
			names, _ := vals.Values()
			for _, n := range names {
				f.commands = append(f.commands, n.StringValue())
			}
		case "errorCode":
			n, err := query.AsInt(field, v)
			if err != nil {
				return err
			}
			code = int32(n)
		case "errorLabels":
			vals, ok := v.ArrayOK()
			if !ok {
				return typeError(field, v, "array")
			}
			labels, _ := vals.Values()
			ce := &cmdError{labelsSet: true}
			for _, l := range labels {
				ce.labels = append(ce.labels, l.StringValue())
			}
			f.action.err = ce
		case "closeConnection":
			b, err := asBool(field, v)
			if err != nil {
				return err
			}
			f.action.closeConn = b
		case "blockConnection":
			b, err := asBool(field, v)
			if err != nil {
				return err
			}
			blocking = b
		case "blockTimeMS":
			n, err := query.AsInt(field, v)
			if err != nil {
				return err
			}
			blockMS = n
		case "appName":
			f.appName = v.StringValue()
		case "writeConcernError":
			d, ok := v.DocumentOK()
			if !ok {
				return typeError(field, v, "object")
			}
			var wce bson.D
			if err := bson.Unmarshal(d, &wce); err != nil {
				return errorf(codeBadValue, "%s: %v", field, err)
			}
			f.action.writeConcernError = wce
		case "failInternalCommands":
			// There are no internal clients here.
		default:
			return unsupported("failCommand option %q", e.Key())
		}
	}
	if blocking {
		f.action.blockFor = time.Duration(blockMS) * time.Millisecond
	}
	if code != 0 {
		ce, _ := f.action.err.(*cmdError)
		if ce == nil {
			ce = &cmdError{}
		}
		ce.code, ce.msg = code, fmt.Sprintf("Failing command via '%s' failpoint", f.name)
		if f.name == "failGetMoreAfterCursorCheckout" {
			ce.msg = "Hit the 'failGetMoreAfterCursorCheckout' failpoint"
		}
		f.action.err = ce
	} else if f.action.err != nil {
		// errorLabels without errorCode label nothing: there is no error.
		f.action.err = nil
	}
	return nil
}
