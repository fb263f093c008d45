package mongotest

import (
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// reply builds the final document: the handler's fields, ok, the error, and
// the cluster time gossip every replica set member adds.
func (s *Server) reply(o outcome) bsoncore.Document {
	s.mu.Lock()
	now := s.clock.now()
	s.mu.Unlock()
	out := make(bson.D, 0, len(o.res)+6)
	stateChange := stateChangeCodes[errorCodeOf(o.writeConcernError)]
	if o.err != nil {
		ce, ok := asCmdError(o.err)
		if !ok {
			ce = errorf(1, "%v", o.err)
		}
		out = append(out, bson.E{Key: "ok", Value: 0.0}, bson.E{Key: "errmsg", Value: ce.msg},
			bson.E{Key: "code", Value: ce.code}, bson.E{Key: "codeName", Value: codeName(ce.code)})
		out = append(out, ce.extra...)
		if len(ce.labels) > 0 {
			out = append(out, bson.E{Key: "errorLabels", Value: ce.labels})
		}
		stateChange = stateChange || stateChangeCodes[ce.code]
	} else {
		out = append(out, o.res...)
		if o.writeConcernError != nil {
			out = append(out, bson.E{Key: "writeConcernError", Value: o.writeConcernError})
		}
		if len(o.labels) > 0 {
			out = append(out, bson.E{Key: "errorLabels", Value: o.labels})
		}
		out = append(out, bson.E{Key: "ok", Value: 1.0})
	}
	if stateChange {
		// As mongod does, so that drivers can tell an error about the
		// topology they know (stale: ignored) from news about a change.
		out = append(out, bson.E{Key: "topologyVersion", Value: s.topologyVersion()})
	}
	out = append(out, bson.E{Key: "$clusterTime", Value: clusterTimeDoc(now)}, bson.E{Key: "operationTime", Value: now})
	size := 512 // the fields but those already in BSON, as a rule
	for _, e := range out {
		if raw, ok := e.Value.(bson.Raw); ok {
			size += len(e.Key) + len(raw) + 2
		}
	}
	start, b := bsoncore.AppendDocumentStart(make([]byte, 0, size))
	b, merr := appendElements(b, out)
	if merr != nil {
		b, _ = bson.Marshal(bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: "mongotest: cannot encode reply: " + merr.Error()},
			{Key: "code", Value: int32(1)}, {Key: "codeName", Value: "InternalError"}})
		return b
	}
	b, _ = bsoncore.AppendDocumentEnd(b, start)
	return b
}

// appendElements appends d's elements. A value already in BSON (bson.Raw, as a cursor's
// batch is) is copied as it is, at once: bson.Marshal would walk it element by element
// and copy it twice more.
func appendElements(dst []byte, d bson.D) ([]byte, error) {
	for _, e := range d {
		if raw, ok := e.Value.(bson.Raw); ok && raw != nil {
			dst = bsoncore.AppendDocumentElement(dst, e.Key, raw)
			continue
		}
		if e.Value == nil {
			dst = bsoncore.AppendNullElement(dst, e.Key)
			continue
		}
		t, data, err := bson.MarshalValue(e.Value)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", e.Key, err)
		}
		dst = bsoncore.AppendValueElement(dst, e.Key, bsoncore.Value{Type: bsoncore.Type(t), Data: data})
	}
	return dst, nil
}

// labelled adds the error labels mongod adds (error_labels.cpp): drivers
// decide on them whether to retry a write, a commit or a whole transaction,
// or to resume a change stream. A failpoint's own labels replace them.
func (cx *cmdCtx) labelled(cmd command, err error) error {
	ce, ok := asCmdError(err)
	if !ok || ce.labelsSet {
		return err
	}
	var labels []string
	switch {
	case cx.autocommit && transientTxnError(ce.code, commitOrAbort(cx.name)):
		labels = append(labels, "TransientTransactionError")
	case (cx.autocommit && commitOrAbort(cx.name) || cmd.write && cx.txnNumber != nil && !cx.autocommit) && retryableWriteCodes[ce.code]:
		labels = append(labels, "RetryableWriteError")
	case ce.code == codeChangeStreamFatalError || ce.code == codeChangeStreamHistoryLost:
		labels = append(labels, "NonResumableChangeStreamError")
	case resumableStreamCodes[ce.code] && cx.onStream:
		labels = append(labels, "ResumableChangeStreamError")
	}
	if len(labels) == 0 {
		return err
	}
	labelled := *ce
	labelled.labels = append(append([]string(nil), ce.labels...), labels...)
	return &labelled
}

// resumableStreamCodes are the codes for which mongod labels a change
// stream's error ResumableChangeStreamError (error_labels.cpp,
// isResumableChangeStreamError): its RetriableError, NetworkError and
// NeedRetargettingError categories (src/mongo/base/error_codes.yml, codes
// clients can see), RetryChangeStream and FailedToSatisfyReadPreference.
var resumableStreamCodes = map[int32]bool{
	6: true, 7: true, 89: true, 91: true, 134: true, 189: true, 262: true, 402: true, 406: true,
	407: true, 412: true, 453: true, 462: true, 9001: true, 10107: true, 11600: true, 11602: true,
	13435: true, 13436: true, 50915: true, 91331: true, 10045600: true, // RetriableError
	150: true, 13388: true, // NeedRetargettingError
	133: true, 234: true,
}

// getMoreDeadline sets a getMore's time limit: none on a change stream,
// whose maxTimeMS is how long it waits for events; what is left of the
// opening command's maxTimeMS on another cursor, as mongod carries it over.
func (cx *cmdCtx) getMoreDeadline() {
	id, _ := cx.arg.Int64OK()
	cx.s.mu.Lock()
	defer cx.s.mu.Unlock()
	switch c := cx.s.cursors.open[id]; {
	case c == nil:
	case c.stream != nil:
		cx.deadline, cx.onStream = time.Time{}, true
	case c.budget > 0:
		start := time.Now()
		cx.deadline = start.Add(c.budget)
		cx.spent = func() { c.budget = max(c.budget-time.Since(start), time.Nanosecond) }
	}
}

// stateChangeCodes are mongod's NotPrimaryError and ShutdownError
// categories, whose replies carry the topologyVersion.
var stateChangeCodes = map[int32]bool{91: true, 189: true, 10107: true, 11600: true, 11602: true, 13435: true, 13436: true}

// errorCodeOf is the code in an error document such as a writeConcernError.
func errorCodeOf(d bson.D) int32 {
	for _, e := range d {
		if e.Key == "code" {
			switch n := e.Value.(type) {
			case int32:
				return n
			case int64:
				return int32(n)
			case float64:
				return int32(n)
			}
		}
	}
	return 0
}
